"""What routing does when the leads app captures, changes, touches, merges or erases a lead.
Registered in RoutingConfig.ready(); the leads app knows none of it (leads/hooks.py)."""

from leads.hooks import Capture
from leads.models import CLOSED_STAGES, Lead
from routing.services import (
    assignment_reasons_erase,
    lead_route,
    rep_open_leads_sync_for_user,
    sla_clock_stop,
)

ASSIGN_STEP = "routing.assign"


def assign_new_lead(capture: Capture) -> None:
    """Capture step: push a new lead to a rep (or its queue) in the capture transaction, so the
    intake response already carries the owner."""
    if capture.created and capture.step_enabled(ASSIGN_STEP):
        lead_route(lead=capture.lead, actor=capture.context.submitted_by, captured=True)


def owner_capacity_on_stage_change(*, lead: Lead, from_stage: str, to_stage: str, **_: object) -> None:
    """Closing a lead frees a slot of its owner's capacity; reopening takes one (the lead is locked
    first, then the rep: the app-wide lock order)."""
    if lead.owner_id and (from_stage in CLOSED_STAGES) != (to_stage in CLOSED_STAGES):
        rep_open_leads_sync_for_user(user_id=lead.owner_id)


def clock_stop_on_contact(*, lead_id: int, at, **_: object) -> None:
    """A call, email, meeting or message stops the lead's running response clock."""
    sla_clock_stop(lead_id=lead_id, touched_at=at)


def owners_recount_on_merge(*, survivor: Lead, duplicates: list[Lead], **_: object) -> None:
    """The merged-away leads no longer count for their owners; the survivor may have taken an owner."""
    for user_id in sorted({d.owner_id for d in duplicates if d.owner_id} | {survivor.owner_id} - {None}):
        rep_open_leads_sync_for_user(user_id=user_id)


def personal_data_erase(*, lead: Lead, summary: dict, **_: object) -> None:
    """Erasure: the free-text reasons people gave when they moved the lead may name the person."""
    summary["assignment_reasons"] = assignment_reasons_erase(lead_id=lead.pk)
