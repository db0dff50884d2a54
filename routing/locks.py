"""Every row lock of the routing app.

Lock order, app-wide (same as leads/locks.py): Lead rows (ascending pk) first, then RepProfile rows
(ascending pk). Queue entries are never locked on their own: a QueueEntry row is only written by a
transaction that holds its lead's lock, so the lead lock stands for the entry. RoutingRule rows are
locked only while a rule moves, by a transaction that takes no other lock.

RepProfile rows are not locked with SELECT … FOR UPDATE at all: capacity, daily cap and the
round-robin counter change through one conditional UPDATE (see services/assignment.py), which takes
the row lock for the rest of the transaction. PostgreSQL keeps that lock even when the UPDATE
waited, re-checked and matched nothing, so push routing tries each rep inside a savepoint and rolls
a lost attempt back: a transaction holds at most one rep lock, except a reassignment, which takes
the old owner's then the new owner's in ascending pk order.
"""

from django.db.models import QuerySet

from leads.models import Lead
from routing.models import RepProfile, RoutingRule


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
