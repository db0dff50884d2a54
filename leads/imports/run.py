"""The run behind `lead_import_run_task`: the file in batches of `BATCH_SIZE` rows.

Each batch is one durable transaction that
- stores every accepted row through the capture use case, `lead_store` (the intake API's code
  path: the person's lead found and locked, or inserted; the intake log; the capture steps),
  with routing's assignment skipped: imported leads are not routed;
- applies the rows' historical outcomes;
- records the rejected rows (a row the database refuses is rolled back to its savepoint and
  rejected with the reason; the batch goes on);
- moves the job's counters, only from the offset this run read.

So a killed worker leaves the whole batch or none of it, a redelivered task resumes after the
last committed batch, and a second runner of the same job finds the counter moved and rolls its
batch back: no row is imported twice. A run works for `TIME_BUDGET_SECONDS` and then re-enqueues
itself, so no task comes near the Celery time limits whatever the file size.

Lock order (leads/locks.py): the batch's existing leads by ascending pk first, then whatever the
captures and stage changes lock after them (new leads, a rep whose lead closed), then the
ImportJob row (the conditional UPDATE at the end).
"""

import logging
import time
from dataclasses import dataclass

from django.db import DataError, IntegrityError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from core.exceptions import ApplicationError
from leads.imports.files import csv_data_rows, csv_rows_count, row_is_blank
from leads.imports.preview import leads_matching_contacts
from leads.imports.rows import ParsedRow, RowReader
from leads.intake_data import IntakeContext
from leads.locks import leads_for_update
from leads.models import (
    ActivityKind,
    Channel,
    ImportJob,
    ImportRowError,
    ImportStatus,
)
from leads.services import intake_caches_clear, lead_stage_change, lead_store

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
TIME_BUDGET_SECONDS = 40.0  # below CELERY_TASK_SOFT_TIME_LIMIT (60 s); the task re-enqueues itself
OUTCOME_REASON = "historical outcome (import)"
# Capture steps an import skips (LEADOPS_CAPTURE_STEPS names): historical rows are not routed.
SKIPPED_CAPTURE_STEPS = frozenset({"routing.assign"})


class _Superseded(Exception):
    """The job moved on under us: cancelled, or another runner committed this batch first."""


@dataclass
class _Counts:
    created: int = 0
    merged: int = 0
    rejected: int = 0


class _ImportRun:
    def __init__(self, job: ImportJob):
        self.job = job
        self.reader = RowReader(headers=job.headers, mapping=job.mapping)

    def batch_commit(self, *, offset: int, raw: list[tuple[int, list[str]]]) -> None:
        """Import one batch and move the job's counters, in one transaction.

        A foreign key is checked at commit: if a campaign this process had cached was deleted
        meanwhile, the commit fails, and the batch (rolled back whole) is stored again once."""
        rows = [self.reader.read(number=n, cells=cells) for n, cells in raw if not row_is_blank(cells)]
        try:
            self._batch_store(offset=offset, size=len(raw), rows=rows)
        except IntegrityError:
            logger.info("Import %s: the batch at row %s failed at commit; storing it again", self.job.pk, offset)
            intake_caches_clear()
            self._batch_store(offset=offset, size=len(raw), rows=rows)

    @transaction.atomic(durable=True)
    def _batch_store(self, *, offset: int, size: int, rows: list[ParsedRow]) -> None:
        # The people of this batch who already have a lead, locked in one query by ascending pk
        # (the app-wide lock order) before each capture locks its own again, in file order.
        emails = {r.email_normalized for r in rows if r.data and r.email_normalized}
        phones = {r.data.phone_e164 for r in rows if r.data and r.data.phone_e164}
        if emails or phones:
            existing = leads_matching_contacts(emails=emails, phones=phones).values_list("pk", flat=True)
            list(leads_for_update(lead_ids=list(existing)).values_list("pk", flat=True))
        counts = _Counts()
        rejects: list[ImportRowError] = []
        for row in rows:
            reason = row.reason if row.data is None else self._row_store(row=row, counts=counts)
            if reason:
                rejects.append(ImportRowError(job=self.job, row_number=row.number, reason=reason, values=row.cells))
        _rejects_store(rejects)
        counts.rejected = len(rejects)
        self._counters_move(offset=offset, size=size, counts=counts)

    def _row_store(self, *, row: ParsedRow, counts: _Counts) -> str:
        """Store one accepted row in a savepoint; the reason it was refused, or "" when stored."""
        data = row.data
        job = self.job
        if not data.campaign and not data.utm_campaign and job.campaign is not None:
            data.campaign = job.campaign.name  # the campaign chosen for the whole file
        if not data.channel and job.source is None:
            data.channel = Channel.IMPORT
        context = IntakeContext(
            raw_payload=row.payload,
            source=job.source,
            submitted_by=job.created_by,
            activity_kind=ActivityKind.IMPORTED,
            log_details={"import_job_id": job.pk, "row": row.number},
            first_stage_reason="imported",
            skip_steps=SKIPPED_CAPTURE_STEPS,
        )
        try:
            with transaction.atomic():
                result = lead_store(data=data, context=context)
                if row.outcome:
                    lead_stage_change(
                        lead_id=result.lead.pk,
                        to_stage=row.outcome,
                        actor=job.created_by,
                        reason=OUTCOME_REASON,
                        at=data.occurred_at or timezone.now(),
                        recorded_outcome=True,
                    )
        except ApplicationError as exc:
            return f"{exc.field}: {exc.message}" if exc.field else exc.message
        except (IntegrityError, DataError) as exc:
            logger.info("Import %s: row %s refused by the database: %s", job.pk, row.number, exc)
            return f"not stored: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
        if result.created:
            counts.created += 1
        else:
            counts.merged += 1
        return ""

    def _counters_move(self, *, offset: int, size: int, counts: _Counts) -> None:
        """Progress, in the batch's transaction; only from the offset this run read (idempotency)."""
        moved = ImportJob.objects.filter(
            pk=self.job.pk, status=ImportStatus.RUNNING, processed_rows=offset, cancel_requested=False
        ).update(
            processed_rows=F("processed_rows") + size,
            created_count=F("created_count") + counts.created,
            merged_count=F("merged_count") + counts.merged,
            rejected_count=F("rejected_count") + counts.rejected,
            updated_at=timezone.now(),
        )
        if not moved:
            raise _Superseded


def _rejects_store(rejects: list[ImportRowError]) -> None:
    """Record the batch's rejected rows. If the database refuses the insert, each row is stored on
    its own, and one it still refuses is kept with its reason and without its cells: a rejected
    row never fails the batch, let alone the job."""
    try:
        with transaction.atomic():
            ImportRowError.objects.bulk_create(rejects, ignore_conflicts=True)
        return
    except (DataError, IntegrityError) as exc:
        logger.info("Import: the rejected rows of a batch were refused together (%s); storing them one by one", exc)
    for reject in rejects:
        try:
            with transaction.atomic():
                ImportRowError.objects.bulk_create([reject], ignore_conflicts=True)
        except (DataError, IntegrityError):
            reject.values = []
            reject.reason = reject.reason.replace("\x00", "\ufffd") + " (the row's cells could not be kept)"
            with transaction.atomic():
                ImportRowError.objects.bulk_create([reject], ignore_conflicts=True)


def _job_finish(*, job_id: int, status: str, error: str = "") -> None:
    now = timezone.now()
    ImportJob.objects.filter(pk=job_id, status__in=(ImportStatus.QUEUED, ImportStatus.RUNNING)).update(
        status=status, error=error, finished_at=now, updated_at=now
    )


def import_run(*, job_id: int, time_budget: float = TIME_BUDGET_SECONDS, batch_size: int = BATCH_SIZE) -> bool:
    """Run (or resume) an import for at most `time_budget` seconds. Returns True when rows remain,
    so the caller re-enqueues. Idempotent: a finished, cancelled or unknown job is a no-op."""
    ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.RUNNING, started_at=timezone.now(), updated_at=timezone.now()
    )
    job = ImportJob.objects.select_related("source", "campaign", "created_by").filter(pk=job_id).first()
    if job is None or job.status != ImportStatus.RUNNING:
        return False
    if job.cancel_requested:
        _job_finish(job_id=job_id, status=ImportStatus.CANCELLED)
        return False
    try:
        if job.total_rows is None:
            job.total_rows = csv_rows_count(job)
            ImportJob.objects.filter(pk=job_id).update(total_rows=job.total_rows)
        run = _ImportRun(job)
        deadline = time.monotonic() + time_budget
        offset = job.processed_rows
        with csv_data_rows(job) as reader:
            for _ in range(offset):  # resume after the last committed batch
                next(reader, None)
            batch: list[tuple[int, list[str]]] = []
            for number, cells in enumerate(reader, start=offset + 1):
                batch.append((number, cells))
                if len(batch) < batch_size:
                    continue
                run.batch_commit(offset=offset, raw=batch)
                offset += len(batch)
                batch = []
                if time.monotonic() > deadline:
                    return not _stopped_if_cancelled(job_id)
            if batch:
                run.batch_commit(offset=offset, raw=batch)
    except _Superseded:
        _stopped_if_cancelled(job_id)
        return False
    except OperationalError:
        raise  # transient: the task retries and resumes after the last committed batch
    except Exception as exc:
        logger.exception("Import %s failed", job_id)
        _job_finish(job_id=job_id, status=ImportStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000])
        return False
    _job_finish(job_id=job_id, status=ImportStatus.COMPLETED)
    return False


def _stopped_if_cancelled(job_id: int) -> bool:
    if ImportJob.objects.filter(pk=job_id, cancel_requested=True).exists():
        _job_finish(job_id=job_id, status=ImportStatus.CANCELLED)
        return True
    return False
