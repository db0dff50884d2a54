"""`matches` conditions (issue 13, item 8): ops write the patterns, every intake runs them. They run
on RE2 (linear time, no backtracking), and a pattern RE2 cannot run is refused when the rule is saved."""

import time

import pytest

from leads.models import Lead
from routing.models import Method, RoutingRule
from routing.services import ActionData, routing_rule_save
from routing.services.engine import InvalidRule, condition_matches, conditions_validate, rule_matches
from routing.services.engine.conditions import MAX_PATTERN_LENGTH
from tests.routing.factories import QueueFactory


def lead(**fields) -> Lead:
    return Lead(**{"email": "ada@acme.example", "email_normalized": "ada@acme.example", **fields})


def test_a_catastrophic_pattern_runs_in_linear_time():
    # given: exponential for a backtracking engine (2^26 paths for this title)
    condition = {"field": "title", "op": "matches", "value": r"^(a+)+$"}
    subject = lead(title="a" * 26 + "!")
    # when
    started = time.perf_counter()
    matched = condition_matches(condition=condition, lead=subject)
    elapsed = time.perf_counter() - started
    # then
    assert matched is False
    assert elapsed < 0.5
    assert condition_matches(condition=condition, lead=lead(title="aaaa")) is True


@pytest.mark.parametrize(
    ("pattern", "title", "expected"),
    [
        (r"^(vp|head) of", "VP of Sales", True),  # case-insensitive, as before
        (r"(?i)^cto$", "CTO", True),
        (r"sales$", "Head of Sales Ops", False),
        (r"\bops\b", "Head of Sales Ops", True),
        (r"ü", "Geschäftsführer", True),
    ],
)
def test_patterns_match_as_before(pattern, title, expected):
    assert (
        condition_matches(condition={"field": "title", "op": "matches", "value": pattern}, lead=lead(title=title))
        is expected
    )


def test_a_stored_pattern_re2_cannot_run_matches_nothing_instead_of_failing():
    # given: saved before patterns were checked (a backreference; RE2 has none)
    rule = RoutingRule(conditions=[{"field": "title", "op": "matches", "value": r"(a)\1"}])
    # then
    assert rule_matches(rule=rule, lead=lead(title="aa")) is False


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"(a)\1", "bad pattern"),
        (r"(?=vp)", "bad pattern"),
        ("(", "bad pattern"),
        ("a" * (MAX_PATTERN_LENGTH + 1), "at most"),
    ],
)
def test_patterns_re2_cannot_run_are_refused(pattern, message):
    with pytest.raises(InvalidRule, match=message):
        conditions_validate(conditions=[{"field": "title", "op": "matches", "value": pattern}])


@pytest.mark.django_db
def test_saving_a_rule_with_a_pattern_re2_cannot_run_is_refused_and_stores_nothing():
    # given
    queue = QueueFactory()
    before = RoutingRule.objects.count()
    # when
    with pytest.raises(InvalidRule, match="Condition 1"):
        routing_rule_save(
            rule=None,
            name="lookahead",
            queue=queue,
            conditions=[{"field": "title", "op": "matches", "value": r"^(?!intern)"}],
            action_a=ActionData(method=Method.ROUND_ROBIN),
        )
    # then
    assert RoutingRule.objects.count() == before
