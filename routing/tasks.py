from celery import shared_task
from django.db import OperationalError


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def assignment_notifications_run_task(*, batch_size: int = 200) -> int:
    """Tells new owners about their leads; requested after routing commits (batched) and by beat."""
    from core.enqueue import enqueue_now
    from routing.services.reps import assignment_notifications_send

    handled = assignment_notifications_send(batch_size=batch_size)
    if handled == batch_size:
        enqueue_now(assignment_notifications_run_task, batch_size=batch_size)
    return handled


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def rep_open_leads_sweep_task() -> int:
    """Beat job: give back the capacity of leads that were closed (won, lost, disqualified)."""
    from routing.services import rep_open_leads_sweep

    return rep_open_leads_sweep()


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def sla_sweep_task() -> int:
    """Beat job (every DJANGO_SLA_SWEEP_SECONDS): one batch of the SLA ladder; again at once while a
    whole batch was found. Idempotent: every step is guarded by the clock's row lock and state."""
    from routing.services.sla import sla_sweep

    result = sla_sweep()
    if result.full:
        from core.enqueue import enqueue_now

        enqueue_now(sla_sweep_task)
    return result.found
