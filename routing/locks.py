"""Every row lock of the routing app.

Lock order, app-wide (same as leads/locks.py): Lead rows (ascending pk) first, then RepProfile rows.
Queue entries and response clocks are never locked on their own: they are only written by a
transaction that holds their lead's lock, so the lead lock stands for them. RoutingRule rows are
locked only while a rule moves, by a transaction that takes no other lock.

A rep's capacity, daily cap and round-robin counter change under the rep's row lock, taken by
`reps_front_for_take` (push: the first usable rep at the front of the balancing order that no
concurrent push holds, SKIP LOCKED) or `reps_for_take` (one chosen rep). A push that must wait for
a rep takes it inside a savepoint and rolls the savepoint back when the rep turns out to be full,
which releases the lock: a push never holds two rep locks, so two pushes cannot deadlock on reps.
A reassignment takes the old owner's and the new owner's rows in ascending pk order.

Response SLAs extend the order: Lead -> RepProfile -> ResponseClock -> SlaAlert. The assignment
writer and the contact hook write clock rows while their transaction holds the lead (and rep):
clocks come after them. The SLA sweep locks clock rows only, with SKIP LOCKED, and never takes a
lead or rep lock while it holds them: a reassignment the ladder asks for runs after the sweep's
transaction committed, in its own (lead_reassign).
"""

from datetime import date, datetime

from django.db.models import ExpressionWrapper, F, FloatField, Q, QuerySet, Subquery, Value
from django.db.models.functions import Greatest

from leads.models import Lead
from routing.models import RUNNING_CLOCK_STATUSES, Method, RepProfile, ResponseClock, RoutingRule, SlaAlert


def leads_claimable_for_update(*, lead_ids: list[int]) -> QuerySet[Lead]:
    """Leads someone wants to claim, best first, skipping those another claimer holds (SKIP LOCKED:
    a claimer never waits behind another one). Only primary keys in the WHERE clause, so the plan
    is index lookups whatever the table size or the planner's statistics; the caller checks the
    locked row (owner, queue entry) and slices to the one lead it takes."""
    return (
        Lead.objects.filter(pk__in=lead_ids)
        .order_by("-score", "pk")
        .select_for_update(of=("self",), no_key=True, skip_locked=True)
    )


def leads_for_reassign(*, lead_ids: list[int]) -> QuerySet[Lead]:
    """Leads whose owner a manager changes; waits for a concurrent claim or reassignment to finish."""
    return Lead.objects.filter(pk__in=lead_ids).order_by("pk").select_for_update(of=("self",), no_key=True)


def reps_for_recount(*, rep_ids: list[int]) -> QuerySet[RepProfile]:
    """A rep whose open-lead counter is recounted: waits for in-flight assignments to this rep to
    commit, so the count that follows sees them. Takes no lead lock, so the order holds."""
    return RepProfile.objects.filter(pk__in=rep_ids).order_by("pk").select_for_update(of=("self",), no_key=True)


def routing_rules_for_reorder() -> QuerySet[RoutingRule]:
    """The ordered rules (the fallback excluded) while one moves: a concurrent move waits, so two
    moves never interleave their position writes. Positions and keys only."""
    return (
        RoutingRule.objects.filter(is_fallback=False)
        .order_by("position", "pk")
        .only("pk", "position")
        .select_for_update(of=("self",))
    )


def reps_for_take(*, rep_ids: list[int], skip_locked: bool) -> QuerySet[RepProfile]:
    """Reps whose counters are about to change. `skip_locked`: a rep a concurrent push holds is left
    out (the caller tries another or asks again) instead of waited for."""
    return (
        RepProfile.objects.filter(pk__in=rep_ids)
        .order_by("pk")
        .select_for_update(of=("self",), no_key=True, skip_locked=skip_locked)
    )


def _usable_today(today_by_rep: dict[int, date]) -> Q:
    """Usable right now on the rep's own calendar day: active, available, under capacity and
    daily cap, not out of office."""
    by_day: dict[date, list[int]] = {}
    for rep_id, today in today_by_rep.items():
        by_day.setdefault(today, []).append(rep_id)
    condition = Q(pk__in=[])
    for today, ids in by_day.items():
        condition |= (
            Q(pk__in=ids)
            & (Q(assigned_on__isnull=True) | ~Q(assigned_on=today) | Q(assigned_today__lt=F("daily_cap")))
            & (Q(out_of_office_from__isnull=True) | Q(out_of_office_from__gt=today) | Q(out_of_office_until__lt=today))
        )
    return condition & Q(is_active=True, is_available=True, open_leads__lt=F("capacity"))


def balancing_key(method: str):
    """The order in which a balancing method hands out leads (as routing's engine orders them in
    Python), and how far past the front a rep may be, in that order's unit, per lead of tolerance."""
    if method == Method.WEIGHTED:
        weight = Greatest(F("weight"), Value(1))
        return ExpressionWrapper((F("routed_total") + 1) * 1.0 / weight, output_field=FloatField()), 1.0
    if method == Method.LOAD_BALANCED:
        capacity = Greatest(F("capacity"), Value(1))
        return ExpressionWrapper(F("open_leads") * 1.0 / capacity, output_field=FloatField()), 0.0
    return ExpressionWrapper(F("routed_total") * 1.0, output_field=FloatField()), 1.0


def reps_front_for_take(*, today_by_rep: dict[int, date], method: str, tolerance: int) -> QuerySet[RepProfile]:
    """The usable reps at the front of the balancing order (within `tolerance` leads of it) that no
    concurrent push holds, first one first (ties in random order), locked with SKIP LOCKED: the
    caller slices to one. Simultaneous pushes spread over tied reps, and only a rep at the front
    as committed can be taken, so round-robin stays exact."""
    key, unit = balancing_key(method)
    usable = RepProfile.objects.filter(_usable_today(today_by_rep))
    if method == Method.WEIGHTED:
        # The unit of one lead differs per rep (1 / weight): allow the tolerance in that rep's unit.
        slack = ExpressionWrapper(Value(tolerance) * 1.0 / Greatest(F("weight"), Value(1)), output_field=FloatField())
    else:
        slack = Value(tolerance * unit, output_field=FloatField())
    front = Subquery(usable.annotate(k=key).order_by("k").values("k")[:1], output_field=FloatField())
    return (
        usable.annotate(k=key, slack=slack)
        .filter(k__lte=F("slack") + front)
        .order_by("k", "routed_total", "?")
        .select_for_update(of=("self",), no_key=True, skip_locked=True)
    )


def rep_usable_exists(*, today_by_rep: dict[int, date]) -> bool:
    return RepProfile.objects.filter(_usable_today(today_by_rep)).exists()


def clocks_due_for_update(*, now: datetime, limit: int) -> QuerySet[ResponseClock]:
    """Running clocks whose next step is due, oldest first, skipping those another sweep holds.
    Read through the partial index clock_running_next_action (status, next_action_at)."""
    return (
        ResponseClock.objects.filter(
            status__in=RUNNING_CLOCK_STATUSES, next_action_at__isnull=False, next_action_at__lte=now
        )
        .select_related("lead", "rep__user", "team")
        .order_by("next_action_at", "id")
        .select_for_update(of=("self",), no_key=True, skip_locked=True)[:limit]
    )


def alerts_unsent_for_update(*, lease_expired_before: datetime, limit: int) -> QuerySet[SlaAlert]:
    """Alerts whose email is still to send and nobody is sending right now (no claim, or a claim
    older than the lease: that worker died)."""
    return (
        SlaAlert.objects.filter(email_sent_at__isnull=True)
        .filter(Q(email_claimed_at__isnull=True) | Q(email_claimed_at__lt=lease_expired_before))
        .order_by("created_at", "id")
        .select_for_update(of=("self",), no_key=True, skip_locked=True)[:limit]
    )
