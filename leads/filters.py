"""FilterSets shared by the HTML lead list and the API, and the filters other apps add to it
(leads.hooks.LeadListExtension), applied by both through lead_list_extensions_filter."""

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone

from leads.hooks import lead_list_extensions
from leads.models import Campaign, Channel, Lead, Source, Stage


class LeadFilter(django_filters.FilterSet):
    stage = django_filters.MultipleChoiceFilter(choices=Stage.choices)
    channel = django_filters.MultipleChoiceFilter(choices=Channel.choices)
    source = django_filters.ModelMultipleChoiceFilter(queryset=Source.objects.all())
    campaign = django_filters.ModelMultipleChoiceFilter(queryset=Campaign.objects.all())
    owner = django_filters.NumberFilter(field_name="owner_id")
    unassigned = django_filters.BooleanFilter(field_name="owner", lookup_expr="isnull")
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


def lead_list_extensions_filter(
    *, queryset: QuerySet[Lead], data: Mapping[str, str]
) -> tuple[QuerySet[Lead], dict[str, list[str]]]:
    """Narrow `queryset` by the parameters other apps own (e.g. routing's `team`, `sla_breached`),
    as their LeadListExtension.filter says. Returns the queryset and the errors of values an
    extension could not read (that extension's filter is then left out): the HTML list shows
    them, the API answers 400."""
    errors: dict[str, list[str]] = {}
    for extension in lead_list_extensions():
        params = {name: data[name] for name in extension.params if data.get(name) not in (None, "")}
        if not params:
            continue
        try:
            queryset = extension.filter(queryset, params)
        except ValidationError as exc:
            errors.update(exc.message_dict if hasattr(exc, "error_dict") else {extension.name: exc.messages})
    return queryset, errors
