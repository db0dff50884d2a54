import datetime

import factory
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Case, DateField, DateTimeField, F, PositiveIntegerField, Q, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from factory.django import DjangoModelFactory

from core.roles import Role
from leads.models import CLOSED_STAGES, Lead
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
from routing.services.engine import BALANCING_METHODS, rep_local_today
from tests.core.factories import UserFactory
from tests.leads.factories import LeadFactory

# --- the rep's denormalised counters (STYLE.md §7: factories keep them true) ---------------------
# routing.services.assignment takes a rep's capacity for every owner it gives a lead (push, claim,
# reassignment): one more open lead, today's count on the rep-local day, the time of the last
# assignment, and for a balancing method one more routed lead. The factories do the same with F()
# updates, so that for every rep of a test
#     rep.open_leads == Lead.objects.filter(owner=rep.user).exclude(stage__in=CLOSED_STAGES).count()
# and routed_total counts the rep's balancing assignments. A lead created in a closed stage was
# taken when it was open and closed since: it counts for the day, not as open.

REP_COUNTERS = ["open_leads", "routed_total", "assigned_today", "assigned_on", "last_assigned_at"]


def rep_of(user: AbstractBaseUser) -> RepProfile | None:
    """The user's rep profile, preferring the instance the test holds (`rep.user.rep is rep`)."""
    cached = RepProfile.user.field.remote_field.get_cached_value(user, default=None)
    return cached or RepProfile.objects.filter(user_id=user.pk).first()


def rep_counters_take(*, rep: RepProfile, at: datetime.datetime, lead_open: bool, balances: bool = False) -> None:
    """Count a lead given to `rep` at `at`, then refresh the instance."""
    day = rep_local_today(rep=rep, now=at)
    later_day = Q(assigned_on__isnull=True) | Q(assigned_on__lt=day)
    RepProfile.objects.filter(pk=rep.pk).update(
        open_leads=F("open_leads") + int(lead_open),
        assigned_today=Case(
            When(assigned_on=day, then=F("assigned_today") + 1),
            When(later_day, then=Value(1)),
            default=F("assigned_today"),
            output_field=PositiveIntegerField(),
        ),
        assigned_on=Case(When(later_day, then=Value(day, output_field=DateField())), default=F("assigned_on")),
        last_assigned_at=Greatest(
            Coalesce(F("last_assigned_at"), Value(at, output_field=DateTimeField())),
            Value(at, output_field=DateTimeField()),
        ),
        routed_total=F("routed_total") + int(balances),
    )
    rep.refresh_from_db(fields=REP_COUNTERS)


def rep_counters_release(*, rep: RepProfile) -> None:
    """An open lead moved away from `rep` (routing.services.assignment.rep_capacity_release)."""
    RepProfile.objects.filter(pk=rep.pk, open_leads__gt=0).update(open_leads=F("open_leads") - 1)
    rep.refresh_from_db(fields=REP_COUNTERS)


def _open_leads_of(rep: RepProfile) -> int:
    return Lead.objects.filter(owner_id=rep.user.pk).exclude(stage__in=CLOSED_STAGES).count()


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
    # A profile made for a user who already owns leads (LeadFactory(assigned=True), then this)
    # starts with them counted; pass open_leads= to set a counter that has drifted on purpose.
    open_leads = factory.LazyAttribute(_open_leads_of)

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
    """A routing decision that gave the lead to `rep`, as the router leaves it: the lead has its new
    owner (since `created_at`), a previous owner's open lead is released, and the rep's counters
    are taken. A lead that already belongs to `rep` counted when it got them: only a balancing
    method's routed lead is added. With rep=None (a queue decision) the lead is left alone."""

    class Meta:
        model = Assignment
        skip_postgeneration_save = True

    lead = factory.SubFactory(LeadFactory)
    rep = factory.SubFactory(RepProfileFactory)
    method = "round_robin"
    reason = "round-robin: next in turn"
    created_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def owner_counters(self, create: bool, extracted, **kwargs) -> None:
        if not create or self.rep is None:
            return
        lead, balances = self.lead, self.method in BALANCING_METHODS
        lead_open = lead.stage not in CLOSED_STAGES
        if lead.owner_id == self.rep.user_id:
            if balances:
                RepProfile.objects.filter(pk=self.rep.pk).update(routed_total=F("routed_total") + 1)
                self.rep.refresh_from_db(fields=REP_COUNTERS)
            return
        old_rep = rep_of(lead.owner) if lead.owner_id is not None and lead_open else None
        if old_rep is not None:
            rep_counters_release(rep=old_rep)
        Lead.objects.filter(pk=lead.pk).update(owner=self.rep.user, assigned_at=self.created_at)
        lead.owner, lead.assigned_at = self.rep.user, self.created_at
        rep_counters_take(rep=self.rep, at=self.created_at, lead_open=lead_open, balances=balances)


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
