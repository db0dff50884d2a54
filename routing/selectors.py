"""Reads of the routing app, already scoped to what the user may see."""

import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from core.caches import cache_register
from core.exceptions import Forbidden, NotFound
from core.roles import Role, roles_of
from leads.models import CLOSED_STAGES, Lead
from routing.models import Assignment, Queue, QueueEntry, RepProfile, RoutingRule, RuleAction, SlaPolicy

# --- who may do what ---------------------------------------------------------------------------


def user_can_edit_rules(user: AbstractBaseUser) -> bool:
    roles = roles_of(user)
    return user.has_perm("routing.change_routingrule") or bool({Role.MARKETING_OPS, Role.ADMIN} & roles)


def user_can_reassign(user: AbstractBaseUser) -> bool:
    return user.has_perm("leads.reassign_lead")


def user_can_dry_run(user: AbstractBaseUser) -> bool:
    return user_can_edit_rules(user) or user_can_reassign(user)


# --- reps and teams ----------------------------------------------------------------------------


def rep_get_for_user(*, user: AbstractBaseUser) -> RepProfile | None:
    if not user.is_authenticated:
        return None
    return RepProfile.objects.select_related("team", "user").filter(user=user).first()


def rep_get_for_user_or_403(*, user: AbstractBaseUser) -> RepProfile:
    rep = rep_get_for_user(user=user)
    if rep is None:
        raise Forbidden("Only sales reps have a queue.")
    return rep


def rep_list_for_user(*, user: AbstractBaseUser) -> QuerySet[RepProfile]:
    """Reps a manager may hand leads to: their teams' reps (everyone for ops and admins)."""
    reps = RepProfile.objects.select_related("user", "team").order_by("user__username")
    if user_can_edit_rules(user) or user.is_superuser:
        return reps
    if user_can_reassign(user):
        return reps.filter(team__manager=user) | reps.filter(team__isnull=True)
    return reps.none()


def rep_assignable_list_for_user(*, user: AbstractBaseUser) -> QuerySet[RepProfile]:
    """Active reps `user` may name as a lead's new owner, on every page and in the API."""
    return rep_list_for_user(user=user).filter(is_active=True)


def rep_assignable_get(*, user: AbstractBaseUser, rep_id: int | None) -> RepProfile | None:
    """The rep `user` names as a new owner (None: route through the rules); 404 if not theirs to use."""
    if rep_id is None:
        return None
    rep = rep_assignable_list_for_user(user=user).filter(pk=rep_id).first()
    if rep is None:
        raise NotFound("No active rep with this id that you may assign to.", field="to_rep")
    return rep


@dataclass(frozen=True)
class RepStatus:
    rep: RepProfile
    routable: bool
    why_not: str  # empty when the router may pick this rep right now
    load_percent: int


def rep_status_list_for_user(*, user: AbstractBaseUser, now: datetime | None = None) -> list[RepStatus]:
    """The reps a manager looks after (ops and admins: all), each with whether the router could give
    them a lead right now and why not. One query, whatever the number of reps."""
    from routing.services.engine import rep_ineligibility

    now = now or timezone.now()
    statuses = []
    for rep in rep_list_for_user(user=user):
        why_not = rep_ineligibility(rep=rep, now=now)
        load = round(100 * rep.open_leads / rep.capacity) if rep.capacity else 100
        statuses.append(RepStatus(rep=rep, routable=not why_not, why_not=why_not, load_percent=min(load, 100)))
    return statuses


# --- rules -------------------------------------------------------------------------------------


# Rules and SLA policies change rarely and are read on every intake: each process keeps them,
# keyed by a fingerprint of their tables that one cheap query reads (any edit from anywhere
# changes it). The fingerprint itself is read at most once per
# LEADOPS_ROUTING_RULES_RECHECK_SECONDS (a round trip per intake was a tenth of its time); an
# edit made in this process shows at once (signals, see routing/apps.py).
@dataclass(frozen=True)
class _RoutingConfig:
    fingerprint: tuple
    checked_at: float
    rules: list[RoutingRule]
    sla_policies: list[SlaPolicy]


_config_cache: dict[str, _RoutingConfig] = {}
_config_cache_lock = threading.Lock()
ROUTING_CONFIG_MODELS = (RoutingRule, RuleAction, Queue, SlaPolicy)


def _config_fingerprint() -> tuple:
    tables = [model._meta.db_table for model in ROUTING_CONFIG_MODELS]
    parts = ", ".join(
        f"(SELECT count(*) FROM {table}), (SELECT max(id) FROM {table}), (SELECT max(updated_at) FROM {table})"
        for table in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {parts}")
        return (connection.settings_dict["NAME"], *cursor.fetchone())


def routing_config_cache_clear(**_signal_kwargs) -> None:
    """Forget this process's rules and policies (connected to saves and deletes of their models)."""
    _config_cache.clear()


cache_register("routing.config", routing_config_cache_clear)


def _routing_config() -> _RoutingConfig:
    cached = _config_cache.get("config")
    now = time.monotonic()
    if cached is not None and now - cached.checked_at < settings.LEADOPS_ROUTING_RULES_RECHECK_SECONDS:
        return cached
    fingerprint = _config_fingerprint()
    if cached is not None and cached.fingerprint == fingerprint:
        _config_cache["config"] = replace(cached, checked_at=now)
        return cached
    config = _RoutingConfig(
        fingerprint=fingerprint,
        checked_at=now,
        rules=routing_rules_active_load(),
        sla_policies=list(SlaPolicy.objects.filter(is_active=True)),
    )
    if config.rules[-1].pk and fingerprint == _config_fingerprint():
        with _config_cache_lock:
            _config_cache["config"] = config
    return config


def routing_rules_active() -> list[RoutingRule]:
    """The active rules in evaluation order with their actions, the fallback last. No query, or one,
    when nothing changed since this process last loaded them (the instances are shared: read only)."""
    return _routing_config().rules


def sla_policies_active() -> list[SlaPolicy]:
    """The active SLA policies in order (cached with the rules; shared instances: read only)."""
    return _routing_config().sla_policies


def routing_rules_active_load() -> list[RoutingRule]:
    """The active rules in evaluation order with their actions (two queries); the fallback is last
    and is created if someone removed it, so no lead is ever left unrouted."""
    pools = Prefetch("pool", queryset=RepProfile.objects.only("id"))
    actions = RuleAction.objects.select_related("rep__user", "queue").prefetch_related(pools).order_by("arm")
    rules = list(
        RoutingRule.objects.filter(Q(is_active=True) | Q(is_fallback=True))
        .select_related("queue")
        .prefetch_related(Prefetch("actions", queryset=actions))
        .order_by("is_fallback", "position", "pk")
    )
    if not rules or not rules[-1].is_fallback:
        rules.append(routing_rule_fallback_ensure())
    return rules


def routing_rule_fallback_ensure() -> RoutingRule:
    queue, _ = Queue.objects.get_or_create(name="Unassigned", defaults={"sla_minutes": 60})
    try:
        with transaction.atomic():
            rule = RoutingRule.objects.create(
                name="Fallback", position=1_000_000, is_fallback=True, queue=queue, conditions=[]
            )
            RuleAction.objects.create(rule=rule, arm="A", method="queue", queue=queue)
    except IntegrityError:  # created concurrently
        pass
    return RoutingRule.objects.select_related("queue").prefetch_related("actions").get(is_fallback=True)


def routing_rule_list() -> QuerySet[RoutingRule]:
    actions = RuleAction.objects.select_related("team", "rep__user", "queue").prefetch_related("pool__user")
    return (
        RoutingRule.objects.select_related("queue")
        .prefetch_related(Prefetch("actions", queryset=actions))
        .order_by("is_fallback", "position", "pk")
    )


def routing_rule_get(*, rule_id: int) -> RoutingRule:
    rule = routing_rule_list().filter(pk=rule_id).first()
    if rule is None:
        raise NotFound("No routing rule with this id.")
    return rule


# --- queue -------------------------------------------------------------------------------------


def queues_for_rep(*, rep: RepProfile) -> QuerySet[Queue]:
    """Queues a rep may pull from: their team's queues and the queues open to every rep."""
    scope = Q(team__isnull=True)
    if rep.team_id:
        scope |= Q(team_id=rep.team_id)
    return Queue.objects.filter(scope)


def rep_may_pull_from(*, rep: RepProfile, queue: Queue) -> bool:
    return rep.is_active and (queue.team_id is None or queue.team_id == rep.team_id)


def queue_list_for_rep(*, rep: RepProfile, limit: int = 100) -> QuerySet[QueueEntry]:
    """Open queue entries this rep may claim, by priority: score, then SLA due time, then age."""
    return (
        QueueEntry.objects.filter(claimed_at__isnull=True, queue__in=queues_for_rep(rep=rep))
        .select_related("lead__owner", "lead__source", "lead__campaign", "queue")
        .order_by("-score", "due_at", "pk")[:limit]
    )


def queue_list_with_counts() -> QuerySet[Queue]:
    """Every queue with how many leads wait in it (ops see leads nobody was eligible for)."""
    return Queue.objects.select_related("team").annotate(
        waiting=Count("entries", filter=Q(entries__claimed_at__isnull=True))
    )


# --- assignments -------------------------------------------------------------------------------


def assignment_current_for_lead(*, lead_id: int) -> Assignment | None:
    """The latest routing decision of a lead: "why this owner"."""
    return (
        Assignment.objects.select_related("rep__user", "queue", "actor")
        .filter(lead_id=lead_id)
        .order_by("-created_at", "-id")
        .first()
    )


def assignment_list_for_lead(*, lead_id: int, limit: int = 20) -> QuerySet[Assignment]:
    return (
        Assignment.objects.select_related("rep__user", "queue", "actor")
        .filter(lead_id=lead_id)
        .order_by("-created_at", "-id")[:limit]
    )


def lead_open_ids_for_rep(*, rep: RepProfile) -> list[int]:
    return list(
        Lead.objects.filter(owner_id=rep.user_id)
        .exclude(stage__in=CLOSED_STAGES)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
