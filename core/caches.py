"""Every per-process cache of the project, in one registry: each module that keeps one registers
its `clear` function here, and `caches_clear_all()` empties them all (tests, after an edit that
must show at once)."""

from collections.abc import Callable

_clearers: dict[str, Callable[[], None]] = {}


def cache_register(name: str, clear: Callable[[], None]) -> None:
    _clearers[name] = clear


def caches_registered() -> list[str]:
    return sorted(_clearers)


def caches_clear_all() -> None:
    for clear in _clearers.values():
        clear()
