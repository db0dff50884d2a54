"""Fixed-window rate limits for public endpoints, counted atomically in the shared cache (Redis)."""

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from leads.models import ApiKey


class FixedWindowThrottle(BaseThrottle):
    scope = ""
    window_seconds = 60

    def rate(self) -> int:
        raise NotImplementedError

    def ident(self, request: Request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view) -> bool:
        ident = self.ident(request)
        if ident is None:
            return True
        now = time.time()
        window_start = int(now // self.window_seconds) * self.window_seconds
        self._wait = max(1.0, window_start + self.window_seconds - now)
        key = f"throttle:{self.scope}:{ident}:{window_start}"
        cache.add(key, 0, timeout=self.window_seconds + 5)
        try:
            count = cache.incr(key)
        except ValueError:  # evicted between add and incr
            cache.set(key, 1, timeout=self.window_seconds + 5)
            count = 1
        # A cache outage (count is None) fails open: better to accept leads than to lose them.
        return count is None or count <= self.rate()

    def wait(self) -> float:
        return self._wait


class IntakeKeyThrottle(FixedWindowThrottle):
    scope = "intake-key"

    def rate(self) -> int:
        return settings.LEADOPS_INTAKE_RATE_PER_KEY

    def ident(self, request: Request) -> str | None:
        return str(request.auth.pk) if isinstance(request.auth, ApiKey) else None


class IntakeIpThrottle(FixedWindowThrottle):
    scope = "intake-ip"

    def rate(self) -> int:
        return settings.LEADOPS_INTAKE_RATE_PER_IP

    def ident(self, request: Request) -> str | None:
        return self.get_ident(request)
