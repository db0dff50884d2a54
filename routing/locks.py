"""Every row lock of the routing app.

Lock order, app-wide (same as leads/locks.py): Lead rows (ascending pk) first, then RepProfile rows.
Queue entries and response clocks are never locked on their own: they are only written by a
transaction that holds their lead's lock, so the lead lock stands for them. RoutingRule rows are
locked only while a rule moves, by a transaction that takes no other lock.

A rep's capacity, daily cap and round-robin counter change under the rep's row lock, taken by
`rep_front_take` (push: the first usable rep at the front of the balancing order that no
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

from django.db import connection
from django.db.models import F, Q, QuerySet

from core.db import skip_locked_clause
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


def rep_usable_exists(*, today_by_rep: dict[int, date]) -> bool:
    return RepProfile.objects.filter(_usable_today(today_by_rep)).exists()


# The order in which each balancing method hands out leads over a rep row `r` (as the engine's
# `_pick` orders them in Python), and the slack one lead of tolerance allows in that order's unit.
# Weights are at least 1 and capacities at least 0 (constraints), so the divisions are safe.
_BALANCING_ORDER = {
    Method.WEIGHTED: ("(r.routed_total + 1) * 1.0 / r.weight", "%s * 1.0 / r.weight"),
    Method.LOAD_BALANCED: ("r.open_leads * 1.0 / (CASE WHEN r.capacity > 1 THEN r.capacity ELSE 1 END)", "%s * 0.0"),
}
_COUNT_ORDER = ("r.routed_total * 1.0", "%s * 1.0")


def rep_front_take(
    *, today_by_rep: dict[int, date], method: str, tolerance: int, now: datetime
) -> tuple[int, int, int] | None:
    """Give one lead to a rep of `today_by_rep` that is usable today, at the front of the balancing
    method's order (within `tolerance` leads of it) and not held by a concurrent push (SKIP LOCKED;
    ties in random order): one more open lead, today's count and round-robin counter, in one
    statement that keeps the rep's row locked until the caller's transaction ends. Returns the rep's
    (id, routed_total, open_leads) after the take, or None when no rep was free to take.
    Simultaneous pushes spread over tied reps, and only a rep at the front as committed can be
    taken, so round-robin stays exact.

    Hand-written SQL (nothing vendor-specific but the lock clause from core.db): every push runs
    it, and the equivalent querysets cost ten times the database's own work to build and compile."""
    key, slack = _BALANCING_ORDER.get(method, _COUNT_ORDER)
    usable, usable_params = _usable_sql(today_by_rep)
    adapt = connection.ops.adapt_datefield_value
    today = f"CASE id {' '.join(['WHEN %s THEN %s'] * len(today_by_rep))} END"
    today_params = [value for rep_id, day in today_by_rep.items() for value in (rep_id, adapt(day))]
    table = RepProfile._meta.db_table
    sql = (
        f"UPDATE {table} SET open_leads = open_leads + 1, routed_total = routed_total + 1, "
        f"assigned_today = CASE WHEN assigned_on = {today} THEN assigned_today + 1 ELSE 1 END, "
        f"assigned_on = {today}, last_assigned_at = %s "
        f"WHERE id = (SELECT r.id FROM {table} r WHERE {usable} "
        f"AND {key} <= (SELECT MIN({key}) FROM {table} r WHERE {usable}) + {slack} "
        f"ORDER BY {key}, r.routed_total, RANDOM() LIMIT 1 {skip_locked_clause(of='r')}) "
        "RETURNING id, routed_total, open_leads"
    )
    params = [*today_params, *today_params, connection.ops.adapt_datetimefield_value(now)]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *usable_params, *usable_params, tolerance])
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1], row[2])


def _usable_sql(today_by_rep: dict[int, date]) -> tuple[str, list]:
    """`_usable_today` as SQL over the row `r`, with its parameters."""
    adapt = connection.ops.adapt_datefield_value
    by_day: dict[date, list[int]] = {}
    for rep_id, today in today_by_rep.items():
        by_day.setdefault(today, []).append(rep_id)
    parts, params = [], []
    for today, ids in by_day.items():
        parts.append(
            f"(r.id IN ({', '.join(['%s'] * len(ids))}) "
            "AND (r.assigned_on IS NULL OR r.assigned_on <> %s OR r.assigned_today < r.daily_cap) "
            "AND (r.out_of_office_from IS NULL OR r.out_of_office_from > %s OR r.out_of_office_until < %s))"
        )
        params += [*ids, adapt(today), adapt(today), adapt(today)]
    days = " OR ".join(parts) or "1 = 0"
    return f"r.is_active AND r.is_available AND r.open_leads < r.capacity AND ({days})", params


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
