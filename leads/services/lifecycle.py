"""Lifecycle: the one writer of stage changes and of activities. Other apps act on a stage
change, a first touch or any contact through the hooks of leads/hooks.py (routing releases the
owner's capacity when a lead closes and stops the response clock on contact)."""

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from core.exceptions import ApplicationError, NotFound
from leads import hooks
from leads.locks import leads_for_update
from leads.models import CLOSED_STAGES, CONTACT_KINDS, Activity, ActivityKind, Lead, Stage, StageChange


class InvalidStageTransition(ApplicationError):
    code = "invalid_transition"


# The lifecycle: which moves make sense. Anything else is refused.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    Stage.NEW: frozenset({Stage.WORKING, Stage.MQL, Stage.SQL, Stage.DISQUALIFIED}),
    Stage.WORKING: frozenset({Stage.MQL, Stage.SQL, Stage.OPPORTUNITY, Stage.DISQUALIFIED, Stage.RECYCLED}),
    Stage.MQL: frozenset({Stage.WORKING, Stage.SQL, Stage.DISQUALIFIED, Stage.RECYCLED}),
    Stage.SQL: frozenset({Stage.WORKING, Stage.OPPORTUNITY, Stage.LOST, Stage.DISQUALIFIED, Stage.RECYCLED}),
    Stage.OPPORTUNITY: frozenset({Stage.WON, Stage.LOST}),
    Stage.WON: frozenset(),
    Stage.LOST: frozenset({Stage.RECYCLED}),
    Stage.DISQUALIFIED: frozenset({Stage.RECYCLED}),
    Stage.RECYCLED: frozenset({Stage.WORKING, Stage.MQL, Stage.SQL, Stage.DISQUALIFIED}),
}


@transaction.atomic
def lead_stage_change(
    *,
    lead_id: int,
    to_stage: str,
    actor: AbstractBaseUser | None,
    reason: str = "",
    at: datetime | None = None,
    recorded_outcome: bool = False,
) -> Lead:
    """Move a lead to another stage (the one writer of stage changes). `recorded_outcome`: a result
    recorded after the fact (a historical CSV import's won/lost/disqualified), which may close any
    open lead in one step; a lead already closed keeps its result (returned unchanged)."""
    if to_stage not in Stage.values:
        raise InvalidStageTransition(f"Unknown stage “{to_stage}”.", field="to_stage")
    lead = leads_for_update(lead_ids=[lead_id]).select_related("owner", "source", "campaign").first()
    if lead is None:
        raise NotFound("No lead with this id.")
    if recorded_outcome and to_stage not in CLOSED_STAGES:
        raise InvalidStageTransition("A recorded outcome is won, lost or disqualified.", field="to_stage")
    if recorded_outcome and lead.stage in CLOSED_STAGES:
        return lead
    if not recorded_outcome and to_stage not in ALLOWED_TRANSITIONS[lead.stage]:
        allowed = ", ".join(sorted(Stage(s).label for s in ALLOWED_TRANSITIONS[lead.stage])) or "none"
        raise InvalidStageTransition(
            f"A lead cannot move from {Stage(lead.stage).label} to {Stage(to_stage).label} (allowed: {allowed}).",
            field="to_stage",
        )
    at = at or timezone.now()
    from_stage = lead.stage
    lead.stage, lead.stage_changed_at = to_stage, at
    lead.save(update_fields=["stage", "stage_changed_at", "updated_at"])
    StageChange.objects.create(
        lead=lead, from_stage=from_stage, to_stage=to_stage, changed_at=at, changed_by=actor, reason=reason
    )
    hooks.hooks_run(hooks.STAGE_CHANGED, lead=lead, from_stage=from_stage, to_stage=to_stage, actor=actor, at=at)
    Activity.objects.create(
        lead=lead,
        kind=ActivityKind.STAGE_CHANGED,
        occurred_at=at,
        actor=actor,
        payload={"from": from_stage, "to": to_stage, "reason": reason},
    )
    return lead


@transaction.atomic
def activity_log(
    *,
    lead_id: int,
    kind: str,
    actor: AbstractBaseUser | None,
    payload: dict | None = None,
    occurred_at: datetime | None = None,
) -> Activity:
    """Record something that happened to a lead. A rep's first call/email/meeting/message is the
    lead's first contact (it stops the response clock) and moves a new lead to working."""
    if kind not in ActivityKind.values:
        raise ApplicationError(f"Unknown activity kind “{kind}”.", field="kind")
    occurred_at = occurred_at or timezone.now()
    lead = Lead.objects.filter(pk=lead_id).only("id", "stage", "first_contacted_at").first()
    if lead is None:
        raise NotFound("No lead with this id.")
    activity = Activity.objects.create(
        lead=lead, kind=kind, occurred_at=occurred_at, actor=actor, payload=payload or {}
    )
    if kind in CONTACT_KINDS:
        first_touch = Lead.objects.filter(pk=lead_id, first_contacted_at__isnull=True).update(
            first_contacted_at=occurred_at
        )
        hooks.hooks_run(hooks.CONTACTED, lead_id=lead_id, at=occurred_at)
        if first_touch:
            hooks.hooks_run(hooks.FIRST_TOUCHED, lead_id=lead_id, at=occurred_at, actor=actor)
        if first_touch and lead.stage == Stage.NEW:
            lead_stage_change(
                lead_id=lead_id, to_stage=Stage.WORKING, actor=actor, reason="first contact", at=occurred_at
            )
    return activity
