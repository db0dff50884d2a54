"""Rule conditions: what a condition may test on a lead, how it matches, how a rule's conditions
are validated when ops save them.

`matches` patterns run on RE2 (google-re2): linear in the input whatever ops write, where
Python's backtracking `re` takes exponential time on a pattern like `^(a+)+$`. RE2 has no
backreferences or lookarounds; such a pattern is refused when the rule is saved, and one stored
before that check matches nothing."""

from functools import lru_cache
from typing import Any

import re2

from core.exceptions import ApplicationError
from leads.models import Lead
from routing.models import MatchMode, Method, RoutingRule

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
MAX_PATTERN_LENGTH = 500
# RE2 compiles a pattern into an automaton within this much memory, or refuses it (`a{1000}{1000}`).
_PATTERN_MAX_MEM = 1 << 20


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


def _regex_options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # a refused pattern is reported to ops, not written to stderr
    options.max_mem = _PATTERN_MAX_MEM
    return options


def pattern_compile(pattern: str):
    """The pattern compiled for RE2 (case-insensitive), or re2.error."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise re2.error(f"patterns are at most {MAX_PATTERN_LENGTH} characters")
    return re2.compile(pattern, _regex_options())


@lru_cache(maxsize=512)
def _regex(pattern: str):
    """The compiled pattern, or None for one RE2 cannot run (saved before patterns were checked)."""
    try:
        return pattern_compile(pattern)
    except re2.error:
        return None


def value_norm(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def as_list(value: Any) -> list:
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
    return value_norm(left) == value_norm(right) or str(value_norm(left)) == str(value_norm(right))


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
        options = as_list(value)
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
        return actual is not None and str(value_norm(value)) in str(value_norm(actual))
    if op == "matches":
        regex = _regex(str(value))
        if regex is None:
            return False
        items = actual if many else [actual]
        return any(item is not None and regex.search(str(item)) for item in items)
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
            if len(str(value)) > MAX_PATTERN_LENGTH:
                raise InvalidRule(
                    f"Condition {number}: a pattern is at most {MAX_PATTERN_LENGTH} characters.", field="conditions"
                )
            try:
                pattern_compile(str(value))
            except re2.error as exc:
                reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
                raise InvalidRule(
                    f"Condition {number}: bad pattern ({reason}); patterns use RE2 syntax "
                    "(no backreferences or lookarounds).",
                    field="conditions",
                ) from exc
        cleaned.append({"field": name, "op": op, "value": value})
    return cleaned
