"""An import's life before and around its run: read it, start it (mapping fixed and remembered
for the source, the run queued after commit), cancel it."""

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from core.enqueue import enqueue_on_commit
from core.exceptions import NotFound
from leads.imports.errors import InvalidImport
from leads.imports.mapping import import_mapping_validate
from leads.models import Campaign, ImportJob, ImportStatus, Source


def import_job_list() -> QuerySet[ImportJob]:
    return ImportJob.objects.select_related("source", "campaign", "created_by")


def import_job_get(*, job_id: int) -> ImportJob:
    job = import_job_list().filter(pk=job_id).first()
    if job is None:
        raise NotFound("No import with this id.")
    return job


@transaction.atomic(durable=True)
def import_start(
    *, job_id: int, mapping: dict[str, str], source: Source, campaign: Campaign | None = None
) -> ImportJob:
    """Fix the mapping, remember it for the source, queue the run (after commit)."""
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        raise NotFound("No import with this id.")
    mapping = import_mapping_validate(headers=job.headers, mapping=mapping)
    started = ImportJob.objects.filter(pk=job_id, status=ImportStatus.DRAFT).update(
        mapping=mapping, source=source, campaign=campaign, status=ImportStatus.QUEUED, updated_at=timezone.now()
    )
    if not started:
        raise InvalidImport("This import has already been started.")
    Source.objects.filter(pk=source.pk).update(import_mapping={**source.import_mapping, **mapping})
    from leads.tasks import lead_import_run_task

    enqueue_on_commit(lead_import_run_task, job_id=job_id)
    job.refresh_from_db()
    return job


def imports_cancel(*, job_ids: list[int]) -> int:
    """Jobs not yet running are cancelled at once; running ones stop after their current batch;
    finished ones stay as they are. Returns how many were cancelled or asked to stop."""
    now = timezone.now()
    waiting = ImportJob.objects.filter(pk__in=job_ids, status__in=(ImportStatus.DRAFT, ImportStatus.QUEUED))
    running = ImportJob.objects.filter(pk__in=job_ids, status=ImportStatus.RUNNING, cancel_requested=False)
    return waiting.update(
        status=ImportStatus.CANCELLED, cancel_requested=True, finished_at=now, updated_at=now
    ) + running.update(cancel_requested=True, updated_at=now)


def import_cancel(*, job_id: int) -> ImportJob:
    """`imports_cancel` of one job, which is returned as it is now."""
    imports_cancel(job_ids=[job_id])
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        raise NotFound("No import with this id.")
    return job
