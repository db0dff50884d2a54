"""End to end: a real Celery worker and a real beat on Redis enforce a short SLA, no test code sweeps."""

import os
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.db import transaction

from core.models import Notification
from core.roles import Role
from routing.models import ClockStatus, Method, ResponseClock, SlaAlert, SlaPolicy
from routing.services import lead_route
from tests.conftest import ROOT, is_postgres
from tests.core.factories import UserFactory
from tests.leads.factories import LeadFactory
from tests.routing.factories import RepProfileFactory, TeamFactory, rule_with_action


def _start(args: list[str], *, log_name: str, env: dict, ready: str) -> subprocess.Popen:
    log_path = ROOT / "var" / log_name
    log_path.parent.mkdir(exist_ok=True)
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while ready not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"celery {args[0]} did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    return process


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def celery_worker_and_beat(transactional_db):
    """A worker and a beat (sweep every second) on the Redis broker, using the test database."""
    if not (is_postgres() and settings.REDIS_URL):
        pytest.skip("the real-worker test needs PostgreSQL and Redis")
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SLA_SWEEP_SECONDS": "1",
    }
    from config.celery import app

    app.connection_for_write().default_channel.client.flushdb()  # no stale messages from earlier runs
    schedule = ROOT / "var" / f"test-sla-beat-{os.getpid()}"
    for stale in schedule.parent.glob(f"{schedule.name}*"):
        stale.unlink()
    worker = _start(
        [
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"sla-{os.getpid()}@%h",
        ],
        log_name="test-sla-worker.log",
        env=env,
        ready="ready.",
    )
    beat = _start(
        ["beat", "--loglevel=INFO", "-s", str(schedule)], log_name="test-sla-beat.log", env=env, ready="beat: Starting"
    )
    yield worker, beat
    _stop(beat)
    _stop(worker)
    for stale in schedule.parent.glob(f"{schedule.name}*"):
        stale.unlink()


def test_beat_and_worker_warn_breach_and_reassign_an_untouched_lead(celery_worker_and_beat):
    # given: a 2-second SLA, reassignment 1 second after the breach
    SlaPolicy.objects.create(name="test", is_default=True, first_touch_seconds=2, escalate_after_seconds=1)
    team = TeamFactory(manager=UserFactory(with_role=Role.SALES_MANAGER))
    RepProfileFactory(team=team)
    RepProfileFactory(team=team)
    rule_with_action(method=Method.ROUND_ROBIN, team=team)
    lead = LeadFactory()
    # when: the lead is assigned and nobody touches it
    with transaction.atomic():
        first = lead_route(lead=lead)
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        lead.refresh_from_db()
        if lead.owner_id not in (None, first.rep.user_id):
            break
        time.sleep(0.5)
    # then: the worker and beat ran the ladder and moved the lead to the other rep
    assert lead.owner_id not in (None, first.rep.user_id), (ROOT / "var" / "test-sla-worker.log").read_text()[-3000:]
    old = ResponseClock.objects.get(lead=lead, rep=first.rep)
    assert old.status == ClockStatus.CLOSED and old.warned_at and old.breached_at and old.escalated_at
    assert ResponseClock.objects.filter(lead=lead, status=ClockStatus.OPEN).exclude(rep=first.rep).exists()
    assert SlaAlert.objects.filter(clock=old).count() == 3
    assert Notification.objects.filter(recipient=team.manager, title__startswith="SLA breached").count() == 1
