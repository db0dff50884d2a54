"""API keys of intake sources: created once (the raw key shown once), revoked, marked used."""

import secrets
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from leads.models import ApiKey, Source
from leads.selectors import api_key_cache_forget, api_key_hash


def api_key_create(*, source: Source, name: str = "") -> tuple[ApiKey, str]:
    """A new key for a source. The raw key is returned once and never stored."""
    prefix = secrets.token_hex(4)
    raw_key = f"lo_{prefix}_{secrets.token_hex(24)}"
    api_key = ApiKey.objects.create(source=source, name=name, prefix=prefix, key_hash=api_key_hash(raw_key))
    return api_key, raw_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key_cache_forget(prefix=api_key.prefix)
    api_key.refresh_from_db()
    return api_key


def api_key_mark_used(*, api_key: ApiKey) -> None:
    # At most one write a minute per key: enough to spot unused keys, cheap on the hot path.
    now = timezone.now()
    if api_key.last_used_at and api_key.last_used_at > now - timedelta(minutes=1):
        return
    api_key.last_used_at = now  # the cached key object too: at most one write a minute per process
    ApiKey.objects.filter(pk=api_key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - timedelta(minutes=1))
    ).update(last_used_at=now)


def source_get_or_create(*, name: str) -> Source:
    source, _ = Source.objects.get_or_create(name=name.strip())
    return source
