"""Reads of the leads app, already scoped to what the user may see."""

import hashlib
import hmac
import re
import threading
import time
from collections import OrderedDict
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet

from core.caches import cache_register
from core.exceptions import NotFound
from leads.models import Activity, ApiKey, IntakeSubmission, Lead, StageChange


def user_sees_all_leads(user: AbstractBaseUser) -> bool:
    return user.has_perm("leads.view_all_leads")


def user_may_handle_privacy(user: AbstractBaseUser) -> bool:
    """Privacy requests (export everything, erase): marketing ops and admins."""
    return user.has_perm("leads.export_lead_data") or user.has_perm("leads.erase_lead")


def lead_list_for_user(*, user: AbstractBaseUser) -> QuerySet[Lead]:
    """Leads this user may see: everything for ops/managers/admins, a rep only their own."""
    queryset = Lead.objects.select_related("owner", "source", "campaign", "account").prefetch_related("tags")
    if user_sees_all_leads(user):
        return queryset
    return queryset.filter(owner=user)


def lead_get_for_user(*, user: AbstractBaseUser, lead_id: int) -> Lead:
    # A lead the user may not see answers exactly like a lead that does not exist (no probing).
    lead = lead_list_for_user(user=user).filter(pk=lead_id).first()
    if lead is None:
        raise NotFound("No lead with this id.")
    return lead


def lead_ids_unenriched(*, after: tuple[datetime, int] | None = None, limit: int = 200) -> list[tuple[datetime, int]]:
    """(created_at, id) of leads not enriched yet, oldest first, after a keyset position (served
    by the partial index on unenriched leads)."""
    leads = Lead.objects.filter(enriched_at__isnull=True)
    if after is not None:
        leads = leads.filter(Q(created_at__gt=after[0]) | Q(created_at=after[0], pk__gt=after[1]))
    return list(leads.order_by("created_at", "pk").values_list("created_at", "pk")[:limit])


def lead_timeline(*, lead: Lead, limit: int = 200) -> QuerySet[Activity]:
    return lead.activities.select_related("actor").order_by("-occurred_at", "-id")[:limit]


def lead_stage_history(*, lead: Lead) -> QuerySet[StageChange]:
    return lead.stage_changes.select_related("changed_by").order_by("changed_at", "id")


def api_key_hash(raw_secret: str) -> str:
    # Keys carry 24 random bytes: a fast hash is as safe as a slow one and keeps intake quick.
    return hashlib.sha256(raw_secret.encode()).hexdigest()


# Active keys by prefix, per process, so intake does not query the key on every request.
# A revocation clears this process's entry at once and every other process's within the TTL.
# Unknown prefixes are cached too (as None), so the cache is a bounded LRU: a stream of made-up
# prefixes evicts the oldest entries instead of growing the process.
API_KEY_CACHE_SECONDS = 10
API_KEY_CACHE_MAX = 1024
# The shape api_key_create gives every key: lo_<8 hex>_<48 hex>. Anything else is refused
# before the cache or the database is looked at.
API_KEY_SHAPE = re.compile(r"lo_([0-9a-f]{8})_[0-9a-f]{48}")
_api_key_cache: OrderedDict[str, tuple[float, ApiKey | None]] = OrderedDict()
_api_key_cache_lock = threading.Lock()


def api_key_cache_forget(*, prefix: str) -> None:
    with _api_key_cache_lock:
        _api_key_cache.pop(prefix, None)


def api_key_cache_clear() -> None:
    with _api_key_cache_lock:
        _api_key_cache.clear()


cache_register("leads.api_keys", api_key_cache_clear)


def api_key_get_active(*, raw_key: str) -> ApiKey | None:
    """The active key for a raw `lo_<prefix>_<secret>` string, compared in constant time."""
    raw_key = raw_key.strip()
    shape = API_KEY_SHAPE.fullmatch(raw_key)
    if shape is None:
        return None
    prefix = shape.group(1)
    with _api_key_cache_lock:
        cached = _api_key_cache.get(prefix)
        if cached is not None:
            _api_key_cache.move_to_end(prefix)
    if cached and cached[0] > time.monotonic():
        key = cached[1]
    else:
        key = ApiKey.objects.select_related("source").filter(prefix=prefix, revoked_at__isnull=True).first()
        with _api_key_cache_lock:
            _api_key_cache[prefix] = (time.monotonic() + API_KEY_CACHE_SECONDS, key)
            _api_key_cache.move_to_end(prefix)
            while len(_api_key_cache) > API_KEY_CACHE_MAX:
                _api_key_cache.popitem(last=False)
    if key is None or not hmac.compare_digest(key.key_hash, api_key_hash(raw_key)):
        return None
    return key


def intake_submission_get_by_idempotency_key(*, scope: str, key: str) -> IntakeSubmission | None:
    return IntakeSubmission.objects.filter(idempotency_scope=scope, idempotency_key=key).first()
