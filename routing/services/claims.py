"""Pull queue: a rep claims a waiting lead. Atomic on PostgreSQL: the lead row is locked with
SKIP LOCKED (a second claimer never waits, it is told someone else was first) and capacity is
taken with a conditional UPDATE backed by the open_leads <= capacity constraint."""

from django.db import transaction
from django.utils import timezone

from core.exceptions import Conflict, Forbidden, NotFound
from leads.models import Lead
from routing.locks import leads_claimable_for_update
from routing.models import Method, QueueEntry, RepProfile
from routing.selectors import queues_for_rep, rep_may_pull_from
from routing.services.assignment import assignment_record


class LeadAlreadyClaimed(Conflict):
    code = "already_claimed"


class NotEligibleForQueue(Forbidden):
    code = "not_eligible"


@transaction.atomic(durable=True)
def lead_claim(*, rep: RepProfile, lead_id: int) -> Lead:
    entry = QueueEntry.objects.select_related("queue").filter(lead_id=lead_id).first()
    if entry is None:
        raise NotFound("This lead is not in a queue.")
    if entry.claimed_at is not None:
        raise LeadAlreadyClaimed("Someone else claimed this lead first.")
    if not rep_may_pull_from(rep=rep, queue=entry.queue):
        raise NotEligibleForQueue("You are not eligible for leads of this queue.")
    lead = leads_claimable_for_update(lead_ids=[lead_id]).first()
    if lead is not None and lead.owner_id is None:  # else: locked by a claimer right now, or taken
        lead = _claim_locked(rep=rep, lead=lead)
        if lead is not None:
            return lead
    raise LeadAlreadyClaimed("Someone else claimed this lead first.")


@transaction.atomic(durable=True)
def lead_claim_next(*, rep: RepProfile) -> Lead | None:
    """Claim the highest-priority lead this rep may take that nobody else is claiming; None if
    the queue is empty."""
    if not rep.is_active:
        raise NotEligibleForQueue("Your rep profile is inactive.")
    open_entries = QueueEntry.objects.filter(claimed_at__isnull=True, queue__in=queues_for_rep(rep=rep))
    window = 64  # the best open entries; wider only when that many claimers hold them right now
    for _ in range(20):
        best = list(open_entries.order_by("-score", "due_at", "pk").values_list("lead_id", flat=True)[:window])
        if not best:
            return None
        lead = leads_claimable_for_update(lead_ids=best).first()
        if lead is None:  # every one of them is being claimed by someone else right now
            if len(best) < window or window >= 4096:
                return None
            window *= 4
            continue
        if lead.owner_id is None and (claimed := _claim_locked(rep=rep, lead=lead)) is not None:
            return claimed
        # Claimed (and committed) by someone else since we read the list: read it again.
    return None


def _claim_locked(*, rep: RepProfile, lead: Lead) -> Lead | None:
    """Claim a lead we hold the lock of; None if its queue entry was claimed meanwhile. A claim
    counts against the rep's capacity only (not the daily cap): RepAtCapacity rolls it back."""
    now = timezone.now()
    # We hold the lead: only a lock holder writes its queue entry, so this read is authoritative.
    if not QueueEntry.objects.filter(lead=lead, claimed_at__isnull=True).update(claimed_at=now, claimed_by=rep):
        return None
    assignment_record(lead=lead, rep=rep, method=Method.CLAIM, reason="claimed from queue", actor=rep.user, at=now)
    return lead
