import time

import kombu.pools
import pytest
from rest_framework.test import APIClient

from config.celery import app
from leads.models import Lead
from leads.tasks import lead_enrichment_run_task
from tests.leads.factories import ApiKeyFactory, LeadFactory

pytestmark = pytest.mark.django_db


def test_the_run_task_enriches_waiting_leads():
    # given: two leads whose enrichment request was lost
    leads = [LeadFactory(email=f"s{n}@globex.example", email_normalized=f"s{n}@globex.example") for n in range(2)]
    # when
    handled = lead_enrichment_run_task(batch_size=50)
    # then
    assert handled == 2
    for lead in leads:
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
    # then: the lead is stored; enrichment waits for beat's run
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


@pytest.mark.worker
def test_one_delayed_run_enriches_every_lead_of_its_window(celery_worker_process, settings, monkeypatch):
    # given: a one-second batch window in this (web) process
    settings.LEADOPS_ENRICHMENT_BATCH_SECONDS = 1
    monkeypatch.setattr("core.enqueue._batched_requested_at", {})
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {ApiKeyFactory().raw_key}")
    # when: three leads arrive within the window (only the first one sends a run)
    lead_ids = [
        client.post("/api/v1/leads/", {"email": f"b{n}@umbrella.example"}, format="json").json()["id"] for n in range(3)
    ]
    # then
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not Lead.objects.filter(pk__in=lead_ids, enriched_at__isnull=True).exists():
            break
        time.sleep(0.2)
    assert Lead.objects.filter(pk__in=lead_ids, account__domain="umbrella.example").count() == 3
