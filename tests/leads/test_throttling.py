"""Intake rate limits shared by processes through Redis, with leases for busy keys."""

import pytest
from django_redis import get_redis_connection

from leads.api import throttling
from leads.api.throttling import window_allow
from tests.conftest import requires_redis

pytestmark = requires_redis

WINDOW = 1_000_020  # a window start of their own, far from the clock's


class _Process:
    """One process's leases (each gunicorn worker has its own)."""

    def __init__(self):
        self.leases = {}

    def allow(self, monkeypatch, key: str, limit: int) -> bool:
        monkeypatch.setattr(throttling, "_leases", self.leases)
        return window_allow([(key, limit)], window_start=WINDOW, window_seconds=60)


@pytest.fixture
def key():
    name = "leadops:throttle:test-lease"
    get_redis_connection("default").delete(name)
    yield name
    get_redis_connection("default").delete(name)


@pytest.mark.parametrize("limit", [3, 100, 1000])
def test_processes_sharing_a_busy_key_never_pass_more_than_its_limit_and_little_less(monkeypatch, key, limit):
    # given three worker processes taking turns
    workers = [_Process() for _ in range(3)]
    # when a client sends three times its limit
    passed = sum(workers[n % 3].allow(monkeypatch, key, limit) for n in range(3 * limit))
    # then never more than the limit, and reserved-but-unspent hits cost at most a sixteenth of it
    assert limit - limit // 16 <= passed <= limit


def test_a_busy_key_reaches_redis_for_few_of_its_hits(monkeypatch, key):
    # given
    process, round_trips = _Process(), []
    client = get_redis_connection("default")

    class CountingClient:
        def pipeline(self, **kwargs):
            round_trips.append(1)
            return client.pipeline(**kwargs)

    monkeypatch.setattr(throttling, "_redis_client", CountingClient)
    # when
    passed = sum(process.allow(monkeypatch, key, 10_000) for _ in range(1000))
    # then every hit passed and Redis counted each of them, but in blocks, not one by one
    counted = int(client.get(key))
    assert passed == 1000
    assert 1000 <= counted <= 1000 + throttling.LEASE_MAX
    assert len(round_trips) <= 1000 // throttling.LEASE_MAX + 8


def test_a_key_over_its_limit_in_another_process_is_refused_at_once(monkeypatch, key):
    # given one process spent the limit
    first, second = _Process(), _Process()
    assert all(first.allow(monkeypatch, key, 5) for _ in range(5))
    # then another process gets no hit from it
    assert not second.allow(monkeypatch, key, 5)


def test_threads_of_one_process_never_spend_a_reserved_hit_twice(key):
    # given: a threaded server's process, eight requests at a time on one key
    import threading

    throttling.throttle_leases_clear()
    passed, barrier = [], threading.Barrier(8)

    def client():
        barrier.wait()
        passed.extend(window_allow([(key, 200)], window_start=WINDOW, window_seconds=60) for _ in range(50))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then: 400 hits, never more than the limit through
    assert len(passed) == 400
    assert 200 - 200 // 16 <= sum(passed) <= 200
