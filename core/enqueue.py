"""Enqueue Celery work after the surrounding transaction commits, without ever failing or slowing
the caller.

Every task enqueued this way has its work recorded in the database and a beat sweep that finds
what is unfinished (CELERY_BEAT_SCHEDULE), so a message is only a wake-up: if the broker is down it
is dropped with a warning, and nothing is lost, only delayed until the sweep runs.

A send is bounded and guarded, so a request never waits on a broker that is down:
- the broker connection of these sends connects once, with no retries, and gives up after
  SEND_TIMEOUT_SECONDS (Celery's own publish retries for broker_connection_timeout, 2 s here);
- a circuit breaker: after a failed send, this process sends nothing for BREAKER_OPEN_SECONDS,
  then the next send tries again (and closes the breaker if it goes through).
"""

import logging
import os
import threading
import time
from functools import partial

from celery import Task
from django.db import transaction
from kombu.pools import ProducerPool

logger = logging.getLogger(__name__)

# A broker on the local network answers in well under a millisecond; this is the most a request
# pays for one send when the broker is unreachable (connect refused answers at once; a host that
# drops packets costs the whole timeout), once per BREAKER_OPEN_SECONDS and process.
SEND_TIMEOUT_SECONDS = 0.25
BREAKER_OPEN_SECONDS = 30.0
POOL_LIMIT = 10

_lock = threading.Lock()
_breaker_open_until = 0.0  # time.monotonic() before which this process does not try the broker
_pools: dict[tuple[int, str], ProducerPool] = {}  # (pid, broker URL): a forked child builds its own


def enqueue_now(task: Task, *, countdown: float | None = None, **kwargs) -> None:
    """Send at once (outside a transaction, e.g. a sweep re-enqueueing itself); never raises."""
    _send(task, kwargs, countdown=countdown)


def enqueue_on_commit(task: Task, **kwargs) -> None:
    transaction.on_commit(partial(_send, task, kwargs))


def breaker_is_open() -> bool:
    return time.monotonic() < _breaker_open_until


def breaker_reset() -> None:
    """Close the breaker (tests; a process that knows the broker is back)."""
    global _breaker_open_until
    _breaker_open_until = 0.0


def _send(task: Task, kwargs: dict, countdown: float | None = None) -> bool:
    """Publish `task`; True when the broker took it. Never raises, never waits past the timeout."""
    global _breaker_open_until
    if breaker_is_open():
        logger.debug("Broker marked down: %s%s not sent; its sweep will pick it up", task.name, kwargs)
        return False
    options = {"countdown": countdown} if countdown else {}
    try:
        with _producers(task).acquire(block=True, timeout=SEND_TIMEOUT_SECONDS) as producer:
            task.apply_async(kwargs=kwargs, retry=False, producer=producer, **options)
    except Exception:  # broker unreachable or slow: the sweep catches up later
        _breaker_open_until = time.monotonic() + BREAKER_OPEN_SECONDS
        logger.warning(
            "Could not enqueue %s%s; not trying the broker for %g s; its sweep will pick it up",
            task.name,
            kwargs,
            BREAKER_OPEN_SECONDS,
            exc_info=True,
        )
        return False
    return True


def _producers(task: Task) -> ProducerPool:
    """This process's producers for the app's broker, on connections with bounded timeouts."""
    app = task.app
    url = app.conf.broker_write_url or app.conf.broker_url
    key = (os.getpid(), url)
    pool = _pools.get(key)
    if pool is None:
        with _lock:
            pool = _pools.get(key)
            if pool is None:
                connection = app.connection_for_write(
                    url,
                    connect_timeout=SEND_TIMEOUT_SECONDS,
                    transport_options={
                        "max_retries": 0,  # one connection attempt, no retry loop inside a request
                        "socket_connect_timeout": SEND_TIMEOUT_SECONDS,
                        "socket_timeout": SEND_TIMEOUT_SECONDS,
                    },
                )
                pool = _pools[key] = ProducerPool(
                    connection.Pool(limit=POOL_LIMIT), limit=POOL_LIMIT, Producer=app.amqp.Producer
                )
    return pool


# Work that a run handles in bulk (everything pending) is requested at most once per window per
# process: a message per lead cost ~1 ms of an intake's CPU.
_batched_requested_at: dict[str, float] = {}


def enqueue_batched_on_commit(task: Task, *, window_seconds: float) -> None:
    """After commit, ask for a run of `task` (a task that handles everything pending) unless this
    process asked within the last `window_seconds`. The run is delayed by the window, so it starts
    after every commit of this process that skipped asking, and sees its rows. 0: a run each time."""
    transaction.on_commit(partial(_send_batched, task, window_seconds))


def _send_batched(task: Task, window_seconds: float) -> None:
    now = time.monotonic()
    if window_seconds and now - _batched_requested_at.get(task.name, float("-inf")) < window_seconds:
        return
    _batched_requested_at[task.name] = now
    _send(task, {}, countdown=window_seconds)
