"""Races the intake promises to win, with real threads on PostgreSQL."""

import threading

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from leads.models import Activity, IntakeSubmission, Lead
from tests.conftest import requires_postgres
from tests.leads.factories import ApiKeyFactory

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]

THREADS = 8


def run_together(target, count: int) -> list:
    """Start `count` threads at the same instant; each gets its index and returns a result."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait()
            results[index] = target(index)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def client_with_key(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client


def test_concurrent_submissions_for_one_new_person_create_exactly_one_lead():
    # given
    raw_key = ApiKeyFactory().raw_key

    def submit(index: int):
        email = ["Dup@Example.com", "dup@example.com", " DUP@EXAMPLE.COM"][index % 3]
        response = client_with_key(raw_key).post(
            "/api/v1/leads/", {"email": email, "utm_content": f"variant-{index}"}, format="json"
        )
        return response.status_code, response.json()["id"]

    # when
    results = run_together(submit, THREADS)
    # then
    assert Lead.objects.count() == 1
    lead = Lead.objects.get()
    assert {lead_id for _, lead_id in results} == {lead.pk}
    assert sorted(status for status, _ in results) == [200] * (THREADS - 1) + [201]
    assert IntakeSubmission.objects.filter(lead=lead).count() == THREADS  # nothing lost
    assert Activity.objects.filter(lead=lead, kind="form_submitted").count() == THREADS


def test_concurrent_submissions_matching_by_phone_create_one_lead():
    raw_key = ApiKeyFactory().raw_key

    def submit(index: int):
        phone = ["+44 20 7946 0958", "+442079460958", "+44 (0)20 7946-0958"][index % 3]
        return client_with_key(raw_key).post("/api/v1/leads/", {"phone": phone}, format="json").status_code

    statuses = run_together(submit, THREADS)
    assert Lead.objects.count() == 1
    assert sorted(statuses) == [200] * (THREADS - 1) + [201]


def test_concurrent_retries_with_one_idempotency_key_store_one_submission():
    # given
    raw_key = ApiKeyFactory().raw_key

    def submit(index: int):
        response = client_with_key(raw_key).post(
            "/api/v1/leads/", {"email": "retry@example.com"}, format="json", HTTP_IDEMPOTENCY_KEY="checkout-42"
        )
        return response.status_code, response.json()["id"]

    # when
    results = run_together(submit, THREADS)
    # then
    assert IntakeSubmission.objects.count() == 1
    assert Activity.objects.filter(kind="form_submitted").count() == 1
    assert len({lead_id for _, lead_id in results}) == 1
    assert {status for status, _ in results} == {201}


def test_many_different_people_at_once_are_all_stored():
    raw_key = ApiKeyFactory().raw_key

    def submit(index: int):
        return client_with_key(raw_key).post("/api/v1/leads/", {"email": f"p{index}@x.example"}, format="json")

    responses = run_together(submit, THREADS)
    assert [r.status_code for r in responses] == [201] * THREADS
    assert Lead.objects.count() == THREADS


def test_a_returning_touch_waits_for_a_concurrent_write_and_never_overwrites_it():
    # given: a known person without a company; enrichment holds their lead (row lock) and is about
    # to fill the company in, while their next submission names another one
    from leads.locks import leads_for_update
    from leads.services import IntakeContext, LeadData, lead_capture

    lead = lead_capture(data=LeadData(email="ada@example.org"), context=IntakeContext(raw_payload={})).lead
    locked, release = threading.Event(), threading.Event()

    def enrich(index: int):
        if index == 0:
            with transaction.atomic():
                leads_for_update(lead_ids=[lead.pk]).get()
                locked.set()
                release.wait(timeout=10)
                Lead.objects.filter(pk=lead.pk).update(company_name="Enriched Ltd")
            return None
        locked.wait(timeout=10)
        threading.Timer(0.3, release.set).start()  # the capture must wait for the lock meanwhile
        return lead_capture(
            data=LeadData(email="ada@example.org", company_name="Typed Inc", utm_source="newsletter"),
            context=IntakeContext(raw_payload={}),
        )

    # when
    _, result = run_together(enrich, 2)
    # then: the capture read the lead after enrichment committed and only filled blanks
    lead.refresh_from_db()
    assert not result.created and result.lead.pk == lead.pk
    assert lead.company_name == "Enriched Ltd"
    assert lead.last_touch["utm_source"] == "newsletter"
    assert Activity.objects.filter(lead=lead, kind="form_submitted").count() == 2
    assert IntakeSubmission.objects.filter(lead=lead).count() == 2
