"""Editing the ordered rule list (the app's rule editor, the admin and the API all come here)."""

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from core.exceptions import ApplicationError
from routing.locks import routing_rules_for_reorder
from routing.models import RULE_METHODS, Arm, Method, Queue, RepProfile, RoutingRule, RuleAction, Team
from routing.selectors import routing_config_cache_clear
from routing.services.engine import SKILL_KINDS, InvalidRule, conditions_validate


@dataclass
class ActionData:
    method: str
    team: Team | None = None
    pool: list[RepProfile] = field(default_factory=list)
    rep: RepProfile | None = None
    required_skills: dict = field(default_factory=dict)
    queue: Queue | None = None


def action_validate(*, data: ActionData, arm: str) -> ActionData:
    if data.method not in RULE_METHODS:
        raise InvalidRule(f"Action {arm}: unknown method “{data.method}”.", field="method")
    if data.method == Method.NAMED_REP and data.rep is None:
        raise InvalidRule(f"Action {arm}: choose the named rep.", field="rep")
    if not isinstance(data.required_skills, dict) or set(data.required_skills) - set(SKILL_KINDS):
        raise InvalidRule(f"Action {arm}: skills are an object with keys {', '.join(SKILL_KINDS)}.", field="skills")
    return data


def _action_save(*, rule: RoutingRule, arm: str, data: ActionData) -> RuleAction:
    action, _ = RuleAction.objects.update_or_create(
        rule=rule,
        arm=arm,
        defaults={
            "method": data.method,
            "team": data.team,
            "rep": data.rep,
            "required_skills": data.required_skills,
            "queue": data.queue,
        },
    )
    action.pool.set(data.pool)
    return action


@transaction.atomic
def routing_rule_save(
    *,
    rule: RoutingRule | None,
    name: str,
    queue: Queue,
    conditions: list,
    action_a: ActionData,
    match: str = "all",
    position: int | None = None,
    is_active: bool = True,
    split_percent: int = 0,
    action_b: ActionData | None = None,
) -> RoutingRule:
    """Create (rule=None) or update a rule with its action(s). The fallback keeps matching
    everything: only its name, queue and action can change."""
    if not 0 <= split_percent <= 100:
        raise InvalidRule("The A/B split is a percentage from 0 to 100.", field="split_percent")
    if split_percent and action_b is None:
        raise InvalidRule("An A/B split needs an action B.", field="split_percent")
    action_validate(data=action_a, arm="A")
    if action_b is not None:
        action_validate(data=action_b, arm="B")
    conditions = conditions_validate(conditions=conditions)
    if rule is None:
        rule = RoutingRule()
        if position is None:
            last = RoutingRule.objects.filter(is_fallback=False).order_by("-position").first()
            position = (last.position + 10) if last else 10
    if rule.is_fallback:
        conditions, is_active, split_percent, action_b = [], True, 0, None
    rule.name, rule.queue, rule.match, rule.conditions = name, queue, match, conditions
    rule.is_active, rule.split_percent = is_active, split_percent
    if position is not None and not rule.is_fallback:
        rule.position = position
    rule.save()
    _action_save(rule=rule, arm=Arm.A, data=action_a)
    if action_b is not None:
        _action_save(rule=rule, arm=Arm.B, data=action_b)
    else:
        rule.actions.filter(arm=Arm.B).delete()
    return rule


@transaction.atomic
def routing_rule_move(*, rule_id: int, direction: str) -> RoutingRule:
    """Swap a rule with its neighbour above ("up") or below ("down"): two rows change; every rule
    is renumbered (10, 20, ...) only when the two share a position (ties ordered by id)."""
    rules = list(routing_rules_for_reorder())
    index = next((i for i, r in enumerate(rules) if r.pk == rule_id), None)
    if index is None:
        raise ApplicationError("The fallback rule always runs last.")
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(rules):
        moving, neighbour = rules[index], rules[other]
        now = timezone.now()
        # updated_at too: the routers' rule caches notice the change by it (routing/selectors.py).
        if moving.position != neighbour.position:
            RoutingRule.objects.filter(pk=moving.pk).update(position=neighbour.position, updated_at=now)
            RoutingRule.objects.filter(pk=neighbour.pk).update(position=moving.position, updated_at=now)
        else:
            rules[index], rules[other] = neighbour, moving
            for position, rule in enumerate(rules, start=1):
                RoutingRule.objects.filter(pk=rule.pk).update(position=position * 10, updated_at=now)
        routing_config_cache_clear()  # bulk updates send no signals
    return RoutingRule.objects.get(pk=rule_id)


@transaction.atomic
def routing_rule_delete(*, rule_id: int) -> None:
    rule = RoutingRule.objects.filter(pk=rule_id).first()
    if rule is None:
        return
    if rule.is_fallback:
        raise ApplicationError("The fallback rule cannot be deleted: no lead may be left unrouted.")
    rule.delete()
