"""Reads of response SLAs (routing/services/sla.py), scoped to what the user may see."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Aggregate, Count, DurationField, F, Q, QuerySet
from django.utils import timezone

from routing.models import RUNNING_CLOCK_STATUSES, ResponseClock
from routing.selectors import user_can_edit_rules, user_can_reassign


class Median(Aggregate):
    """PostgreSQL's percentile_cont(0.5); NULL elsewhere (SQLite dev runs)."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return "NULL", []


def user_can_see_sla_board(user: AbstractBaseUser) -> bool:
    return user.is_authenticated and (user.is_superuser or user_can_reassign(user) or user_can_edit_rules(user))


def sla_clock_list_for_user(*, user: AbstractBaseUser) -> QuerySet[ResponseClock]:
    """Ops and admins see every team; a manager the teams they manage (and reps without a team)."""
    clocks = ResponseClock.objects.all()
    if user.is_superuser or user_can_edit_rules(user):
        return clocks
    if user_can_reassign(user):
        return clocks.filter(Q(team__manager=user) | Q(team__isnull=True))
    return clocks.none()


def sla_clock_list_running(*, user: AbstractBaseUser, now: datetime, limit: int = 50) -> dict[str, list]:
    """Running clocks, soonest due first: those still within the SLA, and those past it."""
    running = (
        sla_clock_list_for_user(user=user)
        .filter(status__in=RUNNING_CLOCK_STATUSES)
        .select_related("lead", "rep__user", "policy")
        .order_by("due_at", "id")
    )
    return {
        "approaching": list(running.filter(due_at__gt=now)[:limit]),
        "breached": list(running.filter(due_at__lte=now)[:limit]),
    }


@dataclass(frozen=True)
class ComplianceRow:
    name: str
    decided: int
    within: int
    median: timedelta | None

    @property
    def share(self) -> float | None:
        return self.within / self.decided if self.decided else None


_WITHIN = Q(first_touch_at__isnull=False, first_touch_at__lte=F("due_at"))
_MISSED = Q(breached_at__isnull=False) | Q(first_touch_at__gt=F("due_at"))


def _compliance(clocks: QuerySet[ResponseClock], *, group: list[str], name) -> list[ComplianceRow]:
    rows = (
        clocks.values(*group)
        .annotate(
            within=Count("id", filter=_WITHIN),
            decided=Count("id", filter=_WITHIN | _MISSED),
            median=Median("time_to_first_touch", filter=Q(time_to_first_touch__isnull=False)),
        )
        .order_by(*group)
    )
    return [
        ComplianceRow(name=name(row), decided=row["decided"], within=row["within"], median=row["median"])
        for row in rows
    ]


def sla_compliance(*, user: AbstractBaseUser, since: datetime) -> dict[str, list[ComplianceRow]]:
    """Per rep and per team, for clocks started since `since`: the share touched within the SLA
    (of those decided: touched, or breached) and the median time to first touch. Two queries."""
    clocks = sla_clock_list_for_user(user=user).filter(started_at__gte=since)

    def rep_name(row: dict) -> str:
        full = f"{row['rep__user__first_name']} {row['rep__user__last_name']}".strip()
        return full or row["rep__user__username"]

    return {
        "reps": _compliance(
            clocks,
            group=["rep_id", "rep__user__first_name", "rep__user__last_name", "rep__user__username"],
            name=rep_name,
        ),
        "teams": _compliance(clocks, group=["team_id", "team__name"], name=lambda row: row["team__name"] or "No team"),
    }


def sla_periods(*, now: datetime) -> dict[str, datetime]:
    """Start of today and of this week (Monday), in the site's time zone."""
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return {"today": today, "week": today - timedelta(days=today.weekday())}


def sla_due_by_lead(*, lead_ids: list[int]) -> dict[int, ResponseClock]:
    """The running clock of each of these leads (one query, for countdowns in a list)."""
    return {
        clock.lead_id: clock
        for clock in ResponseClock.objects.filter(lead_id__in=lead_ids, status__in=RUNNING_CLOCK_STATUSES).only(
            "id", "lead_id", "warn_at", "due_at", "status", "rep_id"
        )
    }
