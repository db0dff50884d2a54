"""Response-SLA countdowns in any lead list: `{% sla_clocks leads as clocks %}` once (one query), then
`{% sla_countdown clocks lead %}` per row."""

from django import template
from django.utils import timezone

from routing.selectors_sla import sla_due_by_lead

register = template.Library()


@register.simple_tag
def sla_clocks(leads) -> dict:
    return sla_due_by_lead(lead_ids=[lead.pk for lead in leads])


@register.inclusion_tag("routing/sla/partials/countdown.html")
def sla_countdown(clocks: dict, lead) -> dict:
    clock = clocks.get(lead.pk)
    if clock is None:
        return {"due_at": None}
    return {"due_at": clock.due_at, "warn_at": clock.warn_at, "now": timezone.now()}
