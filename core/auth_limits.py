"""Limits on guessing credentials: failed sign-ins and failed API keys are counted per client
address (and per username for sign-ins) in the shared cache (Redis in production, so every
process sees the same counts). Once a counter reaches its limit, every attempt it covers is
refused with 429 and `Retry-After` until its window ends, before any password or key is checked.

Windows are fixed (aligned to the clock, DJANGO_AUTH_FAILURE_WINDOW_SECONDS long). A cache outage
fails open, like the intake rate limits: sign-in keeps working without limits.
"""

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger("leadops.security")


@dataclass(frozen=True)
class FailureCounter:
    scope: str  # "login-ip", "login-username", "api-key-ip"
    ident: str
    limit: int

    def key(self, window_start: int) -> str:
        # Hashed: a username can be any text, and the cache key should not hold it in clear.
        digest = hashlib.sha256(self.ident.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"leadops:authfail:{self.scope}:{digest}:{window_start}"


def client_address(request: HttpRequest) -> str:
    """The client's address as the API throttles see it (X-Forwarded-For past DJANGO_NUM_PROXIES)."""
    return BaseThrottle().get_ident(request)


def _window() -> tuple[int, int, float]:
    seconds = settings.LEADOPS_AUTH_FAILURE_WINDOW_SECONDS
    now = time.time()
    start = int(now // seconds) * seconds
    return start, seconds, start + seconds - now


def auth_failures_retry_after(counters: list[FailureCounter]) -> int | None:
    """Seconds until these counters' window ends if any of them has reached its limit, else None."""
    start, _, left = _window()
    try:
        counts = cache.get_many([counter.key(start) for counter in counters])
    except Exception:
        logger.warning("Failed-authentication counters unavailable; not limiting", exc_info=True)
        return None
    if any((counts.get(counter.key(start)) or 0) >= counter.limit for counter in counters):
        return max(1, math.ceil(left))
    return None


def auth_failure_record(counters: list[FailureCounter]) -> None:
    """Count one failed attempt against each counter; log the attempt that reaches a limit."""
    start, seconds, _ = _window()
    for counter in counters:
        key = counter.key(start)
        try:
            cache.add(key, 0, timeout=seconds + 5)
            try:
                count = cache.incr(key)
            except ValueError:  # expired or evicted between add and incr
                cache.set(key, 1, timeout=seconds + 5)
                count = 1
        except Exception:
            logger.warning("Failed-authentication counters unavailable; not limiting", exc_info=True)
            continue
        if count == counter.limit:
            logger.warning(
                "Too many failed authentications (%s %s: %d in %ds); refusing until the window ends",
                counter.scope,
                counter.ident,
                count,
                seconds,
            )


def auth_failures_forget(counters: list[FailureCounter]) -> None:
    start, _, _ = _window()
    try:
        cache.delete_many([counter.key(start) for counter in counters])
    except Exception:
        logger.warning("Failed-authentication counters unavailable", exc_info=True)


def login_counters(request: HttpRequest, *, username: str) -> list[FailureCounter]:
    counters = [FailureCounter("login-ip", client_address(request), settings.LEADOPS_LOGIN_FAILURES_PER_IP)]
    if username:
        counters.append(
            FailureCounter("login-username", username.strip().lower(), settings.LEADOPS_LOGIN_FAILURES_PER_USERNAME)
        )
    return counters


def api_key_counters(request: HttpRequest) -> list[FailureCounter]:
    return [FailureCounter("api-key-ip", client_address(request), settings.LEADOPS_API_KEY_FAILURES_PER_IP)]
