"""The routing decision: which rule matches a lead, which reps it may go to, and who gets it.

Pure reads. `routing_decide` never writes, so the same code answers a dry run ("who would get this
lead and why") and feeds push assignment, which then takes the chosen rep's capacity with one
conditional UPDATE (services/assignment.py) and decides again if it lost a race.
"""

import random
import re
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Q

from core.exceptions import ApplicationError
from leads.models import Account, Lead
from routing.models import Arm, MatchMode, Method, Queue, RepProfile, RoutingRule, RuleAction, Territory
from routing.selectors import routing_rules_active

OPERATORS = ("equals", "in", "not_in", "gt", "lt", "contains", "matches", "is_empty")
# Lead attributes a condition may test, besides `custom_fields.<key>`.
CONDITION_FIELDS = (
    "email",
    "email_domain",
    "phone",
    "first_name",
    "last_name",
    "title",
    "company_name",
    "company_domain",
    "industry",
    "company_size",
    "country",
    "region",
    "postal_code",
    "channel",
    "source",
    "campaign",
    "stage",
    "score",
    "tags",
    "marketing_consent",
)
SKILL_KINDS = ("languages", "products", "industries", "segments")
# Methods that spread load over a pool: they advance the rep's round-robin counter.
BALANCING_METHODS = frozenset(
    {Method.ROUND_ROBIN, Method.WEIGHTED, Method.LOAD_BALANCED, Method.TERRITORY, Method.SKILL}
)
MAX_CANDIDATES_STORED = 50


class InvalidRule(ApplicationError):
    code = "invalid_rule"


# --- conditions --------------------------------------------------------------------------------


def lead_field_value(*, lead: Lead, name: str) -> Any:
    if name.startswith("custom_fields."):
        return (lead.custom_fields or {}).get(name.split(".", 1)[1])
    if name == "email_domain":
        return lead.email_normalized.rsplit("@", 1)[-1] if "@" in (lead.email_normalized or "") else ""
    if name == "source":
        return lead.source.name if lead.source_id else ""
    if name == "campaign":
        return lead.campaign.name if lead.campaign_id else ""
    if name == "tags":
        if getattr(lead, "_routing_tags", None) is None:
            lead._routing_tags = [t.name for t in lead.tags.all()] if lead.pk else []
        return lead._routing_tags
    if name == "phone":
        return lead.phone_e164 or lead.phone
    return getattr(lead, name, None)


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.IGNORECASE)


def _norm(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _as_list(value: Any) -> list:
    if isinstance(value, list | tuple | set):
        return list(value)
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [value]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _equal(left: Any, right: Any) -> bool:
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return a == b
    return _norm(left) == _norm(right) or str(_norm(left)) == str(_norm(right))


def condition_matches(*, condition: dict, lead: Lead) -> bool:
    op, value = condition.get("op"), condition.get("value")
    actual = lead_field_value(lead=lead, name=condition.get("field", ""))
    many = isinstance(actual, list)
    if op == "is_empty":
        empty = actual in (None, "", [], {})
        return empty if value in (None, "", True, "true") else not empty
    if op == "equals":
        return any(_equal(item, value) for item in actual) if many else _equal(actual, value)
    if op in ("in", "not_in"):
        options = _as_list(value)
        items = actual if many else [actual]
        found = any(_equal(item, option) for item in items for option in options)
        return found if op == "in" else not found
    if op in ("gt", "lt"):
        a, b = _number(actual), _number(value)
        if a is None or b is None:
            return False
        return a > b if op == "gt" else a < b
    if op == "contains":
        if many:
            return any(_equal(item, value) for item in actual)
        return actual is not None and str(_norm(value)) in str(_norm(actual))
    if op == "matches":
        items = actual if many else [actual]
        return any(item is not None and _regex(str(value)).search(str(item)) for item in items)
    return False


def rule_matches(*, rule: RoutingRule, lead: Lead) -> bool:
    if rule.is_fallback or not rule.conditions:
        return True
    results = (condition_matches(condition=c, lead=lead) for c in rule.conditions)
    return any(results) if rule.match == MatchMode.ANY else all(results)


def conditions_validate(*, conditions: Any) -> list[dict]:
    """Clean a rule's conditions or raise InvalidRule saying what is wrong."""
    if not isinstance(conditions, list):
        raise InvalidRule("Conditions must be a list.", field="conditions")
    cleaned = []
    for number, condition in enumerate(conditions, start=1):
        if not isinstance(condition, dict):
            raise InvalidRule(f"Condition {number} must be an object.", field="conditions")
        name, op = str(condition.get("field", "")).strip(), condition.get("op")
        if name not in CONDITION_FIELDS and not (name.startswith("custom_fields.") and len(name) > 14):
            raise InvalidRule(f"Condition {number}: unknown field “{name}”.", field="conditions")
        if op not in OPERATORS:
            raise InvalidRule(
                f"Condition {number}: operator must be one of {', '.join(OPERATORS)}.", field="conditions"
            )
        value = condition.get("value")
        if op in ("gt", "lt") and _number(value) is None:
            raise InvalidRule(f"Condition {number}: “{op}” needs a number.", field="conditions")
        if op == "matches":
            try:
                re.compile(str(value))
            except re.error as exc:
                raise InvalidRule(f"Condition {number}: bad pattern ({exc}).", field="conditions") from exc
        cleaned.append({"field": name, "op": op, "value": value})
    return cleaned


# --- eligibility -------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def rep_local_today(*, rep: RepProfile, now: datetime) -> date:
    return now.astimezone(_zone(rep.timezone)).date()


def _within_hours(*, start: time, end: time, at: time) -> bool:
    if start == end:
        return True
    if start < end:
        return start <= at < end
    return at >= start or at < end  # a shift over midnight


def rep_ineligibility(*, rep: RepProfile, now: datetime, required_skills: dict | None = None) -> str:
    """Why this rep cannot take a pushed lead right now ("" when they can)."""
    if not rep.is_active:
        return "inactive"
    if not rep.is_available:
        return "switched to unavailable"
    local = now.astimezone(_zone(rep.timezone))
    today = local.date()
    if rep.out_of_office_from and rep.out_of_office_from <= today <= (rep.out_of_office_until or date.max):
        return "out of office"
    if local.weekday() not in (rep.work_days or []) or not _within_hours(
        start=rep.work_start, end=rep.work_end, at=local.time()
    ):
        return f"outside working hours ({rep.work_start:%H:%M}-{rep.work_end:%H:%M} {rep.timezone})"
    if rep.open_leads >= rep.capacity:
        return f"at capacity ({rep.open_leads}/{rep.capacity})"
    if rep.assigned_on == today and rep.assigned_today >= rep.daily_cap:
        return f"daily cap reached ({rep.daily_cap})"
    for kind, wanted in (required_skills or {}).items():
        held = {_norm(s) for s in getattr(rep, kind, None) or []}
        missing = [s for s in _as_list(wanted) if _norm(s) not in held]
        if missing:
            return f"lacks {kind}: {', '.join(map(str, missing))}"
    return ""


# --- the decision ------------------------------------------------------------------------------


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


def action_candidates(*, action: RuleAction, exclude_rep_ids: frozenset[int] = frozenset()) -> list[RepProfile]:
    """The active reps an action may choose from, in one query: the named rep, or the action's team
    and hand-picked pool (everyone when it names neither), with only the routing fields loaded and
    their user attached."""
    reps = RepProfile.objects.filter(is_active=True)
    if action.method == Method.NAMED_REP:
        reps = reps.filter(pk=action.rep_id or 0)
    else:
        scope = Q()
        if action.team_id:
            scope |= Q(team_id=action.team_id)
        if pool := action_pool_ids(action):
            scope |= Q(pk__in=pool)
        reps = reps.filter(scope)
    if exclude_rep_ids:
        reps = reps.exclude(pk__in=exclude_rep_ids)
    user_fields = [f"user__{name}" for name in _USER_FIELDS]
    return list(reps.select_related("user").only(*_CANDIDATE_FIELDS, *_CANDIDATE_COUNTERS, *user_fields).order_by("pk"))


def _territory_matches(*, territory: Territory, lead: Lead) -> bool:
    checks = (
        (territory.countries, lead.country),
        (territory.regions, lead.region),
        (territory.industries, lead.industry),
        (territory.company_sizes, lead.company_size),
    )
    for allowed, value in checks:
        if allowed and _norm(value) not in {_norm(a) for a in allowed}:
            return False
    if territory.postal_prefixes:
        postal = (lead.postal_code or "").replace(" ", "").upper()
        if not any(postal.startswith(str(p).replace(" ", "").upper()) for p in territory.postal_prefixes):
            return False
    return bool(
        territory.countries
        or territory.regions
        or territory.industries
        or territory.company_sizes
        or territory.postal_prefixes
    )


def _territory_fit(*, reps: list[RepProfile], lead: Lead) -> dict[int, str]:
    """rep pk -> name of the territory that matches the lead (reps without one are absent)."""
    through = RepProfile.territories.through.objects.filter(repprofile_id__in=[r.pk for r in reps])
    fit: dict[int, str] = {}
    for row in through.select_related("territory"):
        if row.repprofile_id not in fit and _territory_matches(territory=row.territory, lead=lead):
            fit[row.repprofile_id] = row.territory.name
    return fit


def _lead_skill_wants(lead: Lead) -> dict[str, str]:
    custom = lead.custom_fields or {}
    wants = {
        "languages": custom.get("language") or custom.get("languages"),
        "products": custom.get("product") or custom.get("products"),
        "industries": lead.industry,
        "segments": lead.company_size,
    }
    return {kind: value for kind, value in wants.items() if value}


def _skill_score(*, rep: RepProfile, wants: dict[str, Any]) -> int:
    score = 0
    for kind, wanted in wants.items():
        held = {_norm(s) for s in getattr(rep, kind) or []}
        score += sum(1 for w in _as_list(wanted) if _norm(w) in held)
    return score


def account_owner_user_id(*, lead: Lead) -> tuple[int | None, str]:
    """The owner the lead should stick to: its account's owner (by account or company domain), else
    the owner of an earlier lead of the same person."""
    account = None
    if lead.account_id:
        account = Account.objects.filter(pk=lead.account_id).values("owner_id", "domain").first()
    elif lead.company_domain:
        account = Account.objects.filter(domain=lead.company_domain.lower()).values("owner_id", "domain").first()
    if account and account["owner_id"]:
        return account["owner_id"], f"owner of account {account['domain']}"
    person = Q()
    if lead.email_normalized:
        person |= Q(email_normalized=lead.email_normalized)
    if lead.phone_e164:
        person |= Q(phone_e164=lead.phone_e164)
    if person:
        earlier = (
            Lead.objects.filter(person, owner__isnull=False)
            .exclude(pk=lead.pk)
            .order_by("-created_at")
            .values("owner_id")
            .first()
        )
        if earlier:
            return earlier["owner_id"], "owner of an earlier lead of the same person"
    return None, "no account owner and no earlier lead of this person"


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
) -> Decision:
    """Who gets the lead under this rule's action, with every candidate considered and why."""
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
        reps = action_candidates(action=action, exclude_rep_ids=exclude_rep_ids)

    candidates: list[dict] = []
    eligible: list[RepProfile] = []
    for rep in reps:
        why_not = rep_ineligibility(rep=rep, now=now, required_skills=action.required_skills)
        candidates.append({"rep": rep.pk, "name": _rep_label(rep), "eligible": not why_not, "note": why_not})
        if not why_not:
            eligible.append(rep)

    notes: dict[int, str] = {}
    if method == Method.TERRITORY and eligible:
        fit = _territory_fit(reps=eligible, lead=lead)
        notes = {pk: f"territory {name}" for pk, name in fit.items()}
        for candidate in candidates:
            if candidate["eligible"] and candidate["rep"] not in fit:
                candidate.update(eligible=False, note="no territory matches the lead")
        eligible = [rep for rep in eligible if rep.pk in fit]
    elif method == Method.SKILL and eligible:
        wants = _lead_skill_wants(lead)
        scores = {rep.pk: _skill_score(rep=rep, wants=wants) for rep in eligible}
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
    )
