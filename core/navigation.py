"""The app's navigation, by role: the one place that says which pages each role sees.

To add a page, append one `NavEntry`. An entry whose URL name does not resolve (the page is not
built yet) is skipped, so entries can land before or after their views. Entries with no roles are
shown to every signed-in user. Two entries with the same URL name: the first one a user may see wins.
"""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from core.roles import Role, roles_of

OPS, REP, MANAGER, ADMIN = Role.MARKETING_OPS, Role.SALES_REP, Role.SALES_MANAGER, Role.ADMIN


@dataclass(frozen=True)
class NavEntry:
    label: str
    url_name: str
    roles: frozenset[Role] = frozenset()


NAVIGATION: list[NavEntry] = [
    NavEntry("Leads", "leads:lead_list", frozenset({OPS, MANAGER, ADMIN})),
    NavEntry("My leads", "leads:lead_list", frozenset({REP})),
    NavEntry("Queue", "routing:queue", frozenset({REP})),
    NavEntry("Import", "leads-import:list", frozenset({OPS, ADMIN})),
    NavEntry("Routing rules", "routing:rule_list", frozenset({OPS, ADMIN})),
    NavEntry("Team", "routing:team", frozenset({MANAGER})),
    NavEntry("Reassign", "routing:reassign", frozenset({MANAGER})),
    NavEntry("SLA board", "sla:board", frozenset({OPS, MANAGER, ADMIN})),
    # Routing, SLA board, import, scoring, nurture, analytics: add one line each here.
    NavEntry("Admin", "admin:index", frozenset({ADMIN})),
]


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    active: bool


def nav_items_for(*, user: AbstractBaseUser, request: HttpRequest | None = None) -> list[NavItem]:
    roles = roles_of(user)
    current = request.resolver_match.view_name if request is not None and request.resolver_match else ""
    items: list[NavItem] = []
    seen: set[str] = set()
    for entry in NAVIGATION:
        if entry.url_name in seen or (entry.roles and not roles & {role.value for role in entry.roles}):
            continue
        try:
            url = reverse(entry.url_name)
        except NoReverseMatch:
            continue
        seen.add(entry.url_name)
        namespace = entry.url_name.rpartition(":")[0]
        active = current == entry.url_name or bool(namespace and current.startswith(f"{namespace}:"))
        items.append(NavItem(label=entry.label, url=url, active=active))
    # The page's own entry wins over the other entries of its app (Team vs Reassign, both routing).
    exact = {entry.url_name for entry in NAVIGATION if entry.url_name == current}
    if exact:
        items = [NavItem(label=i.label, url=i.url, active=i.url == reverse(current)) for i in items]
    return items
