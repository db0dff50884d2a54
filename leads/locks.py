"""Every row lock of the leads app.

Lock order, app-wide: Lead rows (ascending pk) before anything else. Routing and SLA code that
also locks reps takes the lead first, then the rep (routing/locks.py).
"""

from django.db.models import Q, QuerySet

from leads.models import Lead


def leads_for_update(*, lead_ids: list[int]) -> QuerySet[Lead]:
    """Leads whose fields change (merge, stage, last touch). The key never changes: NO KEY lock."""
    return Lead.objects.filter(pk__in=lead_ids).order_by("pk").select_for_update(of=("self",), no_key=True)


def leads_for_delete(*, lead_ids: list[int]) -> QuerySet[Lead]:
    """Leads that a merge deletes: a full lock, so no one inserts rows that reference them meanwhile."""
    return Lead.objects.filter(pk__in=lead_ids).order_by("pk").select_for_update(of=("self",))


def leads_matching_for_update(*, email_normalized: str, phone_e164: str) -> list[Lead]:
    """The lead(s) of a person by normalised email or E.164 phone, locked for a new touch, with what
    the intake response shows (owner, source, campaign) joined; waits for a concurrent capture of
    the same person. Both unique indexes serve the lookup."""
    condition = Q(pk__in=[])
    if email_normalized:
        condition |= Q(email_normalized=email_normalized)
    if phone_e164:
        condition |= Q(phone_e164=phone_e164)
    return list(
        Lead.objects.filter(condition)
        .select_related("owner", "source", "campaign")
        .order_by("pk")
        .select_for_update(of=("self",), no_key=True)
    )
