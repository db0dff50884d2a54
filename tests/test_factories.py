"""Every model of the project has a factory that builds a valid row (issue 2: factories for every model),
and the factories keep the reps' denormalised counters true."""

import datetime
import inspect

import pytest
from django.apps import apps
from django.db import IntegrityError, transaction
from factory.django import DjangoModelFactory

from leads.models import CLOSED_STAGES, Lead, Stage
from routing.models import Assignment, Method, RepProfile
from routing.services.engine import BALANCING_METHODS
from tests.core import factories as core_factories
from tests.leads import factories as leads_factories
from tests.leads.factories import LeadFactory
from tests.routing import factories as routing_factories
from tests.routing.factories import AssignmentFactory, RepProfileFactory

pytestmark = pytest.mark.django_db

FACTORIES = {
    factory_class._meta.model: factory_class
    for module in (core_factories, leads_factories, routing_factories)
    for _, factory_class in inspect.getmembers(module, inspect.isclass)
    if issubclass(factory_class, DjangoModelFactory) and factory_class._meta.model is not None
}
PROJECT_MODELS = [model for app in ("core", "leads", "routing") for model in apps.get_app_config(app).get_models()]


@pytest.mark.parametrize("model", PROJECT_MODELS, ids=lambda model: model.__name__)
def test_every_model_has_a_factory_that_saves_a_valid_row(model, settings, tmp_path):
    # given
    settings.MEDIA_ROOT = tmp_path
    factory_class = FACTORIES.get(model)
    assert factory_class is not None, f"no factory for {model.__name__}"
    # when
    instance = factory_class()
    # then
    instance.full_clean(validate_unique=False, validate_constraints=True)
    assert model.objects.filter(pk=instance.pk).exists()


# --- factories keep the reps' denormalised counters true (STYLE.md §7) --------------------------


def open_leads_recount(rep: RepProfile) -> int:
    return Lead.objects.filter(owner=rep.user).exclude(stage__in=CLOSED_STAGES).count()


def test_an_owned_open_lead_counts_for_the_owner_and_a_closed_one_does_not():
    # given
    rep = RepProfileFactory()
    # when
    LeadFactory(owner=rep.user, stage=Stage.NEW)
    LeadFactory(owner=rep.user, stage=Stage.WORKING)
    LeadFactory(owner=rep.user, stage=Stage.WON)
    LeadFactory(owner=rep.user, stage=Stage.DISQUALIFIED)
    LeadFactory()  # nobody's
    # then: the instance the test holds is fresh, and agrees with the database and with a recount
    assert rep.open_leads == open_leads_recount(rep) == 2
    rep.refresh_from_db()
    assert rep.open_leads == open_leads_recount(rep) == 2


def test_an_owned_lead_counts_for_the_day_it_was_assigned_on_as_the_router_counts():
    # given
    rep = RepProfileFactory(timezone="Europe/Berlin")
    day_one = datetime.datetime(2026, 11, 25, 10, tzinfo=datetime.UTC)
    day_two = datetime.datetime(2026, 11, 25, 23, 30, tzinfo=datetime.UTC)  # already the 26th in Berlin
    # when: two leads on the rep's 25th, one on their 26th, then a late record of the 25th
    LeadFactory(owner=rep.user, assigned_at=day_one)
    LeadFactory(owner=rep.user, assigned_at=day_one + datetime.timedelta(hours=1))
    LeadFactory(owner=rep.user, assigned_at=day_two)
    LeadFactory(owner=rep.user, assigned_at=day_one)
    # then: today's count is the rep-local 26th's, the last assignment the latest; nothing was routed
    rep.refresh_from_db()
    assert (rep.assigned_on, rep.assigned_today) == (datetime.date(2026, 11, 26), 1)
    assert rep.last_assigned_at == day_two
    assert rep.open_leads == open_leads_recount(rep) == 4
    assert rep.routed_total == 0


def test_the_assigned_trait_counts_once_the_owner_has_a_rep_profile():
    # given: owners whose rep profiles are made after their leads
    open_lead = LeadFactory(assigned=True, stage=Stage.OPPORTUNITY)
    lost = LeadFactory(assigned=True, stage=Stage.LOST)
    # when
    open_owner, lost_owner = RepProfileFactory(user=open_lead.owner), RepProfileFactory(user=lost.owner)
    LeadFactory(assigned=True, owner=open_owner.user)
    # then
    assert open_owner.open_leads == open_leads_recount(open_owner) == 2
    assert lost_owner.open_leads == open_leads_recount(lost_owner) == 0


def test_an_assignment_gives_the_lead_its_owner_and_takes_the_reps_counters():
    # given
    rep = RepProfileFactory()
    # when: two pushes by a balancing method and a claim
    pushed = AssignmentFactory.create_batch(2, rep=rep, method=Method.ROUND_ROBIN)
    claimed = AssignmentFactory(rep=rep, method=Method.CLAIM)
    # then
    assert {a.lead.owner_id for a in [*pushed, claimed]} == {rep.user_id}
    assert Lead.objects.filter(owner=rep.user, assigned_at__isnull=False).count() == 3
    assert rep.open_leads == open_leads_recount(rep) == 3
    assert rep.routed_total == Assignment.objects.filter(rep=rep, method__in=BALANCING_METHODS).count() == 2
    assert rep.assigned_today == 3
    assert rep.last_assigned_at == claimed.created_at


def test_a_reassignment_releases_the_previous_owner():
    # given
    old, new = RepProfileFactory(), RepProfileFactory()
    lead = LeadFactory(owner=old.user)
    # when
    AssignmentFactory(lead=lead, rep=new, method=Method.REASSIGN)
    # then
    old.refresh_from_db()
    assert (old.open_leads, new.open_leads) == (open_leads_recount(old), open_leads_recount(new)) == (0, 1)
    assert new.routed_total == 0


def test_an_assignment_of_a_lead_the_rep_already_owns_adds_only_the_routed_lead():
    # given
    rep = RepProfileFactory()
    lead = LeadFactory(owner=rep.user)
    # when
    AssignmentFactory(lead=lead, rep=rep, method=Method.WEIGHTED)
    # then
    assert (rep.open_leads, rep.routed_total, rep.assigned_today) == (open_leads_recount(rep), 1, 1) == (1, 1, 1)


def test_a_factory_cannot_give_a_rep_more_open_leads_than_their_capacity():
    # given
    rep = RepProfileFactory(capacity=1)
    LeadFactory(owner=rep.user)
    # when / then: the router would not, and the constraint says so
    with pytest.raises(IntegrityError), transaction.atomic():
        LeadFactory(owner=rep.user)
