import datetime

import factory
from factory.django import DjangoModelFactory

from core.roles import Role
from routing.models import Method, Queue, RepProfile, RoutingRule, RuleAction, Team, Territory
from tests.core.factories import UserFactory


class TeamFactory(DjangoModelFactory[Team]):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")


class TerritoryFactory(DjangoModelFactory[Territory]):
    class Meta:
        model = Territory

    name = factory.Sequence(lambda n: f"Territory {n}")


class RepProfileFactory(DjangoModelFactory[RepProfile]):
    """A rep who can take leads right now: working around the clock, every day."""

    class Meta:
        model = RepProfile

    user = factory.SubFactory(UserFactory, with_role=Role.SALES_REP)
    team = factory.SubFactory(TeamFactory)
    work_days = factory.LazyFunction(lambda: [0, 1, 2, 3, 4, 5, 6])
    work_start = datetime.time(0, 0)
    work_end = datetime.time(0, 0)
    capacity = 50
    daily_cap = 1000

    class Params:
        office_hours = factory.Trait(
            work_days=[0, 1, 2, 3, 4], work_start=datetime.time(9, 0), work_end=datetime.time(17, 0)
        )
        unavailable = factory.Trait(is_available=False)


class QueueFactory(DjangoModelFactory[Queue]):
    class Meta:
        model = Queue

    name = factory.Sequence(lambda n: f"Queue {n}")


class RoutingRuleFactory(DjangoModelFactory[RoutingRule]):
    class Meta:
        model = RoutingRule

    name = factory.Sequence(lambda n: f"Rule {n}")
    position = factory.Sequence(lambda n: n + 1)
    queue = factory.SubFactory(QueueFactory)
    conditions = factory.LazyFunction(list)


class RuleActionFactory(DjangoModelFactory[RuleAction]):
    class Meta:
        model = RuleAction
        skip_postgeneration_save = True

    rule = factory.SubFactory(RoutingRuleFactory)
    arm = "A"
    method = Method.ROUND_ROBIN

    @factory.post_generation
    def pool(self, create: bool, extracted, **kwargs) -> None:
        if create and extracted:
            self.pool.set(extracted)


def rule_with_action(*, conditions=None, match="all", position=1, split_percent=0, **action) -> RoutingRule:
    """A rule and its arm-A action in one call: rule_with_action(method=Method.WEIGHTED, team=team)."""
    rule = RoutingRuleFactory(conditions=conditions or [], match=match, position=position, split_percent=split_percent)
    RuleActionFactory(rule=rule, **action)
    return rule
