"""The demo organisation: users for every role, two teams with their reps, two routing rules,
the sources, campaigns and tags leads are attributed to. Reference data, get-or-create: a second
run changes nothing."""

from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group

from core.roles import Role, roles_sync
from leads.models import Campaign, Channel, Source, Tag
from routing.models import Method, Queue, RepProfile, RoutingRule, Team
from routing.services import ActionData, routing_rule_save

DEMO_PASSWORD = "leadops-demo"


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
REP_CAPACITY = 60

# Two readable rules ahead of the fallback, so the rule editor and dry run have something to show:
# name, position, match, conditions, method, team index.
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
TAGS = ["enterprise", "webinar", "hot", "pricing-page", "free-trial", "newsletter", "competitor-user", "event-2025"]


@dataclass
class Org:
    """What the lead histories refer to."""

    users: dict[str, Any]  # username -> user
    reps: list[RepProfile]  # in DEMO_USERS order
    sources: dict[str, Source]
    campaigns: list[Campaign]
    queue: Queue | None  # "Unassigned", created by routing's migrations

    @property
    def ops(self) -> Any:
        return self.users["ops"]

    def campaigns_of(self, source: Source) -> list[Campaign]:
        return [c for c in self.campaigns if c.source_id == source.pk]


def org_ensure(*, today: date, created: Counter) -> Org:
    """Create whatever part of the demo organisation is missing; `created` counts it by kind."""
    roles_sync()
    users = _users_ensure(created=created)
    teams = _teams_ensure(users=users, created=created)
    queue = Queue.objects.filter(name="Unassigned").first()
    _routing_rules_ensure(teams=teams, queue=queue, created=created)
    sources = _sources_ensure(created=created)
    campaigns = _campaigns_ensure(sources=sources, today=today, created=created)
    _tags_ensure(created=created)
    profiles = RepProfile.objects.select_related("user", "team").filter(user__in=users.values())
    by_user = {rep.user_id: rep for rep in profiles}
    reps = [by_user[users[u.username].pk] for u in DEMO_USERS if u.role == Role.SALES_REP]
    return Org(users=users, reps=reps, sources=sources, campaigns=campaigns, queue=queue)


def rep_capacity_fit(*, opened: Counter) -> None:
    """Make room for the open leads the seeder is about to give each rep (rep id -> count): demo
    volume is higher than a real desk, and an assignment past capacity is refused."""
    for rep in RepProfile.objects.filter(pk__in=[pk for pk, count in opened.items() if count]):
        needed = rep.open_leads + opened[rep.pk] + 10
        if rep.capacity < needed:
            rep.capacity = needed
            rep.save(update_fields=["capacity", "updated_at"])


def _users_ensure(*, created: Counter) -> dict[str, Any]:
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
            created["users"] += 1
        user.groups.add(groups[spec.role.value])
        users[spec.username] = user
    return users


def _teams_ensure(*, users: dict[str, Any], created: Counter) -> list[Team]:
    teams = {}
    for name, tz in TEAMS:
        teams[name], new = Team.objects.get_or_create(name=name, defaults={"manager": users["manager"], "timezone": tz})
        created["teams"] += new
    for spec in DEMO_USERS:
        if spec.team:
            _, new = RepProfile.objects.get_or_create(
                user=users[spec.username],
                defaults={"team": teams[spec.team], "timezone": teams[spec.team].timezone, "capacity": REP_CAPACITY},
            )
            created["rep profiles"] += new
    return [teams[name] for name, _ in TEAMS]


def _routing_rules_ensure(*, teams: list[Team], queue: Queue | None, created: Counter) -> None:
    if queue is None:
        return
    existing = set(RoutingRule.objects.filter(name__in=[r[0] for r in DEMO_RULES]).values_list("name", flat=True))
    for name, position, match, conditions, method, team_index in DEMO_RULES:
        if name in existing:
            continue
        routing_rule_save(
            rule=None,
            name=name,
            queue=queue,
            conditions=conditions,
            match=match,
            position=position,
            action_a=ActionData(method=method, team=teams[team_index]),
        )
        created["routing rules"] += 1


def _sources_ensure(*, created: Counter) -> dict[str, Source]:
    sources = {}
    for name, channel, cost, _ in SOURCES:
        sources[name], new = Source.objects.get_or_create(
            name=name, defaults={"channel": channel, "cost_per_month": cost}
        )
        created["sources"] += new
    return sources


def _campaigns_ensure(*, sources: dict[str, Source], today: date, created: Counter) -> list[Campaign]:
    campaigns = []
    for name, source_name, utm, budget, starts_ago, length in CAMPAIGNS:
        starts_on = today - timedelta(days=starts_ago)
        campaign, new = Campaign.objects.get_or_create(
            name=name,
            defaults={
                "source": sources[source_name],
                "utm_campaign": utm,
                "budget": budget,
                "starts_on": starts_on,
                "ends_on": starts_on + timedelta(days=length),
            },
        )
        created["campaigns"] += new
        campaigns.append(campaign)
    return campaigns


def _tags_ensure(*, created: Counter) -> None:
    before = Tag.objects.filter(name__in=TAGS).count()
    Tag.objects.bulk_create([Tag(name=name) for name in TAGS], ignore_conflicts=True)
    created["tags"] += Tag.objects.filter(name__in=TAGS).count() - before
