import datetime
import time

import pytest
from django.core import mail
from django.utils import timezone

from core.exceptions import ApplicationError
from core.models import Notification
from core.roles import Role
from leads.models import Activity, ActivityKind, Lead, Stage
from leads.services import IntakeContext, LeadData, lead_capture
from routing.models import Assignment, Method, QueueEntry, RepProfile, RoutingRule
from routing.selectors import routing_rules_active
from routing.services import (
    ActionData,
    InvalidRule,
    RepAtCapacity,
    assignment_notify,
    lead_reassign,
    rep_leads_reassign,
    routing_dry_run,
    routing_rule_move,
    routing_rule_save,
)
from tests.core.factories import UserFactory
from tests.leads.factories import AccountFactory, LeadFactory
from tests.routing.factories import (
    QueueFactory,
    RepProfileFactory,
    RoutingRuleFactory,
    TeamFactory,
    TerritoryFactory,
    rule_with_action,
)

pytestmark = pytest.mark.django_db


def capture(key_client, **fields):
    response = key_client.post("/api/v1/leads/", {"email": f"p{id(fields)}@x.example", **fields}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_intake_response_carries_the_routed_owner(key_client, django_capture_on_commit_callbacks):
    # given
    team = TeamFactory()
    rep = RepProfileFactory(team=team)
    rule_with_action(
        method=Method.ROUND_ROBIN, team=team, conditions=[{"field": "country", "op": "equals", "value": "DE"}]
    )
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        body = capture(key_client, email="ada@acme.example", country="DE")
    # then
    assert body["owner"]["id"] == rep.user_id
    assert body["assigned_at"] is not None
    rep.refresh_from_db()
    assert (rep.open_leads, rep.routed_total, rep.assigned_today) == (1, 1, 1)
    assignment = Assignment.objects.get(lead_id=body["id"])
    assert assignment.method == Method.ROUND_ROBIN and assignment.candidates[0]["chosen"]
    assert Activity.objects.filter(lead_id=body["id"], kind=ActivityKind.ASSIGNED).exists()
    assert len(callbacks) == 2  # enrichment and the owner notification


def test_a_rule_on_tags_routes_a_new_lead_by_the_tags_it_arrives_with(key_client):
    # given
    team = TeamFactory()
    rep = RepProfileFactory(team=team)
    rule_with_action(
        method=Method.ROUND_ROBIN, team=team, conditions=[{"field": "tags", "op": "contains", "value": "vip"}]
    )
    # when
    tagged = capture(key_client, email="vip@x.example", tags=[" vip ", "webinar"])
    untagged = capture(key_client, email="plain@x.example", tags=["webinar"])
    # then
    assert tagged["owner"]["id"] == rep.user_id
    assert untagged["owner"] is None


def test_a_returning_person_unknown_to_this_process_costs_the_rep_nothing(key_client):
    # given: a person routed to a rep
    team = TeamFactory()
    rep = RepProfileFactory(team=team)
    rule_with_action(method=Method.ROUND_ROBIN, team=team)
    first = capture(key_client, email="again@x.example")
    rep.refresh_from_db()
    counters = (rep.open_leads, rep.routed_total, rep.assigned_today)
    # when: they come back
    response = key_client.post("/api/v1/leads/", {"email": "again@x.example"}, format="json")
    # then: the same lead, routed once
    assert response.status_code == 200 and response.json()["id"] == first["id"]
    assert response.json()["owner"]["id"] == rep.user_id
    rep.refresh_from_db()
    assert (rep.open_leads, rep.routed_total, rep.assigned_today) == counters == (1, 1, 1)
    assert Assignment.objects.filter(lead_id=first["id"]).count() == 1


def test_no_matching_rule_goes_to_the_fallback_queue(key_client):
    # given: only the fallback from the data migration (or recreated on demand)
    # when
    body = capture(key_client, email="nobody@x.example")
    # then
    assert body["owner"] is None
    entry = QueueEntry.objects.select_related("queue").get(lead_id=body["id"])
    assert entry.queue.name == "Unassigned" and entry.claimed_at is None
    assert RoutingRule.objects.filter(is_fallback=True).count() == 1


def test_nobody_eligible_sends_the_lead_to_the_rules_queue_with_the_reasons(key_client):
    # given
    team = TeamFactory()
    RepProfileFactory(team=team, unavailable=True)
    RepProfileFactory(team=team, capacity=1, open_leads=1)
    rule = rule_with_action(method=Method.ROUND_ROBIN, team=team)
    # when
    body = capture(key_client)
    # then
    assert body["owner"] is None
    assert QueueEntry.objects.get(lead_id=body["id"]).queue == rule.queue
    assignment = Assignment.objects.get(lead_id=body["id"])
    assert "none of 2 candidate" in assignment.reason
    assert sorted(c["note"] for c in assignment.candidates) == ["at capacity (1/1)", "switched to unavailable"]


def test_round_robin_rotates_and_weighted_follows_weights(key_client):
    # given
    team = TeamFactory()
    heavy, light = RepProfileFactory(team=team, weight=3), RepProfileFactory(team=team, weight=1)
    rule_with_action(method=Method.WEIGHTED, team=team)
    # when
    owners = [capture(key_client, email=f"w{i}@x.example")["owner"]["id"] for i in range(8)]
    # then
    assert owners.count(heavy.user_id) == 6 and owners.count(light.user_id) == 2


def test_load_balanced_picks_the_fewest_open_leads(key_client):
    # given
    team = TeamFactory()
    RepProfileFactory(team=team, open_leads=5)
    idle = RepProfileFactory(team=team, open_leads=1)
    rule_with_action(method=Method.LOAD_BALANCED, team=team)
    # when
    body = capture(key_client)
    # then
    assert body["owner"]["id"] == idle.user_id


def test_territory_match_and_skill_match(key_client):
    # given
    team = TeamFactory()
    dach, nordics = RepProfileFactory(team=team), RepProfileFactory(team=team)
    dach.territories.add(TerritoryFactory(countries=["DE", "AT"], postal_prefixes=["8"]))
    nordics.territories.add(TerritoryFactory(countries=["SE"]))
    rule_with_action(
        method=Method.TERRITORY, team=team, conditions=[{"field": "country", "op": "in", "value": ["DE", "SE"]}]
    )
    polyglot = RepProfileFactory(team=team, languages=["fr", "de"], products=["cloud"])
    RepProfileFactory(team=team, languages=["fr"])
    rule_with_action(method=Method.SKILL, team=team, position=2)
    # when
    munich = capture(key_client, email="m@x.example", country="DE", postal_code="80331")
    skilled = capture(
        key_client, email="s@x.example", country="FR", custom_fields={"language": "de", "product": "cloud"}
    )
    # then
    assert munich["owner"]["id"] == dach.user_id
    assert skilled["owner"]["id"] == polyglot.user_id


def test_sticky_account_owner_and_named_rep(key_client):
    # given
    owner_rep = RepProfileFactory()
    AccountFactory(domain="acme.example", owner=owner_rep.user)
    rule_with_action(
        method=Method.ACCOUNT_OWNER, conditions=[{"field": "company_domain", "op": "is_empty", "value": False}]
    )
    named = RepProfileFactory()
    rule_with_action(method=Method.NAMED_REP, rep=named, position=2)
    # when
    sticky = capture(key_client, email="b@acme.example", company_domain="acme.example")
    other = capture(key_client, email="c@other.example")
    # then
    assert sticky["owner"]["id"] == owner_rep.user_id
    assert other["owner"]["id"] == named.user_id


def test_hand_picked_pool_limits_the_candidates(key_client):
    # given
    picked = RepProfileFactory()
    RepProfileFactory()
    rule_with_action(method=Method.ROUND_ROBIN, pool=[picked])
    # when
    owners = {capture(key_client, email=f"pool{i}@x.example")["owner"]["id"] for i in range(3)}
    # then
    assert owners == {picked.user_id}


def test_ab_split_stores_the_arm(key_client):
    # given
    team_a, team_b = TeamFactory(), TeamFactory()
    RepProfileFactory(team=team_a)
    RepProfileFactory(team=team_b)
    rule = rule_with_action(method=Method.ROUND_ROBIN, team=team_a, split_percent=50)
    rule.actions.create(arm="B", method=Method.LOAD_BALANCED, team=team_b)
    # when
    for i in range(40):
        capture(key_client, email=f"ab{i}@x.example")
    # then
    arms = list(Assignment.objects.values_list("arm", "method"))
    assert {("A", Method.ROUND_ROBIN), ("B", Method.LOAD_BALANCED)} == set(arms)


def test_dry_run_explains_without_assigning(django_assert_max_num_queries):
    # given
    team = TeamFactory()
    reps = [RepProfileFactory(team=team) for _ in range(30)]
    rule_with_action(
        method=Method.ROUND_ROBIN, team=team, conditions=[{"field": "country", "op": "equals", "value": "DE"}]
    )
    sample = LeadFactory.build(country="DE", source=None)
    routing_dry_run(lead=sample)  # loads the rules into the process cache
    # when: the rules' fingerprint and the candidates, however many reps
    with django_assert_max_num_queries(2):
        decision = routing_dry_run(lead=sample)
    # then
    assert decision.rep in reps and "next in turn" in decision.reason
    assert len(decision.candidates) == 30
    assert not Assignment.objects.exists()
    assert RepProfile.objects.filter(open_leads__gt=0).count() == 0


def test_manager_reassigns_one_lead_and_all_leads_of_a_leaving_rep(key_client):
    # given
    manager = UserFactory(with_role=Role.SALES_MANAGER)
    team = TeamFactory(manager=manager)
    leaving, staying = RepProfileFactory(team=team), RepProfileFactory(team=team, capacity=3)
    rule_with_action(method=Method.ROUND_ROBIN, pool=[leaving])
    ids = [capture(key_client, email=f"r{i}@x.example")["id"] for i in range(4)]
    # when
    lead_reassign(lead_id=ids[0], to_rep=staying, actor=manager, reason="key account")
    moved = rep_leads_reassign(rep=leaving, to_rep=staying, actor=manager, reason="leaving the company")
    # then
    leaving.refresh_from_db()
    staying.refresh_from_db()
    assert len(moved.assignments) == 2 and len(moved.failed) == 1  # staying is full after two
    assert (leaving.open_leads, staying.open_leads) == (1, 3)
    assert Assignment.objects.filter(method=Method.REASSIGN, actor=manager).count() == 3


def test_reassign_over_capacity_is_refused():
    rep = RepProfileFactory(capacity=0)
    with pytest.raises(RepAtCapacity):
        lead_reassign(lead_id=LeadFactory().pk, to_rep=rep, actor=None, reason="try")


def test_reassign_through_the_rules_skips_the_old_owner(key_client):
    # given
    team = TeamFactory()
    first, second = RepProfileFactory(team=team), RepProfileFactory(team=team)
    rule_with_action(method=Method.ROUND_ROBIN, team=team)
    lead_id = capture(key_client)["id"]
    owner = RepProfile.objects.get(open_leads=1)
    # when
    assignment = lead_reassign(lead_id=lead_id, actor=None, reason="rep on leave")
    # then
    other = second if owner == first else first
    assert assignment.rep == other and assignment.reason.startswith("rep on leave — ")
    assert sorted(RepProfile.objects.values_list("open_leads", flat=True)) == [0, 1]


def test_notify_creates_one_notification_and_one_email():
    # given
    rep = RepProfileFactory()
    lead = LeadFactory(owner=rep.user)
    assignment = Assignment.objects.create(
        lead=lead, rep=rep, method=Method.ROUND_ROBIN, reason="next", created_at=datetime.datetime.now(datetime.UTC)
    )
    # when: a redelivered task runs twice
    assignment_notify(assignment_id=assignment.pk)
    assignment_notify(assignment_id=assignment.pk)
    # then
    assert Notification.objects.filter(recipient=rep.user).count() == 1
    assert len(mail.outbox) == 1 and rep.user.email in mail.outbox[0].to


def test_rule_edits_reach_a_warm_rules_cache(key_client):
    # given: a routed lead has warmed the cache
    team = TeamFactory()
    rep = RepProfileFactory(team=team)
    rule = rule_with_action(method=Method.QUEUE, team=team)
    assert capture(key_client, email="before@x.example")["owner"] is None
    # when
    action = rule.actions.get()
    action.method = Method.ROUND_ROBIN
    action.save()  # as the admin or the rule editor would
    # then
    assert capture(key_client, email="after@x.example")["owner"]["id"] == rep.user_id


def test_warm_rules_are_served_without_a_query_until_the_recheck_interval(settings, django_assert_num_queries):
    # given: a warm cache, rechecked at most every 0.3 s
    settings.LEADOPS_ROUTING_RULES_RECHECK_SECONDS = 0.3
    rule = rule_with_action(method=Method.QUEUE, team=TeamFactory())
    RoutingRule.objects.filter(pk=rule.pk).update(name="Before")
    routing_rules_active()
    # when: another process renames the rule (a queryset update: no signal reaches this process)
    RoutingRule.objects.filter(pk=rule.pk).update(name="After", updated_at=timezone.now())
    # then: within the interval the cached rules are served without touching the database...
    with django_assert_num_queries(0):
        assert rule.pk in {r.pk for r in routing_rules_active() if r.name == "Before"}
    # ...and after it, the edit shows
    time.sleep(0.35)
    assert rule.pk in {r.pk for r in routing_rules_active() if r.name == "After"}


def test_a_rule_edit_in_this_process_shows_at_once_despite_the_recheck_interval(settings, key_client):
    settings.LEADOPS_ROUTING_RULES_RECHECK_SECONDS = 3600
    test_rule_edits_reach_a_warm_rules_cache(key_client)


def test_rep_edits_made_elsewhere_reach_warm_candidate_rows_at_once(key_client):
    # given: skill routing has converted both reps' rows once in this process
    team = TeamFactory()
    german = RepProfileFactory(team=team, languages=["de"])
    french = RepProfileFactory(team=team, languages=["fr"])
    rule_with_action(method=Method.SKILL, team=team)
    assert capture(key_client, email="a@x.example", custom_fields={"language": "de"})["owner"]["id"] == german.user_id
    # when: another process swaps their languages and renames one (queryset updates: no signal)
    RepProfile.objects.filter(pk=german.pk).update(languages=["fr"])
    RepProfile.objects.filter(pk=french.pk).update(languages=["de"])
    type(french.user).objects.filter(pk=french.user_id).update(first_name="Renée")
    # then: the next lead sees the new skills and the new name
    body = capture(key_client, email="b@x.example", custom_fields={"language": "de"})
    assert body["owner"]["id"] == french.user_id
    assert Assignment.objects.get(lead_id=body["id"]).candidates[1]["name"].startswith("Renée")


@pytest.mark.parametrize(
    "change",
    [{"is_available": False}, {"out_of_office_from": datetime.date(2000, 1, 1), "out_of_office_until": None}],
    ids=["unavailable", "out-of-office"],
)
def test_a_rep_who_stops_taking_leads_elsewhere_gets_none_while_candidates_are_cached(settings, key_client, change):
    # given: candidate rows may be reused for an hour; both reps were read for the first lead
    settings.LEADOPS_ROUTING_RULES_RECHECK_SECONDS = 3600
    team = TeamFactory()
    reps = [RepProfileFactory(team=team), RepProfileFactory(team=team)]
    rule_with_action(method=Method.ROUND_ROBIN, team=team)
    first = capture(key_client, email="first@x.example")["owner"]["id"]
    # when: the rep who did not get it goes away in another process (no signal reaches this one)
    leaving = next(rep for rep in reps if rep.user_id != first)
    RepProfile.objects.filter(pk=leaving.pk).update(**change)
    # then: the next leads all go to the one who stayed, although round-robin would alternate
    owners = {capture(key_client, email=f"next{n}@x.example")["owner"]["id"] for n in range(3)}
    assert owners == {first}


def test_a_rep_moved_to_another_team_in_this_process_leaves_the_cached_candidates_at_once(settings, key_client):
    # given
    settings.LEADOPS_ROUTING_RULES_RECHECK_SECONDS = 3600
    team = TeamFactory()
    staying, moving = RepProfileFactory(team=team), RepProfileFactory(team=team)
    rule_with_action(method=Method.ROUND_ROBIN, team=team)
    capture(key_client, email="warm@x.example")
    # when: a manager moves one rep (a model save in this process)
    moving.team = TeamFactory()
    moving.save()
    # then
    owners = {capture(key_client, email=f"after{n}@x.example")["owner"]["id"] for n in range(3)}
    assert owners == {staying.user_id}


def test_candidate_counters_are_read_fresh_for_every_lead(key_client):
    # given: round robin over two reps; the first lead went to one of them
    team = TeamFactory()
    reps = [RepProfileFactory(team=team), RepProfileFactory(team=team)]
    rule_with_action(method=Method.ROUND_ROBIN, team=team)
    first = capture(key_client, email="one@x.example")["owner"]["id"]
    # when: another process routes two leads to the other rep (counters change, nothing else)
    other = next(rep for rep in reps if rep.user_id != first)
    RepProfile.objects.filter(pk=other.pk).update(routed_total=3)
    # then: the first rep is next in turn, twice
    assert capture(key_client, email="two@x.example")["owner"]["id"] == first
    assert capture(key_client, email="three@x.example")["owner"]["id"] == first


def test_rule_save_validates_and_keeps_the_fallback_matching_everything():
    # given
    queue = QueueFactory()
    fallback = RoutingRule.objects.get(is_fallback=True)
    # when
    with pytest.raises(InvalidRule):
        routing_rule_save(
            rule=None,
            name="bad",
            queue=queue,
            conditions=[{"field": "x", "op": "equals"}],
            action_a=ActionData(method=Method.ROUND_ROBIN),
        )
    routing_rule_save(
        rule=fallback,
        name="Fallback",
        queue=queue,
        conditions=[{"field": "country", "op": "equals", "value": "DE"}],
        action_a=ActionData(method=Method.LOAD_BALANCED),
    )
    # then
    fallback.refresh_from_db()
    assert fallback.conditions == [] and fallback.actions.get().method == Method.LOAD_BALANCED


def test_closed_leads_do_not_count_after_sync():
    from routing.services import rep_open_leads_sync

    rep = RepProfileFactory(open_leads=3)
    LeadFactory(owner=rep.user, stage=Stage.WON)
    LeadFactory(owner=rep.user, stage=Stage.WORKING)
    assert rep_open_leads_sync(rep_id=rep.pk) == 1


def test_sweep_gives_back_capacity_of_closed_leads():
    from routing.services import rep_open_leads_sweep

    rep = RepProfileFactory(open_leads=2)
    LeadFactory(owner=rep.user, stage=Stage.LOST)
    LeadFactory(owner=rep.user, stage=Stage.NEW)
    assert rep_open_leads_sweep() == 1
    rep.refresh_from_db()
    assert rep.open_leads == 1


def _rule_order(*rules: RoutingRule) -> list[int]:
    ids = [rule.pk for rule in rules]
    return list(RoutingRule.objects.filter(pk__in=ids).order_by("position", "pk").values_list("pk", flat=True))


def test_moving_a_rule_swaps_it_with_its_neighbour_and_leaves_the_others_alone():
    # given
    first, second, third = (RoutingRuleFactory(position=position) for position in (10, 20, 30))
    third_before = RoutingRule.objects.values_list("position", "updated_at").get(pk=third.pk)
    # when
    routing_rule_move(rule_id=second.pk, direction="up")
    # then
    assert _rule_order(first, second, third) == [second.pk, first.pk, third.pk]
    assert RoutingRule.objects.values_list("position", "updated_at").get(pk=third.pk) == third_before


def test_moving_a_rule_past_one_at_the_same_position_renumbers_the_rules():
    # given: two rules share a position (ordered by id)
    first, second = RoutingRuleFactory(position=5), RoutingRuleFactory(position=5)
    # when
    routing_rule_move(rule_id=second.pk, direction="up")
    # then
    assert _rule_order(first, second) == [second.pk, first.pk]


def test_the_first_rule_cannot_move_up_and_the_fallback_cannot_move():
    # given
    top, below = RoutingRuleFactory(position=0), RoutingRuleFactory(position=1)
    fallback = RoutingRule.objects.get(is_fallback=True)
    # when
    routing_rule_move(rule_id=top.pk, direction="up")
    # then
    assert _rule_order(top, below) == [top.pk, below.pk]
    assert RoutingRule.objects.get(pk=top.pk).position == 0
    with pytest.raises(ApplicationError, match="fallback"):
        routing_rule_move(rule_id=fallback.pk, direction="up")


def test_a_merge_keeps_every_owners_open_lead_count_true():
    # given: the survivor has no owner; the duplicate belongs to a rep
    from leads.models import CLOSED_STAGES
    from leads.services import lead_merge

    rep = RepProfileFactory()
    survivor = LeadFactory(email="a@x.example", email_normalized="a@x.example")
    duplicate = LeadFactory(email="b@x.example", email_normalized="b@x.example", owner=rep.user)
    other = LeadFactory(email="c@x.example", email_normalized="c@x.example", owner=rep.user)
    # when
    lead_merge(survivor_id=survivor.pk, duplicate_ids=[duplicate.pk], actor=None)
    # then: the survivor took the owner; the rep still owns two open leads (survivor and the other)
    rep.refresh_from_db()
    survivor.refresh_from_db()
    owned = Lead.objects.filter(owner=rep.user).exclude(stage__in=CLOSED_STAGES).count()
    assert survivor.owner_id == rep.user_id and other.owner_id == rep.user_id
    assert rep.open_leads == owned == 2


def test_erasure_reaches_routing_the_reasons_people_typed_are_blanked_the_rules_own_kept(manager_user):
    # given: a lead pushed by a rule, then moved by a manager with a reason that names the person
    from leads.privacy import lead_erase

    team = TeamFactory()
    first, second = RepProfileFactory(team=team), RepProfileFactory(team=team)
    rule_with_action(method=Method.ROUND_ROBIN, team=team)
    lead = lead_capture(data=LeadData(email="ada@x.example"), context=IntakeContext(raw_payload={})).lead
    to_rep = second if lead.owner_id == first.user_id else first
    lead_reassign(lead_id=lead.pk, actor=manager_user, reason="Ada Lovelace asked for Bob", to_rep=to_rep)
    # when
    request = lead_erase(lead_id=lead.pk, actor=manager_user)
    # then: through the ERASED hook, routing blanked the typed reason; the rule's reason stays
    reasons = dict(Assignment.objects.filter(lead=lead).values_list("method", "reason"))
    assert reasons[Method.REASSIGN] == ""
    assert reasons[Method.ROUND_ROBIN].startswith("Round-robin")
    assert request.summary["assignment_reasons"] == 1
