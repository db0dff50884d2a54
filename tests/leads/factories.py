import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from leads.models import (
    CLOSED_STAGES,
    Account,
    Activity,
    ActivityKind,
    ApiKey,
    Campaign,
    Channel,
    ImportJob,
    ImportRowError,
    IntakeOutcome,
    IntakeSubmission,
    Lead,
    PrivacyRequest,
    Source,
    Stage,
    StageChange,
    Tag,
)
from leads.normalization import email_normalize
from leads.selectors import api_key_hash
from tests.core.factories import UserFactory


class SourceFactory(DjangoModelFactory[Source]):
    class Meta:
        model = Source
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Source {n}")
    channel = Channel.WEB_FORM


class CampaignFactory(DjangoModelFactory[Campaign]):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    source = factory.SubFactory(SourceFactory)
    utm_campaign = factory.Sequence(lambda n: f"campaign-{n}")


def _raw_key(prefix: str) -> str:
    return f"lo_{prefix}_{'a1' * 24}"


class ApiKeyFactory(DjangoModelFactory[ApiKey]):
    """`ApiKeyFactory().raw_key` is the usable key (kept on the instance, never stored)."""

    class Meta:
        model = ApiKey
        skip_postgeneration_save = True

    source = factory.SubFactory(SourceFactory)
    prefix = factory.Sequence(lambda n: f"{n:08x}")
    key_hash = factory.LazyAttribute(lambda k: api_key_hash(_raw_key(k.prefix)))

    class Params:
        revoked = factory.Trait(revoked_at=factory.LazyFunction(timezone.now))

    @factory.post_generation
    def raw_key(self, create: bool, extracted, **kwargs) -> None:
        self.raw_key = _raw_key(self.prefix)


class AccountFactory(DjangoModelFactory[Account]):
    class Meta:
        model = Account

    domain = factory.Sequence(lambda n: f"company{n}.example")
    name = factory.Sequence(lambda n: f"Company {n}")


class TagFactory(DjangoModelFactory[Tag]):
    class Meta:
        model = Tag
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"tag-{n}")


class LeadFactory(DjangoModelFactory[Lead]):
    """A lead with an owner (`assigned=True`, or `owner=rep.user`) counts for the owner's rep
    profile as the assignment that gave it would (see tests/routing/factories.py)."""

    class Meta:
        model = Lead
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@company{n % 50}.example")
    email_normalized = factory.LazyAttribute(lambda lead: email_normalize(lead.email) if lead.email else "")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    company_name = factory.Faker("company")
    source = factory.SubFactory(SourceFactory)
    channel = Channel.WEB_FORM
    stage = Stage.NEW

    class Params:
        assigned = factory.Trait(
            owner=factory.SubFactory(UserFactory, with_role="Sales rep"),
            assigned_at=factory.LazyFunction(timezone.now),
        )

    @factory.post_generation
    def owner_counters(self, create: bool, extracted, **kwargs) -> None:
        if not create or self.owner_id is None:
            return
        from tests.routing.factories import rep_counters_take, rep_of  # that module imports this one

        rep = rep_of(self.owner)
        if rep is not None:
            lead_open = self.stage not in CLOSED_STAGES
            rep_counters_take(rep=rep, at=self.assigned_at or timezone.now(), lead_open=lead_open)


class StageChangeFactory(DjangoModelFactory[StageChange]):
    class Meta:
        model = StageChange

    lead = factory.SubFactory(LeadFactory)
    from_stage = Stage.NEW
    to_stage = Stage.WORKING
    changed_at = factory.LazyFunction(timezone.now)


class ActivityFactory(DjangoModelFactory[Activity]):
    class Meta:
        model = Activity

    lead = factory.SubFactory(LeadFactory)
    kind = ActivityKind.NOTE
    occurred_at = factory.LazyFunction(timezone.now)
    payload = factory.Dict({"note": "Called, left a voicemail."})


class IntakeSubmissionFactory(DjangoModelFactory[IntakeSubmission]):
    class Meta:
        model = IntakeSubmission

    received_at = factory.LazyFunction(timezone.now)
    lead = factory.SubFactory(LeadFactory)
    source = factory.SelfAttribute("lead.source")
    payload = factory.LazyAttribute(lambda s: {"email": s.lead.email})
    outcome = IntakeOutcome.CREATED


class ImportJobFactory(DjangoModelFactory[ImportJob]):
    class Meta:
        model = ImportJob

    file = factory.django.FileField(filename="leads.csv", data=b"email\nada@example.com\n")
    original_name = "leads.csv"
    encoding = "utf-8"
    delimiter = ","
    headers = factory.LazyFunction(lambda: ["email"])
    source = factory.SubFactory(SourceFactory)


class ImportRowErrorFactory(DjangoModelFactory[ImportRowError]):
    class Meta:
        model = ImportRowError

    job = factory.SubFactory(ImportJobFactory)
    row_number = factory.Sequence(lambda n: n + 2)
    reason = "email: Enter a valid email address."
    values = factory.LazyFunction(lambda: ["not-an-email"])


class PrivacyRequestFactory(DjangoModelFactory[PrivacyRequest]):
    """An audit row; `lead_ref` is the lead's id, kept even after erasure."""

    class Meta:
        model = PrivacyRequest

    kind = "export"
    lead_ref = factory.LazyAttribute(lambda _: LeadFactory().pk)
