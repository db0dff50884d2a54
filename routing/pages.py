"""What routing adds to the leads pages, through the extension points of leads.hooks (registered
in RoutingConfig.ready(); leads imports nothing from here):

- lead page panels: the first-touch countdown in the header, the "Owner" reassign form (managers)
  and "Why this owner";
- the lead list: the `team` and `sla_breached` filters (HTML and API), the team choices, and each
  row's countdown on a rep's own list;
- the bulk action "reassign", through routing's one reassignment service.

Every context function checks permissions itself and returns None to leave its part out.
"""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from core.exceptions import ApplicationError
from leads.hooks import LeadBulkAction, LeadListExtension, LeadPanel
from leads.models import Lead
from leads.selectors import user_sees_all_leads
from routing.filters import LeadRoutingFilter
from routing.forms import LeadReassignForm
from routing.models import RepProfile, Team
from routing.selectors import assignment_current_for_lead, rep_assignable_list_for_user, user_can_reassign
from routing.selectors_sla import sla_due_by_lead
from routing.services import lead_reassign

COUNTDOWN_ASSETS = "routing/sla/partials/countdown_script.html"
REASSIGN_FORM_TEMPLATE = "routing/partials/lead_reassign_form.html"


# --- lead page ---------------------------------------------------------------------------------


def sla_fact_context(request: HttpRequest, lead: Lead) -> dict | None:
    """The lead's running first-touch clock, if any (shown to everyone who sees the lead)."""
    return {"lead_sla_clocks": sla_due_by_lead(lead_ids=[lead.pk])}


def reassign_panel_context(request: HttpRequest, lead: Lead) -> dict | None:
    if not user_can_reassign(request.user):
        return None
    return {"reassign_form": LeadReassignForm(user=request.user)}


def assignment_why_context(request: HttpRequest, lead: Lead) -> dict | None:
    return {"assignment": assignment_current_for_lead(lead_id=lead.pk)}


LEAD_PANELS = (
    LeadPanel(
        name="routing.sla_clock",
        template="routing/sla/partials/lead_fact.html",
        context=sla_fact_context,
        placement="facts",
        assets=COUNTDOWN_ASSETS,
    ),
    LeadPanel(name="routing.reassign", template=REASSIGN_FORM_TEMPLATE, context=reassign_panel_context, order=10),
    LeadPanel(
        name="routing.assignment_why",
        template="routing/partials/assignment_why.html",
        context=assignment_why_context,
        order=20,
    ),
)


# --- lead list ---------------------------------------------------------------------------------


def lead_list_filter(queryset: QuerySet[Lead], params: dict[str, str]) -> QuerySet[Lead]:
    """`team` (the owner's team id) and `sla_breached` (true/false), as LeadRoutingFilter reads them."""
    routing_filter = LeadRoutingFilter(params, queryset=queryset)
    if not routing_filter.is_valid():
        raise ValidationError({name: list(errors) for name, errors in routing_filter.errors.items()})
    return routing_filter.qs


def lead_list_page_context(request: HttpRequest) -> dict:
    """Team choices for those who see every lead."""
    return {"teams": list(Team.objects.only("id", "name")) if user_sees_all_leads(request.user) else []}


def lead_list_row_context(request: HttpRequest, leads: list[Lead]) -> dict | None:
    """Countdowns on a rep's own list (one query per page of rows); not on the all-leads list."""
    if user_sees_all_leads(request.user):
        return None
    return {"sla_clock_map": sla_due_by_lead(lead_ids=[lead.pk for lead in leads])}


LEAD_LIST_EXTENSION = LeadListExtension(
    name="routing",
    params=("team", "sla_breached"),
    filter=lead_list_filter,
    page_context=lead_list_page_context,
    filters_template="routing/partials/lead_list_filters.html",
    row_template="routing/sla/partials/lead_row.html",
    row_context=lead_list_row_context,
    assets=COUNTDOWN_ASSETS,
)


# --- bulk reassignment -------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkReassign:
    to_rep: RepProfile | None  # None: through the rules, away from the current owner
    reason: str


def bulk_reassign_prepare(user: AbstractBaseUser, params: dict[str, str]) -> BulkReassign:
    reason = params.get("reason", "").strip()
    if not reason:
        raise ApplicationError("Give a reason for the reassignment.", field="reason")
    to_rep = None
    if params.get("to_rep"):
        try:
            rep_id = int(params["to_rep"])
        except ValueError:
            rep_id = None
        to_rep = rep_assignable_list_for_user(user=user).filter(pk=rep_id).first() if rep_id else None
        if to_rep is None:
            raise ApplicationError("Choose an active rep you may assign leads to.", field="to_rep")
    return BulkReassign(to_rep=to_rep, reason=reason)


def bulk_reassign_apply(user: AbstractBaseUser, lead_id: int, prepared: BulkReassign) -> None:
    lead_reassign(lead_id=lead_id, actor=user, reason=prepared.reason, to_rep=prepared.to_rep)


def bulk_reassign_fields_context(request: HttpRequest) -> dict[str, Any]:
    return {"reps": list(rep_assignable_list_for_user(user=request.user))}


BULK_REASSIGN = LeadBulkAction(
    name="reassign",
    label="Reassign",
    prepare=bulk_reassign_prepare,
    apply=bulk_reassign_apply,
    permission="leads.reassign_lead",
    params=("to_rep", "reason"),
    fields_template="routing/partials/bulk_reassign_fields.html",
    fields_context=bulk_reassign_fields_context,
)
