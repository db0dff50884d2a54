import pytest

from leads.models import Lead

pytestmark = pytest.mark.django_db


def test_new_submission_creates_a_lead(key_client):
    # given / when
    response = key_client.post("/api/v1/leads/", {"email": "Ada@Example.com", "first_name": "Ada"}, format="json")
    # then
    assert response.status_code == 201, response.content
    assert response.json()["stage"] == "new"
    assert Lead.objects.get().email_normalized == "ada@example.com"
