"""The beat task of response SLAs: thin, idempotent, re-enqueued while a whole batch was found."""

import datetime as dt

import pytest
from django.db import transaction
from django.db.models import F

from routing.models import ClockStatus, Method, ResponseClock
from routing.services import lead_route
from routing.tasks import sla_sweep_task
from tests.leads.factories import LeadFactory
from tests.routing.factories import RepProfileFactory, TeamFactory, rule_with_action

pytestmark = pytest.mark.django_db


def test_a_full_batch_enqueues_the_sweep_again_and_a_redelivery_is_a_no_op(settings, monkeypatch):
    # given: three clocks past their warning time, batches of two
    settings.LEADOPS_SLA_SWEEP_BATCH = 2
    team = TeamFactory()
    RepProfileFactory(team=team)
    rule_with_action(method=Method.ROUND_ROBIN, team=team)
    for _ in range(3):
        with transaction.atomic():
            lead_route(lead=LeadFactory())
    ResponseClock.objects.update(warn_at=F("warn_at") - dt.timedelta(minutes=4, seconds=30))
    ResponseClock.objects.update(next_action_at=F("warn_at"))
    sent = []
    monkeypatch.setattr(sla_sweep_task, "apply_async", lambda **kwargs: sent.append(kwargs))
    # when
    first = sla_sweep_task()
    second = sla_sweep_task()
    third = sla_sweep_task()
    # then
    assert (first, second, third) == (2, 1, 0)
    assert len(sent) == 1  # only after the full batch
    assert ResponseClock.objects.filter(status=ClockStatus.OPEN, warned_at__isnull=False).count() == 3
