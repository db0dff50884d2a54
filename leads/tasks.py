from celery import shared_task
from django.db import OperationalError


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def lead_enrichment_run_task(*, batch_size: int = 200) -> int:
    """Enriches every lead not enriched yet; requested by intake (batched) and by beat (safety net)."""
    from core.enqueue import enqueue_now
    from leads.services import lead_enrichment_run

    run = lead_enrichment_run(batch_size=batch_size)
    if run.more:  # time budget used up, or leads arrived while the lock was held: go on at once
        enqueue_now(lead_enrichment_run_task, batch_size=batch_size)
    return run.handled


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def lead_import_run_task(*, job_id: int) -> None:
    """Runs a CSV import for a bounded time, then re-enqueues itself while rows remain."""
    from leads.imports import import_run

    if import_run(job_id=job_id):
        lead_import_run_task.apply_async(kwargs={"job_id": job_id})


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def intake_log_purge_task() -> int:
    """Hourly (beat): deletes the raw payloads of intake submissions past their retention."""
    from leads.services import intake_log_purge

    return intake_log_purge()


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def import_files_purge_task() -> int:
    """Hourly (beat): deletes the files and rejected rows of imports past their retention."""
    from leads.imports import import_files_purge

    return import_files_purge()
