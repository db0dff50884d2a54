"""Rule evaluation and eligibility: pure functions on unsaved leads and reps."""

import datetime

import pytest
from django.utils import timezone

from leads.models import Lead
from routing.models import MatchMode, RepProfile, RoutingRule
from routing.services.engine import (
    InvalidRule,
    condition_matches,
    conditions_validate,
    rep_ineligibility,
    rule_arm,
    rule_matches,
)

UTC = datetime.UTC


def lead(**fields) -> Lead:
    defaults = {"email": "ada@acme.example", "email_normalized": "ada@acme.example", "country": "DE", "score": 40}
    return Lead(**{**defaults, **fields})


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"field": "country", "op": "equals", "value": "de"}, True),
        ({"field": "country", "op": "equals", "value": "FR"}, False),
        ({"field": "country", "op": "in", "value": ["AT", "DE", "CH"]}, True),
        ({"field": "country", "op": "in", "value": "AT, CH"}, False),
        ({"field": "country", "op": "not_in", "value": ["FR"]}, True),
        ({"field": "score", "op": "gt", "value": 39}, True),
        ({"field": "score", "op": "gt", "value": 40}, False),
        ({"field": "score", "op": "lt", "value": "50"}, True),
        ({"field": "email_domain", "op": "equals", "value": "acme.example"}, True),
        ({"field": "company_name", "op": "contains", "value": "gmbh"}, True),
        ({"field": "title", "op": "matches", "value": r"^(vp|head) of"}, True),
        ({"field": "title", "op": "matches", "value": r"^cto$"}, False),
        ({"field": "region", "op": "is_empty", "value": True}, True),
        ({"field": "country", "op": "is_empty", "value": False}, True),
        ({"field": "custom_fields.budget", "op": "gt", "value": 10000}, True),
        ({"field": "custom_fields.language", "op": "in", "value": ["de", "fr"]}, True),
        ({"field": "custom_fields.missing", "op": "is_empty"}, True),
        ({"field": "custom_fields.missing", "op": "gt", "value": 1}, False),
    ],
)
def test_condition_operators(condition, expected):
    # given
    subject = lead(company_name="Acme GmbH", title="VP of Sales", custom_fields={"budget": "25000", "language": "DE"})
    # when / then
    assert condition_matches(condition=condition, lead=subject) is expected


def test_all_needs_every_condition_and_any_needs_one():
    # given
    conditions = [
        {"field": "country", "op": "equals", "value": "DE"},
        {"field": "score", "op": "gt", "value": 90},
    ]
    # when / then
    assert not rule_matches(rule=RoutingRule(conditions=conditions, match=MatchMode.ALL), lead=lead())
    assert rule_matches(rule=RoutingRule(conditions=conditions, match=MatchMode.ANY), lead=lead())
    assert rule_matches(rule=RoutingRule(conditions=[], is_fallback=True), lead=lead())


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ([{"field": "nope", "op": "equals", "value": 1}], "unknown field"),
        ([{"field": "country", "op": "like", "value": 1}], "operator"),
        ([{"field": "score", "op": "gt", "value": "high"}], "number"),
        ([{"field": "title", "op": "matches", "value": "("}], "bad pattern"),
        ({"field": "country"}, "list"),
    ],
)
def test_conditions_validate_refuses_bad_rules(conditions, message):
    with pytest.raises(InvalidRule, match=message):
        conditions_validate(conditions=conditions)


def test_ab_arm_is_stable_per_person_and_roughly_the_split():
    # given
    rule = RoutingRule(pk=7, split_percent=30)
    people = [lead(email_normalized=f"p{i}@x.example") for i in range(2000)]
    # when
    arms = [rule_arm(rule=rule, lead=p) for p in people]
    # then
    assert arms == [rule_arm(rule=rule, lead=p) for p in people]
    assert 0.25 < arms.count("B") / len(arms) < 0.35


def rep(**fields) -> RepProfile:
    defaults = {
        "timezone": "Europe/Berlin",
        "work_days": [0, 1, 2, 3, 4],
        "work_start": datetime.time(9),
        "work_end": datetime.time(17),
        "capacity": 10,
        "daily_cap": 5,
        "languages": ["en", "de"],
    }
    return RepProfile(**{**defaults, **fields})


# Wednesday 2026-11-25 10:30 in Berlin (09:30 UTC).
WORKING = datetime.datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "now", "why"),
    [
        ({}, WORKING, ""),
        ({"is_active": False}, WORKING, "inactive"),
        ({"is_available": False}, WORKING, "unavailable"),
        ({}, datetime.datetime(2026, 11, 25, 17, 0, tzinfo=UTC), "outside working hours"),
        ({}, datetime.datetime(2026, 11, 28, 9, 30, tzinfo=UTC), "outside working hours"),  # Saturday
        ({"timezone": "America/New_York"}, WORKING, "outside working hours"),  # 04:30 there
        ({"work_start": datetime.time(22), "work_end": datetime.time(11)}, WORKING, ""),  # night shift
        (
            {"out_of_office_from": datetime.date(2026, 11, 24), "out_of_office_until": datetime.date(2026, 11, 25)},
            WORKING,
            "out of office",
        ),
        ({"out_of_office_from": datetime.date(2026, 11, 26)}, WORKING, ""),
        ({"open_leads": 10}, WORKING, "at capacity"),
        ({"assigned_on": datetime.date(2026, 11, 25), "assigned_today": 5}, WORKING, "daily cap"),
        ({"assigned_on": datetime.date(2026, 11, 24), "assigned_today": 5}, WORKING, ""),
    ],
)
def test_rep_eligibility(fields, now, why):
    result = rep_ineligibility(rep=rep(**fields), now=now)
    assert (why in result) if why else result == ""


def test_required_skills_must_all_be_held():
    subject = rep()
    assert rep_ineligibility(rep=subject, now=WORKING, required_skills={"languages": ["de"]}) == ""
    assert "lacks languages: fr" in rep_ineligibility(
        rep=subject, now=WORKING, required_skills={"languages": ["de", "fr"]}
    )


def test_local_today_is_the_reps_day():
    from routing.services.engine import rep_local_today

    late = timezone.make_aware(datetime.datetime(2026, 11, 25, 23, 30), UTC)
    assert rep_local_today(rep=rep(timezone="Asia/Tokyo"), now=late) == datetime.date(2026, 11, 26)
