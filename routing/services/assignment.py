"""Push assignment, reassignment and the bookkeeping that keeps owner, assigned_at and the rep's
open-lead counter consistent. Lock order: see routing/locks.py (lead rows, then rep rows)."""

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import OperationalError, connection, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from core.enqueue import enqueue_batched_on_commit
from core.exceptions import ApplicationError, Conflict, NotFound
from core.sql import cursor_prepared, rows_insert_together
from leads.models import CLOSED_STAGES, Activity, ActivityKind, Lead
from routing.locks import leads_for_reassign, reps_for_recount
from routing.models import Assignment, Method, Queue, QueueEntry, RepProfile
from routing.selectors import lead_open_ids_for_rep
from routing.services.engine import Decision, decision_rep_change, rep_local_today, routing_decide
from routing.services.sla import sla_clock_build, sla_clock_restart

# A push decision that loses a race for a rep's last slot decides again with fresh rep rows.
MAX_ROUTE_ATTEMPTS = 25


def _owner_notification_request() -> None:
    from routing.tasks import assignment_notifications_run_task

    enqueue_batched_on_commit(assignment_notifications_run_task, window_seconds=settings.LEADOPS_NOTIFY_BATCH_SECONDS)


class RepAtCapacity(ApplicationError):
    status_code = 403
    code = "rep_at_capacity"


def rep_capacity_take(
    *,
    rep: RepProfile,
    now: datetime,
    expected_routed_total: int | None = None,
    balances: bool = False,
    skip_locked: bool = False,
    daily_cap: bool = True,
) -> bool:
    """Give the rep one more open lead if they are under capacity and daily cap (one conditional
    UPDATE, which also holds the rep's row lock until commit). With `expected_routed_total`, it
    succeeds only if no one routed to this rep since we read it: round-robin stays exact under
    concurrency. `skip_locked` (PostgreSQL): fail at once, holding no lock, if a concurrent
    transaction holds the rep. `daily_cap=False`: a claim or a manager's choice, where only
    capacity holds. The SQL is fixed text (every push routing runs it; compiling the
    equivalent queryset update cost a tenth of an intake's CPU)."""
    ops = connection.ops
    today = ops.adapt_datefield_value(rep_local_today(rep=rep, now=now))
    changes = _CAPACITY_CHANGES + (", routed_total = routed_total + 1" if balances else "")
    condition, condition_params = _CAPACITY_CONDITION, [rep.pk]
    if daily_cap:
        condition += _DAILY_CAP_CONDITION
        condition_params.append(today)
    if expected_routed_total is not None:
        condition += " AND routed_total = %s"
        condition_params.append(expected_routed_total)
    table = RepProfile._meta.db_table
    if skip_locked:
        where = f"id = (SELECT id FROM {table} WHERE {condition} FOR NO KEY UPDATE SKIP LOCKED)"
    else:
        where = condition
    with cursor_prepared() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {changes} WHERE {where}",
            [today, today, ops.adapt_datetimefield_value(now), *condition_params],
        )
        return cursor.rowcount == 1


_CAPACITY_CHANGES = (
    "open_leads = open_leads + 1, assigned_today = CASE WHEN assigned_on = %s THEN assigned_today + 1 ELSE 1 END, "
    "assigned_on = %s, last_assigned_at = %s"
)
_CAPACITY_CONDITION = "id = %s AND is_active AND open_leads < capacity"
_DAILY_CAP_CONDITION = " AND (assigned_on IS NULL OR assigned_on <> %s OR assigned_today < daily_cap)"


# The order in which each balancing method hands out leads, over a rep row `r` (as `_pick` in
# services/engine.py orders them in Python), and how far past the front a rep may be, in that
# order's unit, for one lead of tolerance (see rep_capacity_take_next).
_BALANCING_ORDER = {
    Method.WEIGHTED: ("(r.routed_total + 1)::float8 / GREATEST(r.weight, 1)", "1.0 / GREATEST(r.weight, 1)"),
    Method.LOAD_BALANCED: ("r.open_leads::float8 / GREATEST(r.capacity, 1)", "0"),
}
_COUNT_ORDER = ("r.routed_total", "1")


@dataclass
class TakeNext:
    rep: RepProfile | None  # None: nobody taken
    front_held: bool = False  # usable reps are at the front, but concurrent pushes hold them all


def rep_capacity_take_next(*, decision: Decision, now: datetime) -> TakeNext:
    """PostgreSQL: give the lead to one of the decision's eligible reps that is still first in the
    method's order (fewest routed so far, ...) and that no concurrent push holds right now, in one
    statement. Nobody is taken when every rep at the front is held (`front_held`) or none is
    usable any more.

    Concurrent pushes used to choose the same rep and all but one decided again (half of all
    pushes at 8 clients). Skipping held rows spreads them over the tied reps, and requiring the
    front of the order, as committed, keeps round-robin exact: a rep is only taken at the
    current minimum, so counts never differ by more than one. DJANGO_ROUTING_BALANCE_TOLERANCE
    lets a rep up to that many leads past the front take a lead while the front is busy (counts
    then differ by at most one more), so that simultaneous leads need not wait for each other.
    The row condition is repeated on `r` so that PostgreSQL re-checks it on a row a concurrent
    push changed meanwhile."""
    eligible = {rep.pk: rep for rep in decision.eligible}
    ids = list(eligible)
    todays = [rep_local_today(rep=eligible[pk], now=now) for pk in ids]
    tolerance = settings.LEADOPS_ROUTING_BALANCE_TOLERANCE
    with cursor_prepared() as cursor:
        cursor.execute(_take_next_sql(decision.method, not connection.in_atomic_block), [ids, todays, tolerance, now])
        taken_id, routed_total, open_leads, anyone_usable = cursor.fetchone()
    if taken_id is None:
        return TakeNext(rep=None, front_held=anyone_usable)
    rep = eligible[taken_id]
    rep.routed_total, rep.open_leads = routed_total - 1, open_leads - 1  # as they were when it was taken
    return TakeNext(rep=rep)


@cache
def _take_next_sql(method: str, own_transaction: bool) -> str:
    """The statement of `rep_capacity_take_next` for a balancing method (built once per process).

    `own_transaction` (autocommit, e.g. intake's take before the lead's insert): its commit does
    not wait for the WAL flush (~0.1 ms here). Nothing can be lost that matters: whatever commits
    synchronously after it (the lead's insert) flushes the take's WAL too, so a take lost in a
    crash belongs to writes that were lost with it."""
    order, unit = _BALANCING_ORDER.get(method, _COUNT_ORDER)
    table = RepProfile._meta.db_table
    usable = (
        "r.is_active AND r.is_available AND r.open_leads < r.capacity"
        " AND (r.assigned_on IS NULL OR r.assigned_on <> c.today OR r.assigned_today < r.daily_cap)"
        " AND NOT (r.out_of_office_from IS NOT NULL AND r.out_of_office_from <= c.today"
        " AND c.today <= COALESCE(r.out_of_office_until, 'infinity'::date))"
    )
    return (
        f"WITH c AS (SELECT * FROM unnest(%s::bigint[], %s::date[]) AS c(id, today)), "
        f"front AS (SELECT min({order}) AS key FROM {table} r JOIN c ON c.id = r.id WHERE {usable}), "
        f"pick AS (SELECT r.id, c.today FROM {table} r JOIN c ON c.id = r.id "
        f"WHERE {usable} AND {order} <= (SELECT key FROM front) + %s * {unit} "
        f"ORDER BY {order}, r.routed_total, random() LIMIT 1 FOR NO KEY UPDATE OF r SKIP LOCKED), "
        f"taken AS (UPDATE {table} r SET open_leads = r.open_leads + 1, "
        "assigned_today = CASE WHEN r.assigned_on = pick.today THEN r.assigned_today + 1 ELSE 1 END, "
        "assigned_on = pick.today, last_assigned_at = %s, routed_total = r.routed_total + 1 "
        "FROM pick WHERE r.id = pick.id RETURNING r.id, r.routed_total, r.open_leads) "
        "SELECT taken.id, taken.routed_total, taken.open_leads, (SELECT key FROM front) IS NOT NULL "
        f"FROM (SELECT 1) one LEFT JOIN taken ON true{_ASYNC_COMMIT if own_transaction else ''}"
    )


# Evaluated once per statement; `true`: only for the statement's own (autocommit) transaction.
_ASYNC_COMMIT = " CROSS JOIN (SELECT set_config('synchronous_commit', 'off', true)) async_commit"


# While every rep at the front is held by simultaneous pushes, the push asks again after these
# pauses (ms): the holders commit within a few milliseconds. Waiting on their row locks instead
# cost ~4 ms of CPU per wait (a savepoint whose rollback makes psycopg drop every prepared
# statement, fresh rep rows, deciding again) and a quarter of all push CPU at 8 clients.
_FRONT_HELD_PAUSES_MS = (1, 1, 2, 2, 4, 4, 8)


def _rep_capacity_take_next_when_free(*, decision: Decision, now: datetime) -> RepProfile | None:
    """`rep_capacity_take_next`, asking again while the front is held (None: still held after
    ~22 ms, or nobody usable: the caller decides again and waits on the locks)."""
    taken = rep_capacity_take_next(decision=decision, now=now)
    for pause_ms in _FRONT_HELD_PAUSES_MS:
        if taken.rep is not None or not taken.front_held:
            break
        time.sleep(pause_ms / 1000)
        taken = rep_capacity_take_next(decision=decision, now=now)
    return taken.rep


class _LostRace(Exception):
    pass


def _rep_capacity_take_or_release(*, decision: Decision, now: datetime, first_attempt: bool) -> bool:
    """Take the chosen rep's capacity, never keeping a lock on a rep it did not get.

    A conditional UPDATE that waited for a concurrent transaction and then found the row changed
    still keeps that row locked in PostgreSQL; two pushes each holding one rep and waiting for the
    other's would deadlock. So a first attempt does not wait (SKIP LOCKED: no savepoint, the
    usual case), and a retry, which must wait for the concurrent push to commit so that the
    decision sees its outcome, runs in a savepoint whose rollback drops the lock."""
    if first_attempt and connection.vendor == "postgresql":
        return rep_capacity_take(
            rep=decision.rep,
            now=now,
            expected_routed_total=decision.expected_routed_total,
            balances=decision.balances,
            skip_locked=True,
        )
    try:
        with transaction.atomic():
            if not rep_capacity_take(
                rep=decision.rep,
                now=now,
                expected_routed_total=decision.expected_routed_total,
                balances=decision.balances,
            ):
                raise _LostRace
    except _LostRace:
        return False
    return True


def rep_capacity_release(*, rep_id: int) -> None:
    RepProfile.objects.filter(pk=rep_id, open_leads__gt=0).update(open_leads=F("open_leads") - 1)


def _assignment_rows(
    *,
    lead: Lead,
    decision: Decision | None,
    now: datetime,
    rep: RepProfile | None,
    queue: Queue | None,
    method: str | None,
    reason: str,
    actor: AbstractBaseUser | None,
) -> tuple[Assignment, Activity]:
    """The unsaved assignment and its timeline activity (the payload names the assignment once
    it has an id)."""
    assignment = Assignment(
        lead=lead,
        rep=rep,
        queue=queue if rep is None else None,
        rule=decision.rule if decision else None,
        rule_name=decision.rule.name if decision else "",
        method=method or decision.method,
        arm=decision.arm if decision and decision.rule.split_percent else "",
        candidates=decision.candidates if decision else [],
        reason=(reason or decision.reason)[:500],
        actor=actor,
        created_at=now,
    )
    kind = ActivityKind.CLAIMED if assignment.method == Method.CLAIM else ActivityKind.ASSIGNED
    payload = {"method": assignment.method, "reason": assignment.reason}
    payload.update({"owner": rep.user_id} if rep is not None else {"queue": queue.name if queue else ""})
    return assignment, Activity(lead=lead, kind=kind, occurred_at=now, actor=actor, payload=payload)


def _assignment_record(
    *,
    lead: Lead,
    decision: Decision | None,
    now: datetime,
    rep: RepProfile | None = None,
    queue: Queue | None = None,
    method: str | None = None,
    reason: str = "",
    actor: AbstractBaseUser | None = None,
) -> Assignment:
    rep = rep if rep is not None else (decision.rep if decision else None)
    queue = queue if queue is not None else (decision.queue if decision else None)
    assignment, activity = _assignment_rows(
        lead=lead, decision=decision, now=now, rep=rep, queue=queue, method=method, reason=reason, actor=actor
    )
    assignment.save(force_insert=True)
    activity.payload = {"assignment": assignment.pk, **activity.payload}
    activity.save(force_insert=True)
    sla_clock_restart(lead=lead, assignment=assignment)
    if rep is not None and assignment.method != Method.CLAIM:
        _owner_notification_request()
    return assignment


def _fresh_route_write(
    *, lead: Lead, decision: Decision, now: datetime, actor: AbstractBaseUser | None, reason: str
) -> Assignment:
    """The writes of routing a lead captured in this transaction, in one statement on PostgreSQL
    (core.sql): the assignment, its timeline activity, the owner's response clock or the queue
    entry, and the lead's owner. The same rows as the ORM path above; one round trip instead of
    five."""
    route = _route_rows(lead=lead, decision=decision, now=now, actor=actor, reason=reason)
    update = (lead, ["owner", "assigned_at"]) if decision.rep is not None else None
    rows_insert_together(route.rows, sql_for=route.sql_for(first_row=0), update=update)
    route.inserted()
    route.owner_notification_request()
    return route.rows[0]


def _lead_set_owner(*, lead: Lead, rep: RepProfile | None, now: datetime) -> None:
    Lead.objects.filter(pk=lead.pk).update(owner_id=rep.user_id if rep else None, assigned_at=now if rep else None)
    lead.owner = rep.user if rep else None
    lead.assigned_at = now if rep else None


def _queue_put(*, lead: Lead, queue: Queue, now: datetime, fresh: bool = False) -> None:
    due_at = now + timedelta(minutes=queue.sla_minutes)
    if fresh:  # a lead captured in this transaction has no entry yet
        QueueEntry.objects.create(lead=lead, queue=queue, score=lead.score, enqueued_at=now, due_at=due_at)
        return
    QueueEntry.objects.update_or_create(
        lead=lead,
        defaults={
            "queue": queue,
            "score": lead.score,
            "enqueued_at": now,
            "due_at": due_at,
            "claimed_at": None,
            "claimed_by": None,
        },
    )


def _queue_close(*, lead: Lead, rep: RepProfile | None, now: datetime) -> None:
    QueueEntry.objects.filter(lead=lead, claimed_at__isnull=True).update(claimed_at=now, claimed_by=rep)


def _route_decide(*, lead: Lead, now: datetime, exclude_rep_ids: frozenset[int] = frozenset()) -> Decision:
    """Decide and take the chosen rep's capacity, deciding again when a concurrent request took
    the rep first."""
    from routing.selectors import routing_rules_active

    rules = routing_rules_active()
    decision = None
    for attempt in range(MAX_ROUTE_ATTEMPTS):
        first_take = attempt == 0 and connection.vendor == "postgresql"
        decision = routing_decide(
            lead=lead, now=now, rules=rules, exclude_rep_ids=exclude_rep_ids, recent_candidates=first_take
        )
        if decision.rep is None:
            break
        if first_take and decision.balances:
            rep = _rep_capacity_take_next_when_free(decision=decision, now=now)
            if rep is not None:
                decision_rep_change(decision=decision, rep=rep)  # counters as taken, maybe another rep
                break
            continue  # the reps at the front are all held: decide again, waiting for them this time
        if _rep_capacity_take_or_release(decision=decision, now=now, first_attempt=attempt == 0):
            break
    else:
        decision.queue, decision.rep = decision.rule.queue, None
        decision.reason = "queued: every eligible rep was taken by concurrent requests"
    return decision


def _route(
    *,
    lead: Lead,
    now: datetime,
    actor: AbstractBaseUser | None = None,
    exclude_rep_ids: frozenset[int] = frozenset(),
    reason_prefix: str = "",
    fresh: bool = False,
) -> Assignment:
    """Decide and apply. The caller holds the lead (its own fresh insert, or a row lock)."""
    decision = _route_decide(lead=lead, now=now, exclude_rep_ids=exclude_rep_ids)
    reason = f"{reason_prefix}{decision.reason}"
    if fresh and connection.vendor == "postgresql":
        return _fresh_route_write(lead=lead, decision=decision, now=now, actor=actor, reason=reason)
    # A fresh lead (captured in this transaction) has no owner and no queue entry: fewer queries on
    # the intake path.
    if decision.rep is not None:
        _lead_set_owner(lead=lead, rep=decision.rep, now=now)
        if not fresh:
            _queue_close(lead=lead, rep=decision.rep, now=now)
    else:
        if not fresh:
            _lead_set_owner(lead=lead, rep=None, now=now)
        _queue_put(lead=lead, queue=decision.queue, now=now, fresh=fresh)
    return _assignment_record(lead=lead, decision=decision, now=now, actor=actor, reason=reason)


@dataclass
class RouteBeforeInsert:
    """A push decided for a lead that is about to be inserted (PostgreSQL intake): the rep's
    capacity is taken, the lead carries its owner, and `rows` (the assignment, its activity, and
    the response clock or queue entry) go into the lead's own insert statement."""

    lead: Lead
    decision: Decision
    rows: list

    def sql_for(self, *, first_row: int, lead_row: int | None = None) -> dict[tuple[int, str], str]:
        """`rows_insert_together` placeholders of these rows, at `first_row` of a statement whose
        row `lead_row` is the lead (None: the lead is stored already)."""
        assignment_id = f"{{r{first_row}}}"
        sql_for = {}
        if lead_row is not None:
            sql_for = {(first_row + i, "lead_id"): f"{{r{lead_row}}}" for i in range(len(self.rows))}
        sql_for[(first_row + 1, "payload")] = f"jsonb_build_object('assignment', {assignment_id}) || %s"
        if self.decision.rep is not None:
            sql_for[(first_row + 2, "assignment_id")] = assignment_id
        return sql_for

    def inserted(self) -> None:
        assignment, activity, follow_up = self.rows
        for row in self.rows:
            row.lead = self.lead  # the id it has now
        activity.payload = {"assignment": assignment.pk, **activity.payload}
        if self.decision.rep is not None:
            follow_up.assignment = assignment

    def owner_notification_request(self) -> None:
        """After the insert: the owner hears of the lead once the transaction commits."""
        if self.decision.rep is not None:
            _owner_notification_request()

    def cancel(self) -> None:
        """The person turned out to have a lead already: give the rep back what the take counted."""
        self.lead.owner, self.lead.assigned_at = None, None
        rep = self.decision.rep
        if rep is None:
            return
        RepProfile.objects.filter(pk=rep.pk).update(
            open_leads=Greatest(F("open_leads") - 1, 0),
            assigned_today=Greatest(F("assigned_today") - 1, 0),
            routed_total=Greatest(F("routed_total") - (1 if self.decision.balances else 0), 0),
        )


def lead_route_before_insert(*, lead: Lead, actor: AbstractBaseUser | None = None) -> RouteBeforeInsert:
    """Push assignment of a new lead before its insert, so that the insert writes the owner and
    the routing rows in the same statement (PostgreSQL intake: one round trip fewer, and no second
    version of the new lead row with all its index entries). The caller inserts or `cancel`s."""
    now = timezone.now()
    decision = _route_decide(lead=lead, now=now)
    return _route_rows(lead=lead, decision=decision, now=now, actor=actor, reason=decision.reason)


def _route_rows(
    *, lead: Lead, decision: Decision, now: datetime, actor: AbstractBaseUser | None, reason: str
) -> RouteBeforeInsert:
    """The unsaved rows of a push decision; the lead gets its owner in memory."""
    rep, queue = decision.rep, decision.queue if decision.rep is None else None
    assignment, activity = _assignment_rows(
        lead=lead, decision=decision, now=now, rep=rep, queue=queue, method=None, reason=reason, actor=actor
    )
    if rep is not None:
        lead.owner, lead.assigned_at = rep.user, now
        follow_up = sla_clock_build(lead=lead, assignment=assignment)  # always a clock for an owner
    else:
        lead.owner, lead.assigned_at = None, None
        due_at = now + timedelta(minutes=queue.sla_minutes)
        follow_up = QueueEntry(lead=lead, queue=queue, score=lead.score, enqueued_at=now, due_at=due_at)
    return RouteBeforeInsert(lead=lead, decision=decision, rows=[assignment, activity, follow_up])


def lead_route(*, lead: Lead, actor: AbstractBaseUser | None = None, fresh: bool = True) -> Assignment:
    """Push assignment of a lead, inside the caller's transaction; intake calls it for every new
    lead (`fresh`: created in this transaction, no owner and no queue entry yet), so the 201
    response carries the owner. The owner is notified after commit. Moving a lead that already
    has an owner or a queue entry is `lead_reassign`."""
    return _route(lead=lead, now=timezone.now(), actor=actor, fresh=fresh)


def lead_reassign(
    *,
    lead_id: int,
    actor: AbstractBaseUser | None,
    reason: str,
    to_rep: RepProfile | None = None,
    exclude_rep_ids: frozenset[int] = frozenset(),
) -> Assignment:
    """A manager moves a lead: to a chosen rep, or (no `to_rep`) through the rules again, away from
    the current owner. Capacity of the new owner holds; the old owner's counter is released.

    Routing away from the owner releases the old rep before the decision picks the new one, so two
    reassignments trading reps at the same moment can deadlock on the two rep rows; PostgreSQL
    aborts one of them, and it is retried here rather than surfacing as an error."""
    for attempt in range(3):
        try:
            return _lead_reassign_atomic(
                lead_id=lead_id, actor=actor, reason=reason, to_rep=to_rep, exclude_rep_ids=exclude_rep_ids
            )
        except OperationalError as exc:
            if attempt == 2 or getattr(exc.__cause__, "sqlstate", None) != DEADLOCK_DETECTED:
                raise
    raise AssertionError("unreachable")


DEADLOCK_DETECTED = "40P01"  # PostgreSQL SQLSTATE


@transaction.atomic(durable=True)
def _lead_reassign_atomic(
    *,
    lead_id: int,
    actor: AbstractBaseUser | None,
    reason: str,
    to_rep: RepProfile | None,
    exclude_rep_ids: frozenset[int],
) -> Assignment:
    if not reason.strip():
        raise ApplicationError("Give a reason for the reassignment.", field="reason")
    lead = leads_for_reassign(lead_ids=[lead_id]).select_related("source", "campaign", "owner").first()
    if lead is None:
        raise NotFound("No lead with this id.")
    now = timezone.now()
    old_rep = RepProfile.objects.filter(user_id=lead.owner_id).first() if lead.owner_id else None
    counts = lead.stage not in CLOSED_STAGES
    if to_rep is not None and old_rep is not None and to_rep.pk == old_rep.pk:
        raise Conflict("The lead already belongs to this rep.")
    # Rep rows in ascending pk order (routing/locks.py).
    release_first = to_rep is None or (old_rep is not None and old_rep.pk < to_rep.pk)
    if old_rep is not None and counts and release_first:
        rep_capacity_release(rep_id=old_rep.pk)
    if to_rep is None:
        excluded = exclude_rep_ids | ({old_rep.pk} if old_rep else set())
        assignment = _route(
            lead=lead, now=now, actor=actor, exclude_rep_ids=frozenset(excluded), reason_prefix=f"{reason} — "
        )
    else:
        if counts and not rep_capacity_take(rep=to_rep, now=now, daily_cap=False):
            raise RepAtCapacity(f"{to_rep} already holds the maximum number of open leads.")
        _lead_set_owner(lead=lead, rep=to_rep, now=now)
        _queue_close(lead=lead, rep=to_rep, now=now)
        assignment = _assignment_record(
            lead=lead, decision=None, now=now, rep=to_rep, method=Method.REASSIGN, reason=reason, actor=actor
        )
    if old_rep is not None and counts and not release_first:
        rep_capacity_release(rep_id=old_rep.pk)
    return assignment


@dataclass
class BulkReassignResult:
    assignments: list[Assignment] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)  # lead id -> why it stayed


def rep_leads_reassign(
    *, rep: RepProfile, actor: AbstractBaseUser | None, reason: str, to_rep: RepProfile | None = None
) -> BulkReassignResult:
    """All open leads of a rep (a rep leaving): each moved in its own short transaction, to `to_rep`
    or through the rules with this rep excluded. A lead that cannot move (new owner full) stays and
    is reported."""
    if not reason.strip():
        raise ApplicationError("Give a reason for the reassignment.", field="reason")
    result = BulkReassignResult()
    for lead_id in lead_open_ids_for_rep(rep=rep):
        try:
            result.assignments.append(
                lead_reassign(
                    lead_id=lead_id, actor=actor, reason=reason, to_rep=to_rep, exclude_rep_ids=frozenset({rep.pk})
                )
            )
        except ApplicationError as exc:
            result.failed[lead_id] = exc.message
    return result


def rep_open_leads_sync(*, rep_id: int) -> int:
    """Recount a rep's open leads from the leads table: stage changes that close a lead (won, lost,
    disqualified) happen in the leads app and do not release capacity themselves. Returns the new
    count, capped at capacity (the constraint)."""
    with transaction.atomic():
        rep = reps_for_recount(rep_ids=[rep_id]).first()
        if rep is None:
            return 0
        count = Lead.objects.filter(owner_id=rep.user_id).exclude(stage__in=CLOSED_STAGES).count()
        count = min(count, rep.capacity)
        if count != rep.open_leads:
            RepProfile.objects.filter(pk=rep_id).update(open_leads=count)
    return count


def rep_open_leads_sync_for_user(*, user_id: int) -> int | None:
    """Recount the open leads of this user's rep profile, if they have one."""
    rep_id = RepProfile.objects.filter(user_id=user_id).values_list("pk", flat=True).first()
    return None if rep_id is None else rep_open_leads_sync(rep_id=rep_id)


def rep_open_leads_sweep() -> int:
    """Recount every active rep, one short transaction each (a beat job). Returns how many changed."""
    changed = 0
    for rep_id, before in RepProfile.objects.filter(is_active=True).values_list("pk", "open_leads"):
        changed += rep_open_leads_sync(rep_id=rep_id) != before
    return changed


def queue_entry_score_sync(*, lead_id: int, score: int) -> None:
    """Keep a waiting lead's queue priority in step with its score (for whoever rescores leads)."""
    QueueEntry.objects.filter(lead_id=lead_id, claimed_at__isnull=True).exclude(score=score).update(score=score)
