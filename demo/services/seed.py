"""`manage.py seed_demo`: the demo organisation, then the first N demo leads with their history.

Idempotent: reference data is get-or-create, and a lead whose normalised email exists already is
skipped (lead i is always the same person). Every lead row is written by the services production
uses (demo/services/history.py), so the demo cannot drift from what the app really stores."""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from django.db import models, transaction
from django.utils import timezone

from demo.services.history import lead_history_write, lead_plan
from demo.services.org import Org, org_ensure, rep_capacity_fit
from demo.services.people import Person, accounts_ensure, people
from leads.models import Activity, IntakeSubmission, Lead, StageChange
from routing.models import Assignment, QueueEntry, ResponseClock

DEFAULT_LEAD_COUNT = 1000  # ~30 s on SQLite: every row goes through the services, one lead at a time
BATCH = 500
# What the histories write (through the services), counted for the summary.
HISTORY_ROWS: list[tuple[str, type[models.Model]]] = [
    ("leads", Lead),
    ("intake submissions", IntakeSubmission),
    ("stage changes", StageChange),
    ("activities", Activity),
    ("assignments", Assignment),
    ("queue entries", QueueEntry),
    ("response clocks", ResponseClock),
]


@dataclass
class DemoSeedResult:
    created: Counter = field(default_factory=Counter)
    leads_total: int = 0

    def summary(self) -> str:
        parts = [f"{count} {name}" for name, count in self.created.items() if count]
        return ", ".join(parts) if parts else "nothing new"


def demo_data_seed(*, lead_count: int = DEFAULT_LEAD_COUNT, now: datetime | None = None) -> DemoSeedResult:
    """Create the demo users, teams, rules, sources, campaigns and tags, and the first
    `lead_count` demo leads with their history up to `now`, skipping whatever exists already."""
    now = now or timezone.now()
    result = DemoSeedResult()
    with transaction.atomic():
        org = org_ensure(today=now.date(), created=result.created)
    before = _history_rows()
    persons = list(people(lead_count))
    for start in range(0, len(persons), BATCH):
        _leads_seed(persons=persons[start : start + BATCH], org=org, now=now, result=result)
    after = _history_rows()
    for name, _ in HISTORY_ROWS:
        result.created[name] += after[name] - before[name]
    return result


def _history_rows() -> dict[str, int]:
    return {name: model.objects.count() for name, model in HISTORY_ROWS}


def _leads_seed(*, persons: list[Person], org: Org, now: datetime, result: DemoSeedResult) -> None:
    result.leads_total += len(persons)
    existing = set(
        Lead.objects.filter(email_normalized__in=[p.email_normalized for p in persons]).values_list(
            "email_normalized", flat=True
        )
    )
    persons = [p for p in persons if p.email_normalized not in existing]
    if not persons:
        return
    # A phone someone else's lead already holds (a real lead, not a demo one) is left off: capture
    # would otherwise add this person's submission to that lead.
    taken_phones = set(
        Lead.objects.filter(phone_e164__in=[p.phone_e164 for p in persons if p.phone_e164]).values_list(
            "phone_e164", flat=True
        )
    )
    accounts = accounts_ensure(persons=persons, reps=org.reps, created=result.created)
    plans = [
        lead_plan(person=p, org=org, accounts=accounts, drop_phone=p.phone_e164 in taken_phones, now=now)
        for p in persons
    ]
    rep_capacity_fit(opened=Counter(plan.owner.pk for plan in plans if plan.holds_capacity))
    for plan in plans:
        lead_history_write(plan=plan, org=org)
