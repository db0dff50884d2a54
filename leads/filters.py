"""FilterSets shared by the HTML lead list and the API."""

from datetime import date, datetime, time, timedelta

import django_filters
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from leads.models import Campaign, Channel, Lead, Source, Stage


class LeadFilter(django_filters.FilterSet):
    stage = django_filters.MultipleChoiceFilter(choices=Stage.choices)
    channel = django_filters.MultipleChoiceFilter(choices=Channel.choices)
    source = django_filters.ModelMultipleChoiceFilter(queryset=Source.objects.all())
    campaign = django_filters.ModelMultipleChoiceFilter(queryset=Campaign.objects.all())
    owner = django_filters.NumberFilter(field_name="owner_id")
    unassigned = django_filters.BooleanFilter(field_name="owner", lookup_expr="isnull")
    team = django_filters.NumberFilter(field_name="owner__rep__team_id", label="Team")
    sla_breached = django_filters.BooleanFilter(method="filter_sla_breached", label="Has breached its response SLA")
    tag = django_filters.CharFilter(field_name="tags__name", distinct=True)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    score_min = django_filters.NumberFilter(field_name="score", lookup_expr="gte")
    score_max = django_filters.NumberFilter(field_name="score", lookup_expr="lte")
    q = django_filters.CharFilter(method="search", label="Search name, email or company")
    # Calendar days in the site's time zone, both ends included (date pickers of the lead list).
    created_from = django_filters.DateFilter(method="created_from_day", label="Created from")
    created_to = django_filters.DateFilter(method="created_to_day", label="Created to")

    class Meta:
        model = Lead
        fields = ["stage", "channel", "source", "campaign", "owner"]

    def filter_sla_breached(self, queryset: QuerySet[Lead], name: str, value: bool | None) -> QuerySet[Lead]:
        if value is None:
            return queryset
        from routing.models import ResponseClock

        breached = Exists(ResponseClock.objects.filter(lead=OuterRef("pk"), breached_at__isnull=False))
        return queryset.filter(breached if value else ~breached)

    def search(self, queryset: QuerySet[Lead], name: str, value: str) -> QuerySet[Lead]:
        value = value.strip()
        if not value:
            return queryset
        if "@" in value:
            return queryset.filter(email_normalized__istartswith=value)  # trigram index on UPPER()
        condition = Q(company_name__icontains=value) | Q(email_normalized__icontains=value.lower())
        for word in value.split()[:3]:
            condition |= Q(first_name__icontains=word) | Q(last_name__icontains=word)
        return queryset.filter(condition)

    def created_from_day(self, queryset: QuerySet[Lead], name: str, value: date) -> QuerySet[Lead]:
        return queryset.filter(created_at__gte=_day_start(value))

    def created_to_day(self, queryset: QuerySet[Lead], name: str, value: date) -> QuerySet[Lead]:
        return queryset.filter(created_at__lt=_day_start(value + timedelta(days=1)))


def _day_start(value: date) -> datetime:
    return timezone.make_aware(datetime.combine(value, time.min))
