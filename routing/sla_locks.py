"""Row locks of response SLAs (routing/services/sla.py). Part of routing's lock order
(routing/locks.py: Lead rows, then RepProfile rows), extended:

    Lead -> RepProfile -> ResponseClock -> SlaAlert

The assignment hook and the first-touch hook write clock rows while their transaction holds the
lead (and rep) rows: clocks come after them. The sweep locks clock rows only, with SKIP LOCKED, and
never takes a lead or rep lock while it holds them: a reassignment the ladder asks for runs after
the sweep's transaction committed, in its own (routing's lead_reassign).
"""

from datetime import datetime

from django.db.models import Q, QuerySet

from routing.models import RUNNING_CLOCK_STATUSES, ResponseClock, SlaAlert


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
