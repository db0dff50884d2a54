"""Writes and use cases of the routing app, split by sub-domain and re-exported here."""

from routing.services.assignment import (
    RepAtCapacity,
    assignment_reasons_erase,
    assignment_record,
    lead_reassign,
    lead_route,
    rep_capacity_release,
    rep_leads_reassign,
    rep_open_leads_sweep,
    rep_open_leads_sync,
    rep_open_leads_sync_for_user,
)
from routing.services.claims import LeadAlreadyClaimed, NotEligibleForQueue, lead_claim, lead_claim_next
from routing.services.engine import Decision, InvalidRule, routing_decide
from routing.services.reps import assignment_notify, notification_mark_read, rep_availability_update
from routing.services.rules import ActionData, routing_rule_delete, routing_rule_move, routing_rule_save
from routing.services.sla import sla_clock_escalate, sla_clock_restart, sla_clock_stop, sla_sweep  # noqa: F401

__all__ = [
    "ActionData",
    "Decision",
    "InvalidRule",
    "LeadAlreadyClaimed",
    "NotEligibleForQueue",
    "RepAtCapacity",
    "assignment_notify",
    "assignment_reasons_erase",
    "assignment_record",
    "lead_claim",
    "lead_claim_next",
    "lead_reassign",
    "lead_route",
    "notification_mark_read",
    "rep_availability_update",
    "rep_capacity_release",
    "rep_leads_reassign",
    "rep_open_leads_sweep",
    "rep_open_leads_sync",
    "rep_open_leads_sync_for_user",
    "routing_decide",
    "routing_dry_run",
    "routing_rule_delete",
    "routing_rule_move",
    "routing_rule_save",
]


def routing_dry_run(*, lead, now=None) -> Decision:
    """Who would get this lead now and why, without assigning anything."""
    from django.utils import timezone

    return routing_decide(lead=lead, now=now or timezone.now())
