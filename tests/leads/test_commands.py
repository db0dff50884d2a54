import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from leads.models import ApiKey, Source

pytestmark = pytest.mark.django_db


def test_create_api_key_prints_a_working_key_on_its_last_line(capsys):
    # when
    call_command("create_api_key", "Pricing page form")
    raw_key = capsys.readouterr().out.strip().splitlines()[-1]
    # then
    key = ApiKey.objects.get()
    assert key.source == Source.objects.get(name="Pricing page form")
    assert raw_key not in key.key_hash
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    response = client.post("/api/v1/leads/", {"email": "k@x.example"}, format="json")
    assert response.status_code == 201
    assert response.json()["source"] == "Pricing page form"


def test_create_api_key_reuses_an_existing_source(capsys):
    call_command("create_api_key", "Partners")
    call_command("create_api_key", "Partners")
    assert Source.objects.filter(name="Partners").count() == 1
    assert ApiKey.objects.count() == 2
