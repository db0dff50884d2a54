"""Assignment: the one writer of assignments, owners, rep capacity counts and response clocks.

Push routing (the capture step and reassignment through the rules), the pull claim, a manager's
reassignment, the SLA's reassignment and the demo seeder all end in `assignment_record`, inside
the caller's transaction, which holds the lead's row lock. Lock order: routing/locks.py."""

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from core.enqueue import enqueue_batched_on_commit
from core.exceptions import ApplicationError, Conflict, NotFound
from leads.models import CLOSED_STAGES, Activity, ActivityKind, Lead
from leads.services import lead_owner_set
from routing.locks import leads_for_reassign, rep_front_take, rep_usable_exists, reps_for_recount, reps_for_take
from routing.models import Assignment, Method, Queue, QueueEntry, RepProfile
from routing.selectors import lead_open_ids_for_rep, routing_rules_active
from routing.services.engine import Decision, decision_rep_change, rep_local_today, routing_decide
from routing.services.sla import sla_clock_restart

# A push decision that loses a race for a rep's last slot decides again with fresh rep rows.
MAX_ROUTE_ATTEMPTS = 25
DEADLOCK_DETECTED = "40P01"  # PostgreSQL SQLSTATE


class RepAtCapacity(ApplicationError):
    status_code = 403
    code = "rep_at_capacity"


# --- the rep's counters ----------------------------------------------------------------------------


def _counters_take(*, rep: RepProfile, now: datetime, balances: bool) -> None:
    """One more open lead (and today's count; with `balances` the round-robin counter) for a rep
    whose row this transaction holds. Fixed SQL: every push runs it, and the equivalent queryset
    update with its CASE cost more CPU than the database's work."""
    today = connection.ops.adapt_datefield_value(rep_local_today(rep=rep, now=now))
    with connection.cursor() as cursor:
        cursor.execute(
            _COUNTERS_TAKE_SQL[balances], [today, today, connection.ops.adapt_datetimefield_value(now), rep.pk]
        )


_COUNTERS_TAKE_SQL = {
    balances: (
        f"UPDATE {RepProfile._meta.db_table} SET open_leads = open_leads + 1, "
        "assigned_today = CASE WHEN assigned_on = %s THEN assigned_today + 1 ELSE 1 END, "
        f"assigned_on = %s, last_assigned_at = %s{', routed_total = routed_total + 1' if balances else ''} "
        "WHERE id = %s"
    )
    for balances in (False, True)
}


def _rep_may_take(*, rep: RepProfile, now: datetime, daily_cap: bool, expected_routed_total: int | None) -> bool:
    """On a freshly read, locked rep row: active, under capacity (and daily cap), and (round-robin)
    nobody routed to it since the decision read it."""
    if not rep.is_active or rep.open_leads >= rep.capacity:
        return False
    if daily_cap and rep.assigned_on == rep_local_today(rep=rep, now=now) and rep.assigned_today >= rep.daily_cap:
        return False
    return expected_routed_total is None or rep.routed_total == expected_routed_total


def rep_capacity_take(
    *,
    rep: RepProfile,
    now: datetime,
    daily_cap: bool = True,
    balances: bool = False,
    expected_routed_total: int | None = None,
    skip_locked: bool = False,
) -> bool:
    """Give the rep one more open lead if they may take it (see `_rep_may_take`). Locks the rep's
    row until the caller's transaction ends; `skip_locked`: fail at once, holding nothing, when a
    concurrent transaction holds the rep. `daily_cap=False`: a claim or a manager's choice, where
    only capacity holds."""
    # The conditions go into the locking query too: a rep that may not take the lead is not locked
    # (with SKIP LOCKED, a failed first attempt must hold nothing; a waiting attempt runs in a
    # savepoint whose rollback releases what it locked).
    today = rep_local_today(rep=rep, now=now)
    condition = Q(is_active=True, open_leads__lt=F("capacity"))
    if daily_cap:
        condition &= Q(assigned_on__isnull=True) | ~Q(assigned_on=today) | Q(assigned_today__lt=F("daily_cap"))
    if expected_routed_total is not None:
        condition &= Q(routed_total=expected_routed_total)
    locked = reps_for_take(rep_ids=[rep.pk], skip_locked=skip_locked).filter(condition).first()
    if locked is None or not _rep_may_take(
        rep=locked, now=now, daily_cap=daily_cap, expected_routed_total=expected_routed_total
    ):
        return False
    _counters_take(rep=locked, now=now, balances=balances)
    return True


def rep_capacity_release(*, rep_id: int) -> None:
    RepProfile.objects.filter(pk=rep_id, open_leads__gt=0).update(open_leads=F("open_leads") - 1)


@dataclass
class TakeNext:
    rep: RepProfile | None  # None: nobody taken
    front_held: bool = False  # usable reps are at the front, but concurrent pushes hold them all


def rep_capacity_take_next(*, decision: Decision, now: datetime) -> TakeNext:
    """A balancing push: give the lead to one of the decision's eligible reps that is at the front
    of the method's order (fewest routed so far, ...) and that no concurrent push holds right now.
    DJANGO_ROUTING_BALANCE_TOLERANCE lets a rep up to that many leads past the front take a lead
    while the front is busy (counts then differ by at most one more)."""
    eligible = {rep.pk: rep for rep in decision.eligible}
    today_by_rep = {pk: rep_local_today(rep=rep, now=now) for pk, rep in eligible.items()}
    taken = rep_front_take(
        today_by_rep=today_by_rep,
        method=decision.method,
        tolerance=settings.LEADOPS_ROUTING_BALANCE_TOLERANCE,
        now=now,
    )
    if taken is None:
        return TakeNext(rep=None, front_held=rep_usable_exists(today_by_rep=today_by_rep))
    rep = eligible[taken[0]]
    rep.routed_total, rep.open_leads = taken[1] - 1, taken[2] - 1  # as they were when taken
    return TakeNext(rep=rep)


# While every rep at the front is held by simultaneous pushes, the push asks again after these
# pauses (ms): the holders commit within a few milliseconds.
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


def _rep_capacity_take_waiting(*, decision: Decision, now: datetime) -> bool:
    """Take the chosen rep, waiting for a concurrent push that holds it, inside a savepoint whose
    rollback releases the rep's lock when the rep turns out to be full or routed to meanwhile (a
    push never holds two rep locks, so two pushes cannot deadlock)."""
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


# --- push routing ----------------------------------------------------------------------------------


def _route_decide(*, lead: Lead, now: datetime, exclude_rep_ids: frozenset[int] = frozenset()) -> Decision:
    """Decide and take the chosen rep's capacity, deciding again when a concurrent push took the
    rep first. Nobody left: the rule's queue."""
    rules = routing_rules_active()
    decision = None
    for attempt in range(MAX_ROUTE_ATTEMPTS):
        # The first decision of a balancing push may use recently read reps: the take re-checks them.
        decision = routing_decide(
            lead=lead, now=now, rules=rules, exclude_rep_ids=exclude_rep_ids, recent_candidates=attempt == 0
        )
        if decision.rep is None:
            break
        if attempt == 0 and decision.balances:
            rep = _rep_capacity_take_next_when_free(decision=decision, now=now)
            if rep is not None:
                decision_rep_change(decision=decision, rep=rep)  # counters as taken, maybe another rep
                break
            continue  # the reps at the front are all held: decide again, waiting for them this time
        if attempt == 0:
            taken = rep_capacity_take(
                rep=decision.rep,
                now=now,
                expected_routed_total=decision.expected_routed_total,
                balances=decision.balances,
                skip_locked=True,
            )
        else:
            taken = _rep_capacity_take_waiting(decision=decision, now=now)
        if taken:
            break
    else:
        decision.queue, decision.rep = decision.rule.queue, None
        decision.reason = "queued: every eligible rep was taken by concurrent requests"
    return decision


def lead_route(
    *,
    lead: Lead,
    actor: AbstractBaseUser | None = None,
    exclude_rep_ids: frozenset[int] = frozenset(),
    reason_prefix: str = "",
    captured: bool = False,
) -> Assignment:
    """Push assignment of a lead through the rules, inside the caller's transaction (which holds
    the lead: its capture, or a row lock). The owner is notified after commit. `captured`: the
    lead was created in this transaction (see `assignment_record`)."""
    now = timezone.now()
    decision = _route_decide(lead=lead, now=now, exclude_rep_ids=exclude_rep_ids)
    return assignment_record(
        lead=lead,
        rep=decision.rep,
        queue=decision.queue,
        method=decision.method,
        reason=f"{reason_prefix}{decision.reason}",
        actor=actor,
        at=now,
        decision=decision,
        capacity_taken=True,
        captured=captured,
    )


# --- the one writer ------------------------------------------------------------------------------------


def _owner_notification_request() -> None:
    from routing.tasks import assignment_notifications_run_task

    enqueue_batched_on_commit(assignment_notifications_run_task, window_seconds=settings.LEADOPS_NOTIFY_BATCH_SECONDS)


def assignment_record(
    *,
    lead: Lead,
    method: str,
    reason: str,
    rep: RepProfile | None = None,
    queue: Queue | None = None,
    actor: AbstractBaseUser | None = None,
    at: datetime | None = None,
    decision: Decision | None = None,
    capacity_taken: bool = False,
    captured: bool = False,
    notify: bool = True,
) -> Assignment:
    """Give the lead to `rep` or put it in `queue`, inside the caller's transaction (which holds
    the lead): the rep's capacity (unless the caller took it already, as push routing does; an
    open lead only), the lead's owner, the queue entry, the assignment with its timeline activity,
    the owner's response clock from the policy that applies (the previous clock closes), and the
    owner's notification after commit. Raises RepAtCapacity when the rep holds the maximum.
    `at`: when it happened (the demo seeder writes history); default now. `captured`: the lead was
    created in this transaction, so it has no owner, queue entry or clock to close yet."""
    at = at or timezone.now()
    is_open = lead.stage not in CLOSED_STAGES
    if rep is not None and not capacity_taken and is_open and not rep_capacity_take(rep=rep, now=at, daily_cap=False):
        raise RepAtCapacity(f"{rep} already holds the maximum number of open leads.")
    if rep is not None:
        lead_owner_set(lead=lead, owner_id=rep.user_id, at=at)
        lead.owner = rep.user
        if not captured:
            QueueEntry.objects.filter(lead=lead, claimed_at__isnull=True).update(claimed_at=at, claimed_by=rep)
    else:
        if lead.owner_id is not None:
            lead_owner_set(lead=lead, owner_id=None, at=at)
        due_at = at + timedelta(minutes=queue.sla_minutes)
        QueueEntry.objects.update_or_create(
            lead=lead,
            defaults={
                "queue": queue,
                "score": lead.score,
                "enqueued_at": at,
                "due_at": due_at,
                "claimed_at": None,
                "claimed_by": None,
            },
        )
    assignment = Assignment.objects.create(
        lead=lead,
        rep=rep,
        queue=queue if rep is None else None,
        rule=decision.rule if decision else None,
        rule_name=decision.rule.name if decision else "",
        method=method,
        arm=decision.arm if decision and decision.rule.split_percent else "",
        candidates=decision.candidates if decision else [],
        reason=reason[:500],
        actor=actor,
        created_at=at,
    )
    kind = ActivityKind.CLAIMED if method == Method.CLAIM else ActivityKind.ASSIGNED
    payload = {"assignment": assignment.pk, "method": method, "reason": assignment.reason}
    payload.update({"owner": rep.user_id} if rep is not None else {"queue": queue.name})
    Activity.objects.create(lead=lead, kind=kind, occurred_at=at, actor=actor, payload=payload)
    if is_open:
        sla_clock_restart(lead=lead, assignment=assignment, running_clock=not captured)
    if rep is not None and method != Method.CLAIM and notify:
        _owner_notification_request()
    return assignment


# --- reassignment ----------------------------------------------------------------------------------


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
        assignment = lead_route(
            lead=lead, actor=actor, exclude_rep_ids=frozenset(excluded), reason_prefix=f"{reason} — "
        )
    else:
        assignment = assignment_record(lead=lead, rep=to_rep, method=Method.REASSIGN, reason=reason, actor=actor)
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


def assignment_reasons_erase(*, lead_id: int) -> int:
    """Erasure: blank the reasons people typed when they moved the lead (they may name the person);
    the rules' own reasons stay. Returns how many were blanked."""
    return Assignment.objects.filter(lead_id=lead_id, actor__isnull=False).exclude(reason="").update(reason="")


# --- recounts ------------------------------------------------------------------------------------


def rep_open_leads_sync(*, rep_id: int) -> int:
    """Recount a rep's open leads from the leads table (after a lead closes or reopens, a merge, or
    by the beat sweep). Returns the new count, capped at capacity (the constraint)."""
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
