"""Fixed-window rate limits for the public intake endpoint, counted atomically in Redis.

Both limits (per API key and per client IP) are counted in Redis, so every process shares them.
A key that sends many requests does not pay a Redis round trip for each: the process reserves a
small block of hits at once (`INCRBY`) and spends it locally (a lease). Leases never let more
than the limit through in a window: a hit only passes once Redis has counted it. They start at
one hit, double while the key stays busy, are capped at `LEASE_MAX`, and shrink to one hit as
the window's count nears the limit, so near the limit counting is exact and hits reserved but
not spent (at most a sixteenth of what was left, per process) cost a busy key at most that much
of its limit. With another cache backend (a newcomer's in-memory cache) every hit goes to the
cache API.
"""

import logging
import threading
import time
from dataclasses import dataclass
from functools import cache as memoize

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core.caches import cache_register
from leads.models import ApiKey

logger = logging.getLogger(__name__)
WINDOW_SECONDS = 60
LEASE_MAX = 64
# A lease takes at most this fraction of what is left of the limit in the window.
LEASE_SHARE_OF_REST = 16


@memoize
def _redis_client():
    """The client of the default cache's Redis (None: the cache is not Redis)."""
    try:
        from django_redis import get_redis_connection

        return get_redis_connection("default")
    except (ImportError, NotImplementedError, AttributeError):
        return None


@dataclass
class _Lease:
    window_start: int
    left: int = 0  # reserved hits not spent yet
    counted: int = 0  # the window's count in Redis after this process's last reservation
    next_size: int = 1


# Counter key -> this process's lease on it in the current window. The lock keeps threads of one
# process (threaded servers) from spending the same reserved hit twice.
_leases: dict[str, _Lease] = {}
_LEASES_MAX = 10_000
_leases_lock = threading.Lock()


def throttle_leases_clear() -> None:
    _leases.clear()


cache_register("leads.throttle_leases", throttle_leases_clear)


def window_allow(limits: list[tuple[str, int]], *, window_start: int, window_seconds: int) -> bool:
    """Count one hit against each (counter key, limit) of the window starting at `window_start`;
    True if every counter is within its limit (or its store failed: fail open)."""
    if not settings.REDIS_URL or _redis_client() is None:
        counts = window_counts([key for key, _ in limits], window_seconds=window_seconds)
        return all(count is None or count <= limit for count, (_, limit) in zip(counts, limits, strict=True))
    to_reserve = []
    with _leases_lock:
        for key, limit in limits:
            lease = _leases.get(key)
            if lease is None or lease.window_start != window_start:
                if len(_leases) >= _LEASES_MAX:
                    _leases.clear()
                lease = _leases[key] = _Lease(window_start=window_start)
            if lease.left > 0:
                lease.left -= 1
            else:
                size = max(1, min(lease.next_size, LEASE_MAX, (limit - lease.counted) // LEASE_SHARE_OF_REST))
                to_reserve.append((key, lease, limit, size))
    if not to_reserve:
        return True
    try:
        pipe = _redis_client().pipeline(transaction=False)
        for key, _, _, size in to_reserve:
            pipe.incrby(key, size)
            pipe.expire(key, window_seconds + 5)
        totals = pipe.execute()[0::2]
    except Exception:  # Redis down: fail open, better to accept leads than to lose them
        logger.warning("Rate-limit counters unavailable; allowing the request", exc_info=True)
        return True
    allowed = True
    with _leases_lock:
        for (_, lease, limit, size), total in zip(to_reserve, totals, strict=True):
            granted = max(0, min(size, limit - (total - size)))  # the part of the block within the limit
            lease.counted = max(lease.counted, total)
            lease.next_size = size * 2
            if granted == 0:
                allowed = False
            else:
                lease.left += granted - 1  # one hit is this request's
    return allowed


def window_counts(keys: list[str], *, window_seconds: int) -> list[int | None]:
    """Add one hit to each counter of the cache API and return the new counts (None where the
    cache failed)."""
    counts: list[int | None] = []
    for key in keys:
        try:
            cache.add(key, 0, timeout=window_seconds + 5)
            try:
                counts.append(cache.incr(key))
            except ValueError:  # evicted between add and incr
                cache.set(key, 1, timeout=window_seconds + 5)
                counts.append(1)
        except Exception:
            logger.warning("Rate-limit counters unavailable; allowing the request", exc_info=True)
            counts.append(None)
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
        return window_allow(limits, window_start=window_start, window_seconds=WINDOW_SECONDS)

    def wait(self) -> float:
        return self._wait
