"""Enqueue Celery work after the surrounding transaction commits, without ever failing the caller.

If the broker is down the message is dropped with a warning; every task enqueued this way has a
beat sweep that finds its unfinished work in the database, so nothing is lost, only delayed.
"""

import logging
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
