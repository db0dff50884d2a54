"""Enqueue Celery work after the surrounding transaction commits, without ever failing the caller.

If the broker is down the message is dropped with a warning; every task enqueued this way has a
beat sweep that finds its unfinished work in the database, so nothing is lost, only delayed.
"""

import logging
import time
from functools import partial

from celery import Task
from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_now(task: Task, *, countdown: float | None = None, **kwargs) -> None:
    """Send at once (outside a transaction, e.g. a sweep re-enqueueing itself); never raises."""
    _send(task, kwargs, countdown=countdown)


def _send(task: Task, kwargs: dict, countdown: float | None = None) -> None:
    try:
        options = {"countdown": countdown} if countdown else {}
        task.apply_async(kwargs=kwargs, retry=False, **options)
    except Exception:  # broker unreachable: the sweep catches up later
        logger.warning("Could not enqueue %s%s; its sweep will pick it up", task.name, kwargs, exc_info=True)


def enqueue_on_commit(task: Task, **kwargs) -> None:
    transaction.on_commit(partial(_send, task, kwargs))


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
