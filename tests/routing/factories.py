import datetime

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from core.roles import Role
from routing.models import (
    Assignment,
    Method,
    Queue,
    QueueEntry,
    RepProfile,
    ResponseClock,
    RoutingRule,
    RuleAction,
    SlaAlert,
    SlaPolicy,
    Team,
    TeamCalendar,
    Territory,
)
from tests.core.factories import UserFactory
from tests.leads.factories import LeadFactory


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


class AssignmentFactory(DjangoModelFactory[Assignment]):
    class Meta:
        model = Assignment

    lead = factory.SubFactory(LeadFactory)
    rep = factory.SubFactory(RepProfileFactory)
    method = "round_robin"
    reason = "round-robin: next in turn"
    created_at = factory.LazyFunction(timezone.now)


class QueueEntryFactory(DjangoModelFactory[QueueEntry]):
    class Meta:
        model = QueueEntry

    lead = factory.SubFactory(LeadFactory)
    queue = factory.SubFactory(QueueFactory)
    enqueued_at = factory.LazyFunction(timezone.now)
    due_at = factory.LazyAttribute(lambda e: e.enqueued_at + datetime.timedelta(hours=1))


class TeamCalendarFactory(DjangoModelFactory[TeamCalendar]):
    class Meta:
        model = TeamCalendar

    team = factory.SubFactory(TeamFactory)


class SlaPolicyFactory(DjangoModelFactory[SlaPolicy]):
    class Meta:
        model = SlaPolicy

    name = factory.Sequence(lambda n: f"Policy {n}")


class ResponseClockFactory(DjangoModelFactory[ResponseClock]):
    """A running 5-minute clock started now."""

    class Meta:
        model = ResponseClock

    lead = factory.SubFactory(LeadFactory)
    rep = factory.SubFactory(RepProfileFactory)
    started_at = factory.LazyFunction(timezone.now)
    warn_at = factory.LazyAttribute(lambda c: c.started_at + datetime.timedelta(minutes=4))
    due_at = factory.LazyAttribute(lambda c: c.started_at + datetime.timedelta(minutes=5))
    escalate_at = factory.LazyAttribute(lambda c: c.started_at + datetime.timedelta(minutes=10))
    next_action_at = factory.SelfAttribute("warn_at")


class SlaAlertFactory(DjangoModelFactory[SlaAlert]):
    class Meta:
        model = SlaAlert

    clock = factory.SubFactory(ResponseClockFactory)
    kind = "warning"
    recipient = factory.SelfAttribute("clock.rep.user")
    created_at = factory.LazyFunction(timezone.now)
