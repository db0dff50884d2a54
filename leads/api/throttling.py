"""Fixed-window rate limits for the public intake endpoint, counted atomically in Redis.

Both limits (per API key and per client IP) are counted in one Redis round trip; with another
cache backend (a newcomer's in-memory cache) they fall back to the cache API.
"""

import logging
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from leads.models import ApiKey

logger = logging.getLogger(__name__)
WINDOW_SECONDS = 60


def _redis_client():
    try:
        from django_redis import get_redis_connection

        return get_redis_connection("default")
    except (ImportError, NotImplementedError, AttributeError):
        return None


def window_counts(keys: list[str], *, window_seconds: int) -> list[int | None]:
    """Add one hit to each counter and return the new counts (None where the cache failed)."""
    client = _redis_client() if settings.REDIS_URL else None
    if client is not None:
        try:
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.incr(key)
                pipe.expire(key, window_seconds + 5)
            return pipe.execute()[0::2]
        except Exception:  # Redis down: fail open, better to accept leads than to lose them
            logger.warning("Rate-limit counters unavailable; allowing the request", exc_info=True)
            return [None] * len(keys)
    counts: list[int | None] = []
    for key in keys:
        cache.add(key, 0, timeout=window_seconds + 5)
        try:
            counts.append(cache.incr(key))
        except ValueError:  # evicted between add and incr
            cache.set(key, 1, timeout=window_seconds + 5)
            counts.append(1)
    return counts


class IntakeRateThrottle(BaseThrottle):
    """DJANGO_INTAKE_RATE_PER_KEY per API key and DJANGO_INTAKE_RATE_PER_IP per client IP, per minute."""

    def allow_request(self, request: Request, view) -> bool:
        now = time.time()
        window_start = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        self._wait = max(1.0, window_start + WINDOW_SECONDS - now)
        limits = [
            (
                f"leadops:throttle:intake-ip:{self.get_ident(request)}:{window_start}",
                settings.LEADOPS_INTAKE_RATE_PER_IP,
            )
        ]
        if isinstance(request.auth, ApiKey):
            limits.append(
                (f"leadops:throttle:intake-key:{request.auth.pk}:{window_start}", settings.LEADOPS_INTAKE_RATE_PER_KEY)
            )
        counts = window_counts([key for key, _ in limits], window_seconds=WINDOW_SECONDS)
        return all(count is None or count <= limit for count, (_, limit) in zip(counts, limits, strict=True))

    def wait(self) -> float:
        return self._wait
