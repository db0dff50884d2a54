import time
from datetime import timedelta

import kombu.pools
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from config.celery import app
from leads.models import Lead
from leads.tasks import lead_enrich_task, lead_enrichment_sweep_task
from tests.leads.factories import ApiKeyFactory, LeadFactory

pytestmark = pytest.mark.django_db


def test_enrich_task_is_idempotent():
    # given
    lead = LeadFactory(email="x@initech.example", email_normalized="x@initech.example", company_domain="")
    # when
    lead_enrich_task(lead_id=lead.pk)
    lead_enrich_task(lead_id=lead.pk)
    # then
    lead.refresh_from_db()
    assert lead.company_domain == "initech.example"
    assert lead.activities.filter(kind="enriched").count() == 1


def test_enrich_task_for_a_deleted_lead_is_a_no_op():
    lead_enrich_task(lead_id=987654)


def test_sweep_task_enriches_stale_leads():
    # given
    lead = LeadFactory(email="s@globex.example", email_normalized="s@globex.example")
    Lead.objects.filter(pk=lead.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    # when
    handled = lead_enrichment_sweep_task(batch_size=50)
    # then
    assert handled == 1
    lead.refresh_from_db()
    assert lead.account.domain == "globex.example"


@pytest.fixture
def broker_down():
    """Point the Celery app at an address where nothing listens, then restore it."""
    original = app.conf.broker_url

    def switch(url: str) -> None:
        kombu.pools.reset()
        app._pool = None
        app.amqp._producer_pool = None
        app.conf.broker_url = url

    switch("redis://127.0.0.1:1/0")
    yield
    switch(original)


def test_intake_succeeds_when_the_broker_is_down(broker_down, django_capture_on_commit_callbacks):
    # given
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {ApiKeyFactory().raw_key}")
    # when
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post("/api/v1/leads/", {"email": "down@initech.example"}, format="json")
    elapsed = time.monotonic() - started
    # then: the lead is stored; enrichment waits for the sweep
    assert response.status_code == 201
    assert len(callbacks) == 1  # the enqueue was attempted, failed, and was swallowed
    assert elapsed < 3
    lead = Lead.objects.get()
    assert lead.enriched_at is None


@pytest.mark.worker
def test_a_real_worker_enriches_a_lead_captured_through_the_api(celery_worker_process):
    # given
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {ApiKeyFactory().raw_key}")
    # when
    lead_id = client.post("/api/v1/leads/", {"email": "w@umbrella.example"}, format="json").json()["id"]
    # then
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        lead = Lead.objects.get(pk=lead_id)
        if lead.enriched_at:
            break
        time.sleep(0.2)
    assert lead.enriched_at is not None, "the worker did not enrich the lead"
    assert lead.account.domain == "umbrella.example"
