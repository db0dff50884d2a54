from celery import shared_task
from django.db import OperationalError


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def lead_enrich_task(*, lead_id: int) -> None:
    from leads.services import lead_enrich

    lead_enrich(lead_id=lead_id)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def lead_enrichment_sweep_task(*, batch_size: int = 200) -> int:
    from leads.services import lead_enrichment_sweep

    handled = lead_enrichment_sweep(batch_size=batch_size)
    if handled == batch_size:  # more may remain: keep going without waiting for the next beat
        lead_enrichment_sweep_task.apply_async(kwargs={"batch_size": batch_size})
    return handled


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def lead_import_run_task(*, job_id: int) -> None:
    """Runs a CSV import for a bounded time, then re-enqueues itself while rows remain."""
    from leads.imports import import_run

    if import_run(job_id=job_id):
        lead_import_run_task.apply_async(kwargs={"job_id": job_id})
