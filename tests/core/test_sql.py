"""The one-statement insert helper writes exactly what Model.save() would."""

import datetime as dt

import pytest
from django.db import connection
from django.forms.models import model_to_dict

from core.sql import rows_insert_together
from leads.models import Activity, IntakeSubmission, Lead
from tests.conftest import requires_postgres
from tests.leads.factories import LeadFactory, SourceFactory

pytestmark = [pytest.mark.django_db, requires_postgres]


def test_rows_are_stored_as_save_would_store_them_and_reference_each_other():
    # given
    lead = LeadFactory()
    at = dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)
    submission = IntakeSubmission(
        received_at=at,
        source=SourceFactory(),
        payload={"ü": [1, None]},
        remote_addr="2001:db8::1",
        lead=lead,
        outcome="created",
        response_status=201,
    )
    activity = Activity(lead=lead, kind="form_submitted", occurred_at=at, payload={"channel": "web"})
    # when
    rows_insert_together(
        [submission, activity], sql_for={(1, "payload"): "%s || jsonb_build_object('submission_id', {r0})"}
    )
    # then
    stored = IntakeSubmission.objects.get(pk=submission.pk)
    assert model_to_dict(stored) == model_to_dict(submission)
    assert Activity.objects.get(pk=activity.pk).payload == {"channel": "web", "submission_id": submission.pk}


def test_nothing_is_written_when_the_first_row_conflicts():
    # given: a lead holding the email
    existing = LeadFactory(email="taken@example.com", email_normalized="taken@example.com")
    duplicate = Lead(email="taken@example.com", email_normalized="taken@example.com")
    activity = Activity(lead=existing, kind="note", occurred_at=dt.datetime.now(dt.UTC))
    # when
    written = rows_insert_together([duplicate, activity], sql_for={(1, "lead_id"): "{r0}"}, unless_first_conflicts=True)
    # then
    assert written is False and duplicate.pk is None
    assert Lead.objects.count() == 1 and not Activity.objects.filter(kind="note").exists()


def test_an_update_rides_along_with_auto_now_fields():
    # given
    lead = LeadFactory(title="")
    before = lead.updated_at
    lead.title = "CTO"
    activity = Activity(lead=lead, kind="note", occurred_at=dt.datetime.now(dt.UTC))
    # when
    rows_insert_together([activity], update=(lead, ["title", "updated_at"]))
    # then
    lead.refresh_from_db()
    assert lead.title == "CTO" and lead.updated_at > before


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.parametrize("prepared", [True, False])
def test_intake_statements_are_prepared_once_per_connection_unless_turned_off(settings, key_client, prepared):
    # given
    settings.LEADOPS_DB_PREPARED_STATEMENTS = prepared
    # when: two people come in
    for email in ("first@x.example", "second@x.example"):
        assert key_client.post("/api/v1/leads/", {"email": email}, format="json").status_code == 201
    # then: the lead insert was parsed and planned once, and reused (or never prepared, for a pooler)
    lead_inserts = [sql for sql in _prepared_statements() if 'INSERT INTO "leads_lead"' in sql]
    assert len(lead_inserts) == (1 if prepared else 0)
    assert Lead.objects.filter(email__in=["first@x.example", "second@x.example"]).count() == 2
