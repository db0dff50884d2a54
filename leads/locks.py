"""Every row lock of the leads app.

Lock order, app-wide: Lead rows (ascending pk) before anything else. Routing and SLA code that
also locks reps or assignments takes the lead first, then the rep.
"""

from django.db.models import QuerySet

from leads.models import Lead


def leads_for_update(*, lead_ids: list[int]) -> QuerySet[Lead]:
    """Leads whose fields change (merge, stage, last touch). The key never changes: NO KEY lock."""
    return Lead.objects.filter(pk__in=lead_ids).order_by("pk").select_for_update(of=("self",), no_key=True)


def leads_for_delete(*, lead_ids: list[int]) -> QuerySet[Lead]:
    """Leads that a merge deletes: a full lock, so no one inserts rows that reference them meanwhile."""
    return Lead.objects.filter(pk__in=lead_ids).order_by("pk").select_for_update(of=("self",))
