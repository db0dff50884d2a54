"""Intake while the Celery broker is down (issue 13, item 2): the request does not wait on the
broker, the lead is stored, and the beat sweeps pick the work up later."""

import socket
import time

import pytest
from celery import current_app
from django.conf import settings

from core import enqueue
from leads.models import Lead
from leads.tasks import lead_enrichment_run_task
from routing.models import Assignment, Method
from routing.tasks import assignment_notifications_run_task
from tests.conftest import requires_redis
from tests.routing.factories import RepProfileFactory, TeamFactory, rule_with_action

pytestmark = pytest.mark.django_db

INTAKE_BOUND_SECONDS = 1.0


def _closed_port() -> int:
    """A local port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def _breaker_closed():
    enqueue.breaker_reset()
    yield
    enqueue.breaker_reset()


@pytest.fixture
def broker_down(monkeypatch):
    """Point the Celery app at a local port where no broker listens, with fresh pools (Celery's
    own and core.enqueue's), so every send really tries it."""
    app = current_app._get_current_object()
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    monkeypatch.setenv("CELERY_BROKER_URL", url)  # Celery reads the environment before its settings
    monkeypatch.delenv("CELERY_BROKER_WRITE_URL", raising=False)
    monkeypatch.setattr(app.conf, "broker_url", url)
    assert app.conf.broker_write_url == url
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    return app


@pytest.fixture
def routed_team():
    team = TeamFactory()
    rep = RepProfileFactory(team=team)
    rule_with_action(method=Method.ROUND_ROBIN, team=team)
    return rep


def _intake(key_client, django_capture_on_commit_callbacks, email: str) -> tuple[float, object]:
    """One intake request with its after-commit callbacks (the enqueues) run, timed together."""
    started = time.perf_counter()
    with django_capture_on_commit_callbacks(execute=True):
        response = key_client.post("/api/v1/leads/", {"email": email, "first_name": "Ann"}, format="json")
    return time.perf_counter() - started, response


def test_intake_returns_within_a_bound_and_stores_the_lead_while_the_broker_is_down(
    broker_down, routed_team, key_client, django_capture_on_commit_callbacks
):
    # given: a broker URL where nothing listens
    # when
    elapsed, response = _intake(key_client, django_capture_on_commit_callbacks, "outage@x.example")
    # then
    assert response.status_code == 201, response.content
    assert elapsed < INTAKE_BOUND_SECONDS, f"intake took {elapsed:.2f} s with the broker down"
    assert Lead.objects.filter(email="outage@x.example").exists()
    assert enqueue.breaker_is_open()


def test_while_the_breaker_is_open_intake_does_not_try_the_broker(
    broker_down, routed_team, key_client, django_capture_on_commit_callbacks, monkeypatch
):
    # given: a first intake found the broker down
    _intake(key_client, django_capture_on_commit_callbacks, "first@x.example")
    tried = []

    def producers(task):
        tried.append(task.name)
        raise AssertionError("the broker was tried")

    monkeypatch.setattr(enqueue, "_producers", producers)
    # when
    elapsed, response = _intake(key_client, django_capture_on_commit_callbacks, "second@x.example")
    # then
    assert response.status_code == 201
    assert tried == [] and elapsed < INTAKE_BOUND_SECONDS


def test_the_sweeps_pick_up_the_work_the_outage_left(
    broker_down, routed_team, key_client, django_capture_on_commit_callbacks
):
    # given: two leads captured while the broker was down: no wake-up reached a worker
    for email in ("a@x.example", "b@x.example"):
        _intake(key_client, django_capture_on_commit_callbacks, email)
    assert Assignment.objects.filter(notified_at__isnull=True, rep=routed_team).count() == 2
    assert Lead.objects.filter(enriched_at__isnull=True).count() == 2
    # when: beat's sweeps run (the tasks of CELERY_BEAT_SCHEDULE, as a worker runs them)
    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {lead_enrichment_run_task.name, assignment_notifications_run_task.name} <= schedule
    lead_enrichment_run_task()
    assignment_notifications_run_task()
    # then
    assert Assignment.objects.filter(notified_at__isnull=True).count() == 0
    assert routed_team.user.notifications.count() == 2
    assert Lead.objects.filter(enriched_at__isnull=True).count() == 0


@requires_redis
def test_after_the_breaker_window_a_send_tries_the_broker_again(monkeypatch):
    # given: the breaker opened by an earlier failure, its window over; the test broker is up
    monkeypatch.setattr(enqueue, "_breaker_open_until", time.monotonic() - 1)
    # when
    sent = enqueue._send(assignment_notifications_run_task, {}, countdown=60)
    # then
    assert sent and not enqueue.breaker_is_open()


def test_a_send_to_a_down_broker_is_bounded_and_never_raises(broker_down):
    # when
    started = time.perf_counter()
    sent = enqueue._send(assignment_notifications_run_task, {})
    elapsed = time.perf_counter() - started
    # then
    assert not sent and elapsed < enqueue.SEND_TIMEOUT_SECONDS + 0.5
    assert enqueue.breaker_is_open()
