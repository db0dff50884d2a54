"""Demo data for `manage.py seed_demo`: people, teams, sources, campaigns, accounts and leads with
their whole history (stage changes, activities, intake log), spread over the last 90 days.

Deterministic and idempotent: lead number i is always the same person (identities come from one
seeded random sequence that never depends on the clock), a lead whose normalised email exists is
skipped, and everything else is get-or-create. Fast: rows are built in memory and bulk-inserted in
batches, without per-row service calls. Addresses use the reserved `.example` domain, so no demo
email can reach a real mailbox.
"""

import random
import unicodedata
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

import phonenumbers
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import models, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from core.roles import Role, roles_sync
from leads.models import (
    CLOSED_STAGES,
    Account,
    Activity,
    ActivityKind,
    Campaign,
    Channel,
    CompanySize,
    IntakeOutcome,
    IntakeSubmission,
    Lead,
    Source,
    Stage,
    StageChange,
    Tag,
)
from leads.normalization import email_normalize
from routing.models import (
    Assignment,
    ClockStatus,
    Method,
    Queue,
    QueueEntry,
    RepProfile,
    ResponseClock,
    RoutingRule,
    RuleAction,
    Team,
)

DEMO_PASSWORD = "leadops-demo"
DEMO_SEED = 2024
DAYS = 90
BATCH = 1000
# Stages in which a lead still sits on its owner's desk (same as routing's "not closed").

# --- people ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    role: Role
    is_staff: bool = False
    is_superuser: bool = False
    team: str = ""


TEAMS = [("Inbound EMEA", "Europe/London"), ("Inbound Americas", "America/New_York")]
DEMO_USERS = [
    DemoUser("admin", "Dana", "Whitfield", Role.ADMIN, is_staff=True, is_superuser=True),
    DemoUser("ops", "Priya", "Raman", Role.MARKETING_OPS, is_staff=True),
    DemoUser("manager", "Marcus", "Bell", Role.SALES_MANAGER),
    DemoUser("rep1", "Sofia", "Lindqvist", Role.SALES_REP, team="Inbound EMEA"),
    DemoUser("rep2", "Tom", "Okafor", Role.SALES_REP, team="Inbound EMEA"),
    DemoUser("rep3", "Chloé", "Martin", Role.SALES_REP, team="Inbound EMEA"),
    DemoUser("rep4", "Jonas", "Becker", Role.SALES_REP, team="Inbound EMEA"),
    DemoUser("rep5", "Maya", "Patel", Role.SALES_REP, team="Inbound Americas"),
    DemoUser("rep6", "Diego", "Ramírez", Role.SALES_REP, team="Inbound Americas"),
    DemoUser("rep7", "Grace", "Kim", Role.SALES_REP, team="Inbound Americas"),
    DemoUser("rep8", "Ethan", "Brooks", Role.SALES_REP, team="Inbound Americas"),
]

# --- where leads come from ---------------------------------------------------------------------

# name, channel, monthly cost, weight among leads
SOURCES = [
    ("Website demo form", Channel.WEB_FORM, Decimal("0"), 30),
    ("Google Ads", Channel.PAID_ADS, Decimal("12000"), 18),
    ("LinkedIn Ads", Channel.PAID_ADS, Decimal("8500"), 12),
    ("Organic search", Channel.ORGANIC, Decimal("1500"), 14),
    ("Partner referrals", Channel.PARTNER, Decimal("2000"), 7),
    ("Trade show booth", Channel.EVENT, Decimal("15000"), 6),
    ("Purchased contact list", Channel.IMPORT, Decimal("4000"), 6),
    ("Live chat", Channel.CHAT, Decimal("300"), 7),
]
# name, source, utm_campaign, budget, starts (days ago), length in days
CAMPAIGNS = [
    ("Demo request push", "Website demo form", "demo-push", Decimal("5000"), 95, 120),
    ("Brand search EMEA", "Google Ads", "brand-emea", Decimal("18000"), 100, 180),
    ("Competitor keywords", "Google Ads", "competitor-kw", Decimal("22000"), 80, 90),
    ("Retargeting pricing page", "Google Ads", "retarget-pricing", Decimal("9000"), 60, 60),
    ("ABM enterprise finance", "LinkedIn Ads", "abm-finance", Decimal("25000"), 90, 120),
    ("Thought leadership", "LinkedIn Ads", "thought-leadership", Decimal("12000"), 70, 90),
    ("SEO content hub", "Organic search", "seo-hub", Decimal("6000"), 120, 365),
    ("Partner co-marketing", "Partner referrals", "partner-comarketing", Decimal("8000"), 90, 120),
    ("SaaS Summit booth", "Trade show booth", "saas-summit", Decimal("30000"), 50, 3),
    ("Ops Leaders Forum", "Trade show booth", "ops-forum", Decimal("14000"), 20, 2),
    ("Q3 data list", "Purchased contact list", "q3-list", Decimal("12000"), 85, 30),
    ("Chat pricing playbook", "Live chat", "chat-pricing", Decimal("2500"), 75, 120),
]
_UTM = {
    Channel.WEB_FORM: ("website", "form"),
    Channel.PAID_ADS: ("google", "cpc"),
    Channel.ORGANIC: ("google", "organic"),
    Channel.PARTNER: ("partner", "referral"),
    Channel.EVENT: ("event", "booth"),
    Channel.IMPORT: ("list", "import"),
    Channel.CHAT: ("website", "chat"),
}
TAGS = ["enterprise", "webinar", "hot", "pricing-page", "free-trial", "newsletter", "competitor-user", "event-2025"]

# --- who the leads are -------------------------------------------------------------------------

FIRST_NAMES = (  # noqa: SIM905 (a readable block of data)
    "Ada Alan Alice Amara Amelia Ana Andrea Anna Arjun Ayesha Ben Bianca Camille Carlos Charlotte Chen Chiara "
    "Chloe Daniel David Deepa Diego Elena Eli Elif Emil Emily Emma Erik Fatima Felix Finn Freya Gabriel Hana "
    "Hannah Hugo Ibrahim Imani Isabel Ivan Jack Jakob James Jana Javier Jin Joao Jonas Julia Kai Karin Kenji "
    "Laila Lars Laura Leo Lina Lucas Lucia Luis Maja Marco Maria Mateo Mei Mia Mohammed Nadia Naomi Nikhil "
    "Nina Noah Nora Oliver Olivia Omar Oscar Paula Pedro Priya Rafael Rahul Rosa Ryan Sam Samira Sara Sebastian "
    "Sofia Sophie Stefan Tariq Theo Tomas Valentina Victor Yara Yusuf Zara Zoë José Søren Amélie Bjørn"
).split()
LAST_NAMES = (  # noqa: SIM905
    "Abbott, Adeyemi, Alvarez, Andersen, Bauer, Becker, Bennett, Bianchi, Brown, Campbell, Castillo, Chen, "
    "Clarke, Costa, Da Silva, Dubois, Eriksson, Evans, Fischer, Fernandes, Fontaine, Garcia, Gupta, Hansen, "
    "Harris, Hoffmann, Hughes, Ivanova, Jansen, Jensen, Johansson, Kaur, Keller, Khan, Kim, Kowalski, Larsen, "
    "Laurent, Lee, Lehmann, Lopez, Martin, Meyer, Moreau, Müller, Murphy, Nakamura, Nguyen, Nielsen, Novak, "
    "Nuñez, O'Brien, Ødegaard, Okafor, Olsen, Park, Patel, Perez, Petrov, Quinn, Rossi, Russo, Sato, Schmidt, "
    "Schneider, Shah, Silva, Singh, Smith, Sousa, Suzuki, Tanaka, Taylor, Thomas, Van Dijk, Wagner, Walsh, "
    "Weber, Williams, Wilson, Wright, Yamamoto, Young, Zhang, Zimmermann"
).split(", ")
TITLES = [
    ("Marketing Manager", 8),
    ("Head of Marketing", 5),
    ("VP Marketing", 3),
    ("Sales Operations Manager", 6),
    ("Revenue Operations Lead", 5),
    ("VP Sales", 3),
    ("Chief Revenue Officer", 1),
    ("CEO", 2),
    ("Founder", 2),
    ("Operations Director", 4),
    ("IT Manager", 4),
    ("Software Engineer", 5),
    ("Product Manager", 5),
    ("Business Analyst", 4),
    ("Customer Success Manager", 3),
    ("Procurement Specialist", 2),
    ("Student", 1),
    ("", 4),
]
_SENIOR = {"VP Marketing", "VP Sales", "Chief Revenue Officer", "CEO", "Founder", "Head of Marketing"}
INDUSTRIES = [
    "Software",
    "Financial services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Education",
    "Logistics",
    "Media",
    "Professional services",
    "Energy",
    "Real estate",
    "Telecommunications",
]
COMPANY_WORDS = (  # noqa: SIM905
    "Northwind Bluebird Granite Summit Apex Brightline Cobalt Evergreen Harbor Ironwood Juniper Keystone "
    "Lighthouse Meridian Nimbus Oakridge Pinnacle Quantum Redwood Silverline Tidewater Vantage Willow Zephyr "
    "Acorn Beacon Cedar Delta Ember Falcon Glacier Horizon Indigo Jasper Kestrel Lumen Maple Nova Orbit "
    "Pioneer Quartz Riverstone Sable Tandem Upland Vertex Wavecrest Yarrow"
).split()
COMPANY_SUFFIXES = [
    ("Software", "Software"),
    ("Analytics", "Software"),
    ("Labs", "Software"),
    ("Capital", "Financial services"),
    ("Bank", "Financial services"),
    ("Health", "Healthcare"),
    ("Clinics", "Healthcare"),
    ("Manufacturing", "Manufacturing"),
    ("Robotics", "Manufacturing"),
    ("Retail", "Retail"),
    ("Outfitters", "Retail"),
    ("Learning", "Education"),
    ("Logistics", "Logistics"),
    ("Freight", "Logistics"),
    ("Media", "Media"),
    ("Partners", "Professional services"),
    ("Consulting", "Professional services"),
    ("Energy", "Energy"),
    ("Properties", "Real estate"),
    ("Telecom", "Telecommunications"),
]
SIZES = [
    (CompanySize.S1_10, 10),
    (CompanySize.S11_50, 22),
    (CompanySize.S51_200, 26),
    (CompanySize.S201_1000, 22),
    (CompanySize.S1001_5000, 12),
    (CompanySize.S5000_PLUS, 8),
]
# country, weight, regions
COUNTRIES = [
    ("US", 30, ["California", "New York", "Texas", "Illinois", "Massachusetts", "Washington"]),
    ("GB", 14, ["England", "Scotland", "Wales"]),
    ("DE", 10, ["Bavaria", "Berlin", "Hamburg", "Hesse"]),
    ("FR", 7, ["Île-de-France", "Auvergne-Rhône-Alpes", "Occitanie"]),
    ("NL", 5, ["North Holland", "South Holland", "Utrecht"]),
    ("CA", 6, ["Ontario", "Quebec", "British Columbia"]),
    ("AU", 4, ["New South Wales", "Victoria", "Queensland"]),
    ("SE", 3, ["Stockholm", "Västra Götaland"]),
    ("ES", 4, ["Madrid", "Catalonia", "Andalusia"]),
    ("IE", 3, ["Dublin", "Cork"]),
    ("IN", 6, ["Karnataka", "Maharashtra", "Delhi"]),
    ("BR", 4, ["São Paulo", "Rio de Janeiro"]),
    ("SG", 2, ["Singapore"]),
    ("CH", 2, ["Zurich", "Geneva"]),
]
PERSONAL_DOMAINS = ["mailbox.example", "inbox.example", "post.example"]
COMPANY_COUNT = 450

# --- what happens to them ----------------------------------------------------------------------

# (weight, the moves after "new"). Each move happens a while after the previous one; moves that
# would lie in the future have not happened yet, so young leads are still in progress.
PATHS: list[tuple[int, list[str]]] = [
    (3, []),
    (4, [Stage.WORKING]),
    (6, [Stage.WORKING, Stage.MQL]),
    (12, [Stage.WORKING, Stage.DISQUALIFIED]),
    (5, [Stage.DISQUALIFIED]),
    (8, [Stage.WORKING, Stage.SQL, Stage.OPPORTUNITY, Stage.WON]),
    (5, [Stage.MQL, Stage.SQL, Stage.OPPORTUNITY, Stage.WON]),
    (9, [Stage.WORKING, Stage.SQL, Stage.OPPORTUNITY, Stage.LOST]),
    (6, [Stage.WORKING, Stage.MQL, Stage.SQL, Stage.LOST]),
    (7, [Stage.WORKING, Stage.RECYCLED]),
    (4, [Stage.WORKING, Stage.SQL, Stage.DISQUALIFIED]),
    (3, [Stage.MQL, Stage.WORKING, Stage.SQL, Stage.OPPORTUNITY, Stage.LOST]),
    (4, [Stage.WORKING, Stage.MQL, Stage.RECYCLED]),
    (3, [Stage.MQL, Stage.SQL, Stage.OPPORTUNITY]),
    (3, [Stage.WORKING, Stage.SQL]),
]
REASONS = {
    Stage.WORKING: ["first contact"],
    Stage.MQL: ["downloaded the pricing guide", "attended the webinar", "engaged with three emails"],
    Stage.SQL: ["budget and timeline confirmed", "asked for a proposal", "decision maker engaged"],
    Stage.OPPORTUNITY: ["discovery call done", "proposal sent", "technical evaluation started"],
    Stage.WON: ["contract signed", "annual plan purchased"],
    Stage.LOST: ["went with a competitor", "no budget this year", "no decision", "price too high"],
    Stage.DISQUALIFIED: ["student", "company too small", "no purchasing authority", "not a fit for the product"],
    Stage.RECYCLED: ["no response after five attempts", "not ready, revisit next quarter"],
}
JUNK_REASONS = ["spam submission", "fake details", "test entry"]
EMAIL_SUBJECTS = [
    "Following up on your demo request",
    "Quick question about your lead flow",
    "Pricing overview as promised",
    "Case study: how Northwind cut response time by 60%",
    "Checking in",
]
NOTES = [
    "Evaluating us against two other vendors.",
    "Wants SSO and an audit log before buying.",
    "Budget owner is the VP of Sales; intro next week.",
    "Team of 12 reps, uses spreadsheets today.",
    "Asked for a trial extension.",
    'Left a voicemail, will retry Thursday. Said "call me after 3pm".',
]
MEETINGS = [("Discovery call", 30), ("Product demo", 45), ("Pricing review", 30), ("Security review", 60)]
PAGES = ["/pricing", "/features/routing", "/customers", "/integrations", "/blog/lead-response-time"]
MESSAGES = [
    "We'd like to see a demo for our sales team.",
    "How does pricing work for 20 users?",
    "Do you integrate with our CRM?",
    "",
    "",
]


# --- result ------------------------------------------------------------------------------------


@dataclass
class DemoSeedResult:
    created: Counter = field(default_factory=Counter)
    leads_total: int = 0

    def summary(self) -> str:
        parts = [f"{count} {name}" for name, count in self.created.items() if count]
        return ", ".join(parts) if parts else "nothing new"


# --- entry point -------------------------------------------------------------------------------


@transaction.atomic
def demo_data_seed(*, lead_count: int = 2000, now: datetime | None = None) -> DemoSeedResult:
    """Create the demo users, teams, sources, campaigns, accounts and the first `lead_count` demo
    leads, skipping whatever already exists."""
    now = now or timezone.now()
    result = DemoSeedResult()
    roles_sync()
    users = _users_ensure(result=result)
    reps = [users[u.username] for u in DEMO_USERS if u.role == Role.SALES_REP]
    _teams_ensure(users=users, result=result)
    _routing_rules_ensure(result=result)
    sources = _sources_ensure(result=result)
    campaigns = _campaigns_ensure(sources=sources, today=now.date(), result=result)
    tags = _tags_ensure(result=result)
    world = _World(sources=sources, campaigns=campaigns, tags=tags, reps=reps, now=now)

    people = list(_people(lead_count))
    for start in range(0, len(people), BATCH):
        _leads_insert(people=people[start : start + BATCH], world=world, result=result)
    _rep_counters_update(opened=world.opened, reps=reps)
    return result


# --- reference data ----------------------------------------------------------------------------


def _users_ensure(*, result: DemoSeedResult) -> dict[str, Any]:
    User = get_user_model()
    groups = {group.name: group for group in Group.objects.filter(name__in=[r.value for r in Role])}
    existing = {user.username: user for user in User.objects.filter(username__in=[u.username for u in DEMO_USERS])}
    password = None
    users = {}
    for spec in DEMO_USERS:
        user = existing.get(spec.username)
        if user is None:
            password = password or make_password(DEMO_PASSWORD)  # one (slow) hash for all of them
            user = User.objects.create(
                username=spec.username,
                first_name=spec.first_name,
                last_name=spec.last_name,
                email=f"{spec.username}@leadops.example",
                is_staff=spec.is_staff,
                is_superuser=spec.is_superuser,
                password=password,
            )
            result.created["users"] += 1
        user.groups.add(groups[spec.role.value])
        users[spec.username] = user
    return users


def _teams_ensure(*, users: dict[str, Any], result: DemoSeedResult) -> None:
    teams = {}
    for name, tz in TEAMS:
        teams[name], created = Team.objects.get_or_create(
            name=name, defaults={"manager": users["manager"], "timezone": tz}
        )
        result.created["teams"] += created
    for spec in DEMO_USERS:
        if spec.team:
            _, created = RepProfile.objects.get_or_create(
                user=users[spec.username],
                defaults={"team": teams[spec.team], "timezone": teams[spec.team].timezone, "capacity": 60},
            )
            result.created["rep profiles"] += created


# Two readable rules ahead of the fallback, so the rule editor and dry run have something to show.
DEMO_RULES = [
    (
        "Enterprise to the first team, load-balanced",
        10,
        "any",
        [{"field": "company_size", "op": "in", "value": ["1001-5000", "5000+"]}],
        Method.LOAD_BALANCED,
        0,
    ),
    ("Everyone else: round-robin in the second team", 20, "all", [], Method.ROUND_ROBIN, 1),
]


def _routing_rules_ensure(*, result: DemoSeedResult) -> None:
    teams = list(Team.objects.order_by("name")[:2])
    queue = Queue.objects.filter(name="Unassigned").first()  # created by routing's migrations
    if len(teams) < 2 or queue is None:
        return
    for name, position, match, conditions, method, team_index in DEMO_RULES:
        rule, created = RoutingRule.objects.get_or_create(
            name=name, defaults={"position": position, "match": match, "conditions": conditions, "queue": queue}
        )
        if created:
            RuleAction.objects.create(rule=rule, method=method, team=teams[team_index])
        result.created["routing rules"] += created


def _sources_ensure(*, result: DemoSeedResult) -> dict[str, Source]:
    sources = {}
    for name, channel, cost, _ in SOURCES:
        sources[name], created = Source.objects.get_or_create(
            name=name, defaults={"channel": channel, "cost_per_month": cost}
        )
        result.created["sources"] += created
    return sources


def _campaigns_ensure(*, sources: dict[str, Source], today: date, result: DemoSeedResult) -> list[Campaign]:
    campaigns = []
    for name, source_name, utm, budget, starts_ago, length in CAMPAIGNS:
        starts_on = today - timedelta(days=starts_ago)
        campaign, created = Campaign.objects.get_or_create(
            name=name,
            defaults={
                "source": sources[source_name],
                "utm_campaign": utm,
                "budget": budget,
                "starts_on": starts_on,
                "ends_on": starts_on + timedelta(days=length),
            },
        )
        result.created["campaigns"] += created
        campaigns.append(campaign)
    return campaigns


def _tags_ensure(*, result: DemoSeedResult) -> dict[str, Tag]:
    before = Tag.objects.filter(name__in=TAGS).count()
    Tag.objects.bulk_create([Tag(name=name) for name in TAGS], ignore_conflicts=True)
    tags = {tag.name: tag for tag in Tag.objects.filter(name__in=TAGS)}
    result.created["tags"] += len(tags) - before
    return tags


# --- identities (time-independent, so lead i is always the same person) -------------------------


@dataclass(frozen=True)
class _Company:
    name: str
    domain: str
    industry: str
    size: str
    country: str


@dataclass(frozen=True)
class _Person:
    index: int
    first_name: str
    last_name: str
    email: str
    email_normalized: str
    phone: str
    phone_e164: str
    title: str
    company: _Company | None
    company_name: str
    country: str
    region: str


def _ascii(text: str) -> str:
    text = text.replace("ø", "o").replace("Ø", "O").replace("'", "")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().replace(" ", "")


def _weighted(rng: random.Random, pairs: list[tuple[Any, int]]) -> Any:
    return rng.choices([value for value, _ in pairs], weights=[weight for _, weight in pairs])[0]


def _companies() -> list[_Company]:
    rng = random.Random(f"{DEMO_SEED}:companies")
    companies, seen = [], set()
    country_weights = [(code, weight) for code, weight, _ in COUNTRIES]
    while len(companies) < COMPANY_COUNT:
        word, (suffix, industry) = rng.choice(COMPANY_WORDS), rng.choice(COMPANY_SUFFIXES)
        name = f"{word} {suffix}"
        if name in seen:
            continue
        seen.add(name)
        companies.append(
            _Company(
                name=name,
                domain=f"{word}{suffix}.example".lower(),
                industry=industry,
                size=_weighted(rng, SIZES),
                country=_weighted(rng, country_weights),
            )
        )
    return companies


_PHONE_TEMPLATES: dict[str, tuple[int, str]] = {}


def _phone_for(rng: random.Random, country: str) -> tuple[str, str]:
    """A valid mobile number of the country: (as a person types it, E.164)."""
    if country not in _PHONE_TEMPLATES:
        example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
        _PHONE_TEMPLATES[country] = (example.country_code, str(example.national_number))
    code, national = _PHONE_TEMPLATES[country]
    while True:
        digits = national[:-6] + "".join(rng.choice("0123456789") for _ in range(6))
        number = phonenumbers.parse(f"+{code}{digits}")
        if phonenumbers.is_valid_number(number):
            typed = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            return typed, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _people(count: int) -> Iterator[_Person]:
    rng = random.Random(f"{DEMO_SEED}:people")
    companies = _companies()
    # A few companies send many leads (accounts with several contacts), most send one or two.
    company_weights = [1 / (rank + 3) for rank in range(len(companies))]
    country_weights = [(code, weight) for code, weight, _ in COUNTRIES]
    regions = {code: names for code, _, names in COUNTRIES}
    emails: set[str] = set()
    phones: set[str] = set()
    for index in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        company = rng.choices(companies, weights=company_weights)[0] if rng.random() < 0.82 else None
        if company is not None:
            domain, country, company_name = company.domain, company.country, company.name
        else:
            domain, country = rng.choice(PERSONAL_DOMAINS), _weighted(rng, country_weights)
            company_name = rng.choice(["", "", f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_SUFFIXES)[0]}"])
        f, la = _ascii(first), _ascii(last)
        local = rng.choice([f"{f}.{la}", f"{f}.{la}", f"{f[0]}{la}", f"{f}{la}", f"{f}_{la}"])
        email = f"{local}@{domain}"
        suffix = 1
        while email_normalize(email) in emails:
            suffix += 1
            email = f"{local}{suffix}@{domain}"
        if rng.random() < 0.15:
            email = email.capitalize()  # people type their address in all sorts of ways
        normalized = email_normalize(email)
        emails.add(normalized)
        phone = phone_e164 = ""
        if rng.random() < 0.7:
            phone, phone_e164 = _phone_for(rng, country)
            while phone_e164 in phones:
                phone, phone_e164 = _phone_for(rng, country)
            phones.add(phone_e164)
        yield _Person(
            index=index,
            first_name=first,
            last_name=last,
            email=email,
            email_normalized=normalized,
            phone=phone,
            phone_e164=phone_e164,
            title=_weighted(rng, TITLES),
            company=company,
            company_name=company_name,
            country=country,
            region=rng.choice(regions[country]),
        )


# --- leads and their history -------------------------------------------------------------------


@dataclass
class _World:
    sources: dict[str, Source]
    campaigns: list[Campaign]
    tags: dict[str, Tag]
    reps: list[Any]
    now: datetime
    opened: Counter = field(default_factory=Counter)  # open leads added per rep user id

    @cached_property
    def reps_by_id(self) -> dict[int, Any]:
        return {user.pk: user for user in self.reps}

    def campaigns_of(self, source: Source) -> list[Campaign]:
        return [c for c in self.campaigns if c.source_id == source.pk]


@dataclass
class _LeadPlan:
    lead: Lead
    submissions: list[IntakeSubmission]
    submission_activity: list[Activity]  # same order as submissions: payload gets the submission id
    activities: list[Activity]
    stage_changes: list[StageChange]
    tag_names: list[str]


@contextmanager
def _explicit_timestamps(*model_classes: type[models.Model]) -> Iterator[None]:
    """Let bulk_create keep the historical created_at/updated_at we set (auto_now* would overwrite)."""
    saved = []
    for model_class in model_classes:
        for name in ("created_at", "updated_at"):
            model_field = model_class._meta.get_field(name)
            saved.append((model_field, model_field.auto_now, model_field.auto_now_add))
            model_field.auto_now = model_field.auto_now_add = False
    try:
        yield
    finally:
        for model_field, auto_now, auto_now_add in saved:
            model_field.auto_now, model_field.auto_now_add = auto_now, auto_now_add


def _leads_insert(*, people: list[_Person], world: _World, result: DemoSeedResult) -> None:
    existing_emails = set(
        Lead.objects.filter(email_normalized__in=[p.email_normalized for p in people]).values_list(
            "email_normalized", flat=True
        )
    )
    result.leads_total += len(existing_emails)
    people = [p for p in people if p.email_normalized not in existing_emails]
    result.leads_total += len(people)
    if not people:
        return
    # A phone someone else's lead already holds (a real lead, not a demo one) is left off.
    taken_phones = set(
        Lead.objects.filter(phone_e164__in=[p.phone_e164 for p in people if p.phone_e164]).values_list(
            "phone_e164", flat=True
        )
    )
    accounts = _accounts_ensure(people=people, world=world, result=result)
    plans = [
        _lead_plan(person=person, world=world, accounts=accounts, drop_phone=person.phone_e164 in taken_phones)
        for person in people
    ]

    with _explicit_timestamps(Lead):
        Lead.objects.bulk_create([plan.lead for plan in plans], batch_size=BATCH)
    if any(plan.lead.pk is None for plan in plans):  # backends that cannot return ids from a bulk insert
        ids = dict(
            Lead.objects.filter(email_normalized__in=[p.lead.email_normalized for p in plans]).values_list(
                "email_normalized", "pk"
            )
        )
        for plan in plans:
            plan.lead.pk = plan.lead.id = ids[plan.lead.email_normalized]

    submissions, submission_activities = [], []
    for plan in plans:
        for submission in plan.submissions:
            submission.lead_id = plan.lead.pk
        submissions += plan.submissions
        submission_activities += plan.submission_activity
    IntakeSubmission.objects.bulk_create(submissions, batch_size=BATCH)
    for submission, activity in zip(submissions, submission_activities, strict=True):
        if submission.pk is not None:
            activity.payload["submission_id"] = submission.pk

    activities, stage_changes, tag_links = [], [], []
    through = Lead.tags.through
    for plan in plans:
        for row in (*plan.activities, *plan.stage_changes):
            row.lead_id = plan.lead.pk
        activities += plan.activities
        stage_changes += plan.stage_changes
        tag_links += [through(lead_id=plan.lead.pk, tag_id=world.tags[name].pk) for name in plan.tag_names]
    StageChange.objects.bulk_create(stage_changes, batch_size=BATCH)
    Activity.objects.bulk_create(activities, batch_size=BATCH)
    through.objects.bulk_create(tag_links, batch_size=BATCH)

    _routing_history_insert(plans=plans, world=world, result=result)

    for plan in plans:
        if plan.lead.owner_id and plan.lead.stage not in CLOSED_STAGES:
            world.opened[plan.lead.owner_id] += 1
    result.created["leads"] += len(plans)
    result.created["stage changes"] += len(stage_changes)
    result.created["activities"] += len(activities)
    result.created["intake submissions"] += len(submissions)


def _routing_history_insert(*, plans: list[_LeadPlan], world: _World, result: DemoSeedResult) -> None:
    """An assignment row per owned lead (so "why this owner" has an answer) and a queue entry per
    unowned open lead (so the pull queue is not empty)."""
    profiles = {p.user_id: p for p in RepProfile.objects.select_related("team").filter(user__in=world.reps)}
    queue = Queue.objects.filter(name="Unassigned").first()
    assignments, entries = [], []
    for plan in plans:
        lead = plan.lead
        profile = profiles.get(lead.owner_id)
        if profile is not None:
            sticky = lead.account_id is not None and lead.account.owner_id == lead.owner_id
            assignments.append(
                Assignment(
                    lead_id=lead.pk,
                    rep=profile,
                    created_at=lead.assigned_at or lead.created_at,
                    method=Method.ACCOUNT_OWNER if sticky else Method.ROUND_ROBIN,
                    rule_name="Demo history",
                    reason=(
                        f"owner of the account {lead.account.domain}"
                        if sticky
                        else f"round-robin in {profile.team.name if profile.team else 'all reps'} (demo history)"
                    ),
                )
            )
        elif queue is not None and lead.stage not in CLOSED_STAGES:
            entries.append(
                QueueEntry(
                    lead_id=lead.pk,
                    queue=queue,
                    score=lead.score,
                    enqueued_at=lead.created_at,
                    due_at=lead.created_at + timedelta(minutes=queue.sla_minutes),
                )
            )
    Assignment.objects.bulk_create(assignments, batch_size=BATCH)
    QueueEntry.objects.bulk_create(entries, batch_size=BATCH)
    clocks = [
        _response_clock(plan.lead, profiles[plan.lead.owner_id], world.now)
        for plan in plans
        if plan.lead.owner_id in profiles
    ]
    ResponseClock.objects.bulk_create(clocks, batch_size=BATCH)
    result.created["assignments"] += len(assignments)
    result.created["queue entries"] += len(entries)
    result.created["response clocks"] += len(clocks)


def _response_clock(lead: Lead, rep: RepProfile, now: datetime) -> ResponseClock:
    """The response clock the lead's assignment would have had (5-minute SLA), so the SLA board has
    history. Past breaches are fully escalated already: the sweep has nothing to do for demo data."""
    started = lead.assigned_at or lead.created_at
    clock = ResponseClock(
        lead_id=lead.pk,
        rep=rep,
        team_id=rep.team_id,
        started_at=started,
        warn_at=started + timedelta(minutes=4),
        due_at=started + timedelta(minutes=5),
        escalate_at=started + timedelta(minutes=10),
        escalation="notify",
    )
    if lead.first_contacted_at:
        clock.status, clock.first_touch_at = ClockStatus.TOUCHED, lead.first_contacted_at
        clock.time_to_first_touch = lead.first_contacted_at - started
        if lead.first_contacted_at > clock.due_at:
            clock.breached_at = clock.due_at
    elif lead.stage in CLOSED_STAGES:
        clock.status, clock.closed_at = ClockStatus.CLOSED, lead.stage_changed_at or now
    elif clock.escalate_at <= now:
        clock.warned_at, clock.breached_at, clock.escalated_at = clock.warn_at, clock.due_at, clock.escalate_at
    else:
        clock.next_action_at = clock.warn_at if clock.warn_at > now else clock.due_at
    return clock


def _accounts_ensure(*, people: list[_Person], world: _World, result: DemoSeedResult) -> dict[str, Account]:
    companies = {p.company.domain: p.company for p in people if p.company is not None}
    existing = set(Account.objects.filter(domain__in=companies).values_list("domain", flat=True))
    new = [
        Account(
            domain=company.domain,
            name=company.name,
            industry=company.industry,
            company_size=company.size,
            country=company.country,
            # Bigger accounts have a named owner; leads of the same company are grouped under it.
            owner=world.reps[_stable_index(company.domain, len(world.reps))]
            if company.size in {CompanySize.S1001_5000, CompanySize.S5000_PLUS}
            else None,
        )
        for domain, company in sorted(companies.items())
        if domain not in existing
    ]
    Account.objects.bulk_create(new, batch_size=BATCH, ignore_conflicts=True)
    result.created["accounts"] += len(new)
    return {account.domain: account for account in Account.objects.filter(domain__in=companies)}


def _stable_index(text: str, modulo: int) -> int:
    """A stable index for a string (Python's hash() changes between processes)."""
    return sum(ord(char) * (i + 1) for i, char in enumerate(text)) % modulo


def _lead_plan(*, person: _Person, world: _World, accounts: dict[str, Account], drop_phone: bool) -> _LeadPlan:
    rng = random.Random(f"{DEMO_SEED}:life:{person.index}")  # the lead's history, separate from identity
    now = world.now
    created_at = now - timedelta(seconds=rng.uniform(600, DAYS * 86400))
    source_name = _weighted(rng, [(name, weight) for name, _, _, weight in SOURCES])
    source = world.sources[source_name]
    channel = source.channel
    options = world.campaigns_of(source)
    campaign = rng.choice(options) if options and rng.random() < 0.8 else None
    touch = _touch(rng=rng, channel=channel, source=source, campaign=campaign, at=created_at)
    account = accounts.get(person.company.domain) if person.company else None
    path = _weighted(rng, [(moves, weight) for weight, moves in PATHS])

    # Ownership: most leads are assigned within minutes; some new ones wait in the queue.
    owner = rng.choice(world.reps)
    if account is not None and account.owner_id in world.reps_by_id:
        owner = world.reps_by_id[account.owner_id]  # the account owner gets the company's leads
    if not path and rng.random() < 0.5:
        owner = None
    assigned_at = created_at + timedelta(minutes=rng.uniform(1, 20)) if owner else None

    activities: list[Activity] = []
    stage_changes = [StageChange(from_stage="", to_stage=Stage.NEW, changed_at=created_at, reason="captured")]

    def log(kind: str, at: datetime, actor=None, payload: dict | None = None) -> None:
        activities.append(Activity(kind=kind, occurred_at=at, actor=actor, payload=payload or {}))

    # The submission that created the lead (an import or event badge scan has no intake log entry).
    submissions, submission_activities = [], []
    imported = channel in {Channel.IMPORT, Channel.EVENT}
    message = rng.choice(MESSAGES)
    if imported:
        log(ActivityKind.IMPORTED, created_at, payload=dict(touch))
    else:
        payload = _form_payload(person=person, touch=touch, message=message, drop_phone=drop_phone)
        submissions.append(_submission(rng, source=source, at=created_at, payload=payload, created=True))
        log(ActivityKind.FORM_SUBMITTED, created_at, payload={**touch, **({"message": message} if message else {})})
        submission_activities.append(activities[-1])
    if owner:
        log(ActivityKind.ASSIGNED, assigned_at, payload={"owner": owner.username, "method": "round robin"})

    # The moves, each a while after the previous one; the future has not happened yet.
    stage, stage_changed_at, first_contacted_at = Stage.NEW, created_at, None
    at = assigned_at or created_at
    for position, to_stage in enumerate(path):
        gap = timedelta(hours=rng.uniform(0.2, 30)) if position == 0 else timedelta(days=rng.uniform(1, 12))
        move_at = at + gap
        if move_at >= now:
            break
        _activities_between(rng, log=log, start=at, end=move_at, stage=stage, owner=owner)
        if first_contacted_at is None and to_stage != Stage.DISQUALIFIED:
            # The rep's first call or email: the lead's first contact (it stops the response clock).
            # About half answer within the 5-minute SLA, most within the hour, a tail much later.
            kind = rng.choice([ActivityKind.CALL, ActivityKind.EMAIL_SENT])
            minutes = _weighted(rng, [(rng.uniform(0.5, 5), 55), (rng.uniform(5, 60), 30), (rng.uniform(60, 600), 15)])
            first_contacted_at = min(move_at, at + timedelta(minutes=minutes))
            log(kind, first_contacted_at, owner, _contact_payload(rng, kind))
        junk = to_stage == Stage.DISQUALIFIED and stage == Stage.NEW  # thrown out before anyone called
        reason = rng.choice(JUNK_REASONS if junk else REASONS[to_stage])
        stage_changes.append(
            StageChange(from_stage=stage, to_stage=to_stage, changed_at=move_at, changed_by=owner, reason=reason)
        )
        log(ActivityKind.STAGE_CHANGED, move_at, owner, {"from": stage, "to": to_stage, "reason": reason})
        stage, stage_changed_at, at = to_stage, move_at, move_at
    if stage not in CLOSED_STAGES and stage != Stage.RECYCLED and owner is not None and at < now:
        _activities_between(rng, log=log, start=at, end=min(now, at + timedelta(days=10)), stage=stage, owner=owner)

    # Some people come back through another source later: a second touch updates last-touch attribution.
    last_source, last_campaign, last_channel, last_touch, last_touch_at = source, campaign, channel, touch, created_at
    if rng.random() < 0.25:
        again_at = created_at + timedelta(days=rng.uniform(1, 30))
        if again_at < now:
            last_source = world.sources[_weighted(rng, [(n, w) for n, c, _, w in SOURCES if c != Channel.IMPORT])]
            options = world.campaigns_of(last_source)
            last_campaign = rng.choice(options) if options else None
            last_channel = last_source.channel
            last_touch = _touch(rng=rng, channel=last_channel, source=last_source, campaign=last_campaign, at=again_at)
            last_touch_at = again_at
            payload = _form_payload(person=person, touch=last_touch, message="", drop_phone=drop_phone)
            submissions.append(_submission(rng, source=last_source, at=again_at, payload=payload, created=False))
            log(ActivityKind.FORM_SUBMITTED, again_at, payload=dict(last_touch))
            submission_activities.append(activities[-1])

    consent = rng.random() < 0.6
    phone, phone_e164 = ("", "") if drop_phone else (person.phone, person.phone_e164)
    engagement = sum(1 for a in activities if a.kind not in {ActivityKind.ASSIGNED, ActivityKind.STAGE_CHANGED})
    score = _score(rng, person=person, stage=stage, engagement=engagement)
    tag_names = rng.sample(TAGS, k=rng.choice([0, 0, 0, 1, 1, 2]))
    custom_fields = {}
    if rng.random() < 0.3:
        custom_fields = {
            "team_size": rng.choice([5, 12, 25, 40, 100]),
            "timeline": rng.choice(["this quarter", "next quarter", "just researching"]),
        }
    lead = Lead(
        email=person.email,
        email_normalized=person.email_normalized,
        phone=phone,
        phone_e164=phone_e164,
        first_name=person.first_name,
        last_name=person.last_name,
        title=person.title,
        company_name=person.company_name,
        company_domain=person.company.domain if person.company else "",
        industry=person.company.industry if person.company else "",
        company_size=person.company.size if person.company else "",
        country=person.country,
        region=person.region,
        custom_fields=custom_fields,
        account=account,
        channel=channel,
        source=source,
        campaign=campaign,
        first_touch=touch,
        last_channel=last_channel,
        last_source=last_source,
        last_campaign=last_campaign,
        last_touch=last_touch,
        last_touch_at=last_touch_at,
        stage=stage,
        stage_changed_at=stage_changed_at,
        owner=owner,
        assigned_at=assigned_at,
        first_contacted_at=first_contacted_at,
        score=score,
        marketing_consent=consent,
        consent_at=created_at if consent else None,
        consent_method=("demo form checkbox" if not imported else "event badge scan") if consent else "",
        enriched_at=created_at + timedelta(minutes=1),  # the enrichment sweep has nothing to do for demo data
        created_at=created_at,
        updated_at=max([created_at, *(a.occurred_at for a in activities)]),
    )
    return _LeadPlan(
        lead=lead,
        submissions=submissions,
        submission_activity=submission_activities,
        activities=activities,
        stage_changes=stage_changes,
        tag_names=tag_names,
    )


def _touch(*, rng: random.Random, channel: str, source: Source, campaign: Campaign | None, at: datetime) -> dict:
    utm_source, utm_medium = _UTM.get(channel, ("website", "form"))
    if source.name == "LinkedIn Ads":
        utm_source = "linkedin"
    touch = {
        "utm_source": utm_source,
        "utm_medium": utm_medium,
        "landing_page": f"https://www.leadops.example{rng.choice(['/', '/demo', '/pricing', '/features'])}",
        "at": at.isoformat(),
        "channel": channel,
        "source": source.name,
    }
    if campaign is not None:
        touch.update(utm_campaign=campaign.utm_campaign, campaign=campaign.name)
    if channel in {Channel.PAID_ADS, Channel.ORGANIC}:
        touch["referrer"] = "https://www.google.com/" if utm_source == "google" else "https://www.linkedin.com/"
    return touch


def _form_payload(*, person: _Person, touch: dict, message: str, drop_phone: bool) -> dict:
    payload = {
        "email": person.email,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "company_name": person.company_name,
        "title": person.title,
        "country": person.country,
    }
    if person.phone and not drop_phone:
        payload["phone"] = person.phone
    payload.update({k: v for k, v in touch.items() if k.startswith("utm_") or k in {"referrer", "landing_page"}})
    if message:
        payload["message"] = message
    return payload


def _submission(rng: random.Random, *, source: Source, at: datetime, payload: dict, created: bool) -> IntakeSubmission:
    return IntakeSubmission(
        received_at=at,
        source=source,
        payload=payload,
        remote_addr=f"{rng.choice(['192.0.2', '198.51.100', '203.0.113'])}.{rng.randrange(1, 255)}",
        outcome=IntakeOutcome.CREATED if created else IntakeOutcome.MERGED,
        response_status=201 if created else 200,
    )


def _contact_payload(rng: random.Random, kind: str) -> dict:
    if kind == ActivityKind.CALL:
        outcome = rng.choice(["connected", "voicemail", "no answer"])
        return {"outcome": outcome, "duration_seconds": rng.randrange(120, 1500) if outcome == "connected" else 0}
    if kind == ActivityKind.MEETING:
        title, minutes = rng.choice(MEETINGS)
        return {"title": title, "duration_minutes": minutes}
    if kind == ActivityKind.NOTE:
        return {"note": rng.choice(NOTES)}
    if kind == ActivityKind.PAGE_VIEW:
        return {"url": rng.choice(PAGES)}
    return {"subject": rng.choice(EMAIL_SUBJECTS)}


def _activities_between(rng: random.Random, *, log, start: datetime, end: datetime, stage: str, owner) -> None:
    """A few things that happen while a lead sits in a stage: emails, opens, calls, notes, meetings."""
    kinds = [ActivityKind.PAGE_VIEW, ActivityKind.EMAIL_OPENED, ActivityKind.EMAIL_CLICKED]
    if owner is not None and stage != Stage.NEW:
        kinds += [ActivityKind.CALL, ActivityKind.EMAIL_SENT, ActivityKind.NOTE, ActivityKind.EMAIL_SENT]
        if stage in {Stage.SQL, Stage.OPPORTUNITY}:
            kinds += [ActivityKind.MEETING, ActivityKind.MEETING]
    span = (end - start).total_seconds()
    if span <= 60:
        return
    times = sorted(start + timedelta(seconds=rng.uniform(30, span - 30)) for _ in range(rng.choice([0, 1, 1, 2, 3])))
    for at in times:
        kind = rng.choice(kinds)
        by_person = kind in {ActivityKind.CALL, ActivityKind.EMAIL_SENT, ActivityKind.NOTE, ActivityKind.MEETING}
        log(kind, at, owner if by_person else None, _contact_payload(rng, kind))


def _score(rng: random.Random, *, person: _Person, stage: str, engagement: int) -> int:
    score = rng.randrange(0, 15) + min(engagement, 6) * 5
    if person.title in _SENIOR:
        score += 20
    if person.company and person.company.size in {CompanySize.S201_1000, CompanySize.S1001_5000}:
        score += 15
    score += {Stage.MQL: 10, Stage.SQL: 20, Stage.OPPORTUNITY: 30, Stage.WON: 35}.get(stage, 0)
    if stage == Stage.DISQUALIFIED:
        score //= 3
    return max(0, min(100, score))


def _rep_counters_update(*, opened: Counter, reps: list[Any]) -> None:
    """Add the new demo leads to their owners' open-lead counters (capacity grows to fit demo volume)."""
    for user in reps:
        added = opened.get(user.pk, 0)
        if added:
            RepProfile.objects.filter(user=user).update(
                capacity=Greatest(F("capacity"), F("open_leads") + added + 10),
                open_leads=F("open_leads") + added,
            )
