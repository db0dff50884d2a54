"""The routing engine, split by sub-domain: rule conditions, rep eligibility and fit, the decision."""

from routing.services.engine.conditions import (
    BALANCING_METHODS,
    CONDITION_FIELDS,
    MAX_CANDIDATES_STORED,
    OPERATORS,
    SKILL_KINDS,
    InvalidRule,
    condition_matches,
    conditions_validate,
    lead_field_value,
    rule_matches,
)
from routing.services.engine.decision import (
    Decision,
    action_candidates,
    action_pool_ids,
    decide_for_action,
    decision_rep_change,
    routing_decide,
    rule_arm,
    rule_match,
)
from routing.services.engine.eligibility import account_owner_user_id, rep_ineligibility, rep_local_today

__all__ = [
    "BALANCING_METHODS",
    "CONDITION_FIELDS",
    "MAX_CANDIDATES_STORED",
    "OPERATORS",
    "SKILL_KINDS",
    "Decision",
    "InvalidRule",
    "account_owner_user_id",
    "action_candidates",
    "action_pool_ids",
    "condition_matches",
    "conditions_validate",
    "decide_for_action",
    "decision_rep_change",
    "lead_field_value",
    "rep_ineligibility",
    "rep_local_today",
    "routing_decide",
    "rule_arm",
    "rule_match",
    "rule_matches",
]
