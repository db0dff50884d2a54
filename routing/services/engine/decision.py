"""The routing decision: which rule matches a lead, which reps it may go to, and who gets it.

Pure reads. `routing_decide` never writes, so the same code answers a dry run ("who would get this
lead and why") and feeds push assignment, which then takes the chosen rep's capacity under its row
lock (services/assignment.py) and decides again if it lost a race.
"""

import copy
import random
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db.models import Q

from core.caches import cache_register
from leads.models import Lead
from routing.models import Arm, Method, Queue, RepProfile, RoutingRule, RuleAction
from routing.selectors import routing_rules_active
from routing.services.engine.conditions import BALANCING_METHODS, MAX_CANDIDATES_STORED, rule_matches
from routing.services.engine.eligibility import (
    account_owner_user_id,
    lead_skill_wants,
    rep_ineligibility,
    skill_score,
    territory_fit,
)


@dataclass
class Decision:
    rule: RoutingRule
    action: RuleAction | None
    arm: str
    method: str
    rep: RepProfile | None = None
    queue: Queue | None = None
    reason: str = ""
    candidates: list[dict] = field(default_factory=list)
    # For a balancing method: the rep's counter when we read it (the conditional UPDATE checks it).
    expected_routed_total: int | None = None
    # Who else could have had the lead, and the per-rep notes of the reason (territory names).
    eligible: list[RepProfile] = field(default_factory=list)
    notes: dict[int, str] = field(default_factory=dict)

    @property
    def balances(self) -> bool:
        return self.method in BALANCING_METHODS


def rule_arm(*, rule: RoutingRule, lead: Lead) -> str:
    """A/B arm: a stable hash of the person, so a dry run and the real routing agree."""
    if not rule.split_percent:
        return Arm.A
    identity = lead.email_normalized or lead.phone_e164 or str(lead.pk or lead.email)
    return Arm.B if zlib.crc32(f"{rule.pk}:{identity}".encode()) % 100 < rule.split_percent else Arm.A


def rule_match(*, lead: Lead, rules: list[RoutingRule]) -> tuple[RoutingRule, RuleAction | None, str]:
    for rule in rules:
        if rule_matches(rule=rule, lead=lead):
            arm = rule_arm(rule=rule, lead=lead)
            actions = {action.arm: action for action in rule.actions.all()}
            action = actions.get(arm) or actions.get(Arm.A)
            return rule, action, (arm if action and action.arm == arm else Arm.A)
    raise LookupError("no rule matched and there is no fallback rule")


# What eligibility and the methods read. The candidates query is plain SQL built from these (no ORM
# compilation, no select_related machinery): it runs on every intake.
_CANDIDATE_FIELDS = (
    "id",
    "user_id",
    "team_id",
    "is_active",
    "is_available",
    "weight",
    "capacity",
    "daily_cap",
    "timezone",
    "languages",
    "products",
    "industries",
    "segments",
    "work_days",
    "work_start",
    "work_end",
    "out_of_office_from",
    "out_of_office_until",
)
_USER_FIELDS = ("id", "username", "first_name", "last_name", "email")
# The columns that change with every assignment; they come last in a candidate row. The rest of
# the row changes only when someone edits the rep.
_CANDIDATE_COUNTERS = ("open_leads", "routed_total", "assigned_today", "assigned_on")


def action_pool_ids(action: RuleAction) -> list[int]:
    """Hand-picked reps of an action (prefetched with the cached rules, so usually no query)."""
    return [rep.pk for rep in action.pool.all()]


def action_candidates(
    *, action: RuleAction, exclude_rep_ids: frozenset[int] = frozenset(), recent: bool = False
) -> list[RepProfile]:
    """The active reps an action may choose from, in one query: the named rep, or the action's team
    and hand-picked pool (everyone when it names neither), with only the routing fields loaded and
    their user attached. `recent`: rows this process read within DJANGO_ROUTING_RULES_RECHECK_SECONDS
    will do, for a caller that re-checks in the database everything about a rep that changes from
    one lead to the next (push routing's first take does; see `_candidates_read`)."""
    key = (action.pk, action.method, action.rep_id, action.team_id, tuple(action_pool_ids(action)), exclude_rep_ids)
    cached = _candidates_read.get(key) if recent else None
    if cached is not None and cached[0] > time.monotonic():
        return [copy.copy(rep) for rep in cached[1]]
    reps = RepProfile.objects.filter(is_active=True)
    if action.method == Method.NAMED_REP:
        reps = reps.filter(pk=action.rep_id or 0)
    else:
        scope = Q()
        if action.team_id:
            scope |= Q(team_id=action.team_id)
        if pool := key[4]:
            scope |= Q(pk__in=pool)
        reps = reps.filter(scope)
    if exclude_rep_ids:
        reps = reps.exclude(pk__in=exclude_rep_ids)
    user_fields = [f"user__{name}" for name in _USER_FIELDS]
    found = list(
        reps.select_related("user").only(*_CANDIDATE_FIELDS, *_CANDIDATE_COUNTERS, *user_fields).order_by("pk")
    )
    if len(_candidates_read) >= _CANDIDATES_READ_MAX:
        _candidates_read.clear()
    _candidates_read[key] = (time.monotonic() + settings.LEADOPS_ROUTING_RULES_RECHECK_SECONDS, found)
    return [copy.copy(rep) for rep in found]


# The candidate reps each action read lately, for `recent` readers (push routing's first take, which
# re-checks in SQL whether a rep is active, available, in office, under capacity and daily cap, and
# at the front of the order): reading them cost a fifth of a pushed capture. Copies are handed out,
# so a caller's changes never reach the cache; an edit of a rep in this process clears it at once.
_candidates_read: dict[tuple, tuple[float, list[RepProfile]]] = {}
_CANDIDATES_READ_MAX = 500


def candidates_cache_clear(**_signal_kwargs: object) -> None:
    _candidates_read.clear()


cache_register("routing.candidates", candidates_cache_clear)


def _rep_label(rep: RepProfile) -> str:
    return rep.user.get_full_name() or rep.user.get_username()


def decide_for_action(
    *,
    lead: Lead,
    rule: RoutingRule,
    action: RuleAction | None,
    arm: str,
    now: datetime,
    exclude_rep_ids: frozenset[int] = frozenset(),
    recent_candidates: bool = False,
) -> Decision:
    """Who gets the lead under this rule's action, with every candidate considered and why.
    `recent_candidates`: see `action_candidates`."""
    if action is None or action.method == Method.QUEUE:
        queue = (action.queue if action else None) or rule.queue
        return Decision(rule, action, arm, Method.QUEUE, queue=queue, reason=f"rule sends leads to queue “{queue}”")
    method = action.method
    if method == Method.ACCOUNT_OWNER:
        owner_id, why = account_owner_user_id(lead=lead)
        reps = list(RepProfile.objects.select_related("user").filter(user_id=owner_id)) if owner_id else []
        if not reps:
            return Decision(rule, action, arm, method, queue=rule.queue, reason=f"queued: {why}")
    else:
        recent = recent_candidates and method in BALANCING_METHODS  # only their take re-checks in SQL
        reps = action_candidates(action=action, exclude_rep_ids=exclude_rep_ids, recent=recent)

    candidates: list[dict] = []
    eligible: list[RepProfile] = []
    for rep in reps:
        why_not = rep_ineligibility(rep=rep, now=now, required_skills=action.required_skills)
        candidates.append({"rep": rep.pk, "name": _rep_label(rep), "eligible": not why_not, "note": why_not})
        if not why_not:
            eligible.append(rep)

    notes: dict[int, str] = {}
    if method == Method.TERRITORY and eligible:
        fit = territory_fit(reps=eligible, lead=lead)
        notes = {pk: f"territory {name}" for pk, name in fit.items()}
        for candidate in candidates:
            if candidate["eligible"] and candidate["rep"] not in fit:
                candidate.update(eligible=False, note="no territory matches the lead")
        eligible = [rep for rep in eligible if rep.pk in fit]
    elif method == Method.SKILL and eligible:
        wants = lead_skill_wants(lead)
        scores = {rep.pk: skill_score(rep=rep, wants=wants) for rep in eligible}
        best = max(scores.values())
        for candidate in candidates:
            if candidate["eligible"]:
                score = scores[candidate["rep"]]
                if best == 0 or score < best:
                    candidate.update(eligible=False, note=f"skill match {score}, best is {best}")
                else:
                    candidate["note"] = f"skill match {score}"
        eligible = [rep for rep in eligible if best and scores[rep.pk] == best]

    if not eligible:
        considered = len(candidates)
        return Decision(
            rule,
            action,
            arm,
            method,
            queue=rule.queue,
            candidates=_trim(candidates),
            reason=f"queued in “{rule.queue}”: none of {considered} candidate rep(s) eligible",
        )

    rep, why = _pick(method=method, eligible=eligible, notes=notes)
    for candidate in candidates:
        if candidate["rep"] == rep.pk:
            candidate["chosen"] = True
    return Decision(
        rule,
        action,
        arm,
        method,
        rep=rep,
        reason=f"{Method(method).label}: {why} (of {len(eligible)} eligible)",
        candidates=_trim(candidates),
        expected_routed_total=rep.routed_total if method in BALANCING_METHODS else None,
        eligible=eligible,
        notes=notes,
    )


def decision_rep_change(*, decision: Decision, rep: RepProfile) -> None:
    """The database gave the lead to another of the eligible reps than the one this process chose
    (the chosen one was busy with a concurrent lead): say so in the decision."""
    _, why = _pick(method=decision.method, eligible=[rep], notes=decision.notes)
    decision.rep = rep
    decision.reason = f"{Method(decision.method).label}: {why} (of {len(decision.eligible)} eligible)"
    for candidate in decision.candidates:
        candidate.pop("chosen", None)
        if candidate["rep"] == rep.pk:
            candidate["chosen"] = True


def _pick(*, method: str, eligible: list[RepProfile], notes: dict[int, str]) -> tuple[RepProfile, str]:
    tiebreak = {rep.pk: random.random() for rep in eligible}  # spreads concurrent requests over tied reps
    if method == Method.WEIGHTED:
        rep = min(eligible, key=lambda r: ((r.routed_total + 1) / r.weight, -r.weight, tiebreak[r.pk]))
        return rep, f"{_rep_label(rep)} is next by weight {rep.weight} ({rep.routed_total} routed so far)"
    if method == Method.LOAD_BALANCED:
        rep = min(eligible, key=lambda r: (r.open_leads / max(r.capacity, 1), r.routed_total, tiebreak[r.pk]))
        return rep, f"{_rep_label(rep)} has the fewest open leads ({rep.open_leads}/{rep.capacity})"
    if method in (Method.NAMED_REP, Method.ACCOUNT_OWNER):
        rep = eligible[0]
        return rep, _rep_label(rep)
    rep = min(eligible, key=lambda r: (r.routed_total, tiebreak[r.pk]))
    extra = f", {notes[rep.pk]}" if rep.pk in notes else ""
    return rep, f"{_rep_label(rep)} is next in turn ({rep.routed_total} routed so far{extra})"


def _trim(candidates: list[dict]) -> list[dict]:
    if len(candidates) <= MAX_CANDIDATES_STORED:
        return candidates
    ranked = sorted(candidates, key=lambda c: (not c.get("chosen"), not c["eligible"]))
    return ranked[:MAX_CANDIDATES_STORED]


def routing_decide(
    *,
    lead: Lead,
    now: datetime,
    rules: list[RoutingRule] | None = None,
    exclude_rep_ids: frozenset[int] = frozenset(),
    recent_candidates: bool = False,
) -> Decision:
    """Read-only: which rule matches, which arm, and who would get the lead now (or which queue)."""
    if rules is None:
        rules = routing_rules_active()
    rule, action, arm = rule_match(lead=lead, rules=rules)
    return decide_for_action(
        lead=lead,
        rule=rule,
        action=action,
        arm=arm,
        now=now,
        exclude_rep_ids=exclude_rep_ids,
        recent_candidates=recent_candidates,
    )
