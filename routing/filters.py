"""The lead list's routing filters (`team`, `sla_breached`), shared by the HTML list and the API
through leads.hooks.LeadListExtension (routing/pages.py registers them)."""

import django_filters
from django.db.models import Exists, OuterRef, QuerySet

from leads.models import Lead
from routing.models import ResponseClock


class LeadRoutingFilter(django_filters.FilterSet):
    team = django_filters.NumberFilter(field_name="owner__rep__team_id", label="Team")
    sla_breached = django_filters.BooleanFilter(method="filter_sla_breached", label="Has breached its response SLA")

    class Meta:
        model = Lead
        fields: list[str] = []

    def filter_sla_breached(self, queryset: QuerySet[Lead], name: str, value: bool | None) -> QuerySet[Lead]:
        if value is None:
            return queryset
        breached = Exists(ResponseClock.objects.filter(lead=OuterRef("pk"), breached_at__isnull=False))
        return queryset.filter(breached if value else ~breached)
