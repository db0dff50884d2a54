"""The run behind `lead_import_run_task`: the file in batches, each batch and the job's progress
committed together, so a redelivered task resumes after the last committed batch.

Lock order (leads/locks.py): the ImportJob row (conditional UPDATE), then Lead rows by ascending pk.
"""

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from django.db import IntegrityError, OperationalError, connection, models, transaction
from django.db.models import F
from django.utils import timezone

from leads.imports.files import csv_data_rows, csv_rows_count
from leads.imports.preview import _leads_matching
from leads.imports.rows import ParsedRow, RowReader
from leads.locks import leads_for_update
from leads.models import (
    CLOSED_STAGES,
    Activity,
    ActivityKind,
    Campaign,
    Channel,
    ImportJob,
    ImportRowError,
    ImportStatus,
    IntakeOutcome,
    IntakeSubmission,
    Lead,
    Source,
    StageChange,
    Tag,
)
from leads.services import (
    LeadData,
    campaign_for_submission,
    lead_build_new,  # the unsaved lead a first submission makes: the same values as the API's
    lead_touch_apply,
    touch_build,
)

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
TIME_BUDGET_SECONDS = 40.0  # below CELERY_TASK_SOFT_TIME_LIMIT (60 s); the task re-enqueues itself
_ROW_RETRIES = 5
IMPORT_REASON = "imported"
OUTCOME_REASON = "historical outcome (import)"


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
        self.source = job.source
        self.actor = job.created_by
        self.source_id, self.actor_id = job.source_id, job.created_by_id
        self.campaigns: dict[tuple[str, str], Campaign | None] = {}
        self.default_channel = self.source.channel if self.source else Channel.IMPORT

    def campaign_for(self, data: LeadData) -> Campaign | None:
        if not data.campaign and not data.utm_campaign:
            return self.job.campaign
        key = (data.campaign, data.utm_campaign)
        if key not in self.campaigns:
            self.campaigns[key] = campaign_for_submission(
                name=data.campaign, utm_campaign=data.utm_campaign, source=self.source
            )
        return self.campaigns[key]

    def batch_commit(self, *, offset: int, raw: list[tuple[int, list[str]]]) -> None:
        """Import one batch and move the job's counters, in one transaction.

        A unique violation means a concurrent intake created one of these people after our
        look-up: the batch is rolled back and tried again, and if it collides again (intake keeps
        creating the same people) it goes row by row, each row in a savepoint that is retried
        until its look-up sees the other lead, like `lead_capture` does. Always makes progress."""
        rows = [self.reader.read(number=n, cells=cells) for n, cells in raw if any(c.strip() for c in cells)]
        try:
            with transaction.atomic(durable=True):
                self._counters_move(offset=offset, size=len(raw), counts=self._batch_apply(rows=rows))
            return
        except IntegrityError:
            logger.info("Import %s: unique conflict in the batch at row %s, going row by row", self.job.pk, offset)
        with transaction.atomic(durable=True):
            counts = _Counts()
            for row in rows:
                for attempt in range(_ROW_RETRIES):
                    try:
                        with transaction.atomic():
                            row_counts = self._batch_apply(rows=[row])
                        break
                    except IntegrityError:
                        if attempt == _ROW_RETRIES - 1:
                            raise
                counts.created += row_counts.created
                counts.merged += row_counts.merged
                counts.rejected += row_counts.rejected
            self._counters_move(offset=offset, size=len(raw), counts=counts)

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

    def _batch_apply(self, *, rows: list[ParsedRow]) -> _Counts:
        now = timezone.now()
        counts = _Counts()
        valid = [r for r in rows if r.data is not None]
        rejects = [r for r in rows if r.data is None]
        counts.rejected = len(rejects)
        if rejects:
            ImportRowError.objects.bulk_create(
                [ImportRowError(job=self.job, row_number=r.number, reason=r.reason, values=r.cells) for r in rejects],
                ignore_conflicts=True,
            )
        if not valid:
            return counts

        # One query for the people of this batch who already have a lead; lock those leads.
        emails = {r.email_normalized for r in valid if r.email_normalized}
        phones = {r.data.phone_e164 for r in valid if r.data.phone_e164}
        existing_ids = list(_leads_matching(emails=emails, phones=phones).values_list("pk", flat=True))
        existing = {lead.pk: lead for lead in leads_for_update(lead_ids=existing_ids)} if existing_ids else {}
        by_email: dict[str, Lead] = {}
        by_phone: dict[str, Lead] = {}
        for lead in existing.values():
            if lead.email_normalized:
                by_email[lead.email_normalized] = lead
            if lead.phone_e164:
                by_phone[lead.phone_e164] = lead

        new_leads: list[Lead] = []
        touched_existing: dict[int, set[str]] = {}
        # Rows of the other tables as plain dicts (no model instances: the import's hot loop).
        submissions: list[dict[str, Any]] = []
        activities: list[dict[str, Any]] = []
        stage_changes: list[dict[str, Any]] = []
        submission_payloads: list[dict[str, Any]] = []
        lead_tags: list[tuple[Lead, list[str]]] = []
        for row in valid:
            data = row.data
            occurred_at = data.occurred_at or now
            campaign = self.campaign_for(data)
            channel = data.channel or self.default_channel
            touch = touch_build(
                data=data, occurred_at=occurred_at, channel=channel, source=self.source, campaign=campaign
            )

            # Same precedence as intake (leads.services._lead_add_touch): email first, then phone.
            lead = (by_email.get(row.email_normalized) if row.email_normalized else None) or (
                by_phone.get(data.phone_e164) if data.phone_e164 else None
            )
            created = lead is None
            if created:
                lead = lead_build_new(
                    data=data,
                    email_normalized=row.email_normalized,
                    source=self.source,
                    campaign=campaign,
                    channel=channel,
                    touch=touch,
                    occurred_at=occurred_at,
                )
                new_leads.append(lead)
                stage_changes.append(
                    {
                        "lead_id": lead,
                        "from_stage": "",
                        "to_stage": lead.stage,
                        "changed_at": occurred_at,
                        "changed_by_id": self.actor_id,
                        "reason": IMPORT_REASON,
                    }
                )
                counts.created += 1
            else:
                changed = _lead_apply_touch(
                    lead=lead,
                    data=data,
                    email_normalized=row.email_normalized,
                    source=self.source,
                    campaign=campaign,
                    channel=channel,
                    touch=touch,
                    occurred_at=occurred_at,
                    by_email=by_email,
                    by_phone=by_phone,
                )
                if lead.pk is not None:
                    touched_existing.setdefault(lead.pk, set()).update(changed)
                counts.merged += 1
            if lead.email_normalized:
                by_email.setdefault(lead.email_normalized, lead)
            if lead.phone_e164:
                by_phone.setdefault(lead.phone_e164, lead)
            if (
                row.outcome
                and self._outcome_apply(
                    lead=lead, stage=row.outcome, at=occurred_at, changes=stage_changes, acts=activities
                )
                and lead.pk is not None
            ):
                touched_existing[lead.pk].update(("stage", "stage_changed_at"))
            if data.tags:
                lead_tags.append((lead, data.tags))

            submissions.append(
                {
                    "received_at": now,
                    "source_id": self.source_id,
                    "submitted_by_id": self.actor_id,
                    "payload": row.payload,
                    "lead_id": lead,
                    "outcome": IntakeOutcome.CREATED if created else IntakeOutcome.MERGED,
                    "response_status": 201 if created else 200,
                }
            )
            payload: dict[str, Any] = {"channel": channel, **touch, "import_job_id": self.job.pk, "row": row.number}
            if data.message:
                payload["message"] = data.message
            activities.append(
                {
                    "lead_id": lead,
                    "kind": ActivityKind.IMPORTED,
                    "occurred_at": occurred_at,
                    "actor_id": self.actor_id,
                    "payload": payload,
                }
            )
            submission_payloads.append(payload)  # gets submission_id once the submission has one

        _bulk_insert(Lead, new_leads)
        if touched_existing:
            _leads_update(leads=[existing[pk] for pk in touched_existing], changes=touched_existing, now=now)
            # An outcome closed someone's open lead: give its owner the capacity back now, as
            # lead_stage_change does (the leads are locked already: lead, then rep, the lock order).
            from routing.services import rep_open_leads_sync_for_user

            for owner_id in sorted(
                {existing[pk].owner_id for pk, fields in touched_existing.items() if "stage" in fields} - {None}
            ):
                rep_open_leads_sync_for_user(user_id=owner_id)
        submission_ids = _bulk_insert_rows(IntakeSubmission, submissions)
        for payload, submission_id in zip(submission_payloads, submission_ids, strict=True):
            payload["submission_id"] = submission_id
        _bulk_insert_rows(Activity, activities)
        _bulk_insert_rows(StageChange, stage_changes)
        if lead_tags:
            _tags_add(lead_tags)
        return counts

    def _outcome_apply(self, *, lead: Lead, stage: str, at: datetime, changes: list[dict], acts: list[dict]) -> bool:
        """A historical result: the lead ends in the final stage, recorded like any stage change
        (a StageChange row and a stage_changed activity). A lead already closed keeps its result."""
        if lead.stage == stage or (lead.pk is not None and lead.stage in CLOSED_STAGES):
            return False
        from_stage = lead.stage
        lead.stage, lead.stage_changed_at = stage, at
        changes.append(
            {
                "lead_id": lead,
                "from_stage": from_stage,
                "to_stage": stage,
                "changed_at": at,
                "changed_by_id": self.actor_id,
                "reason": OUTCOME_REASON,
            }
        )
        acts.append(
            {
                "lead_id": lead,
                "kind": ActivityKind.STAGE_CHANGED,
                "occurred_at": at,
                "actor_id": self.actor_id,
                "payload": {"from": from_stage, "to": stage, "reason": OUTCOME_REASON, "import_job_id": self.job.pk},
            }
        )
        return True


def _lead_apply_touch(
    *,
    lead: Lead,
    data: LeadData,
    email_normalized: str,
    source: Source | None,
    campaign: Campaign | None,
    channel: str,
    touch: dict,
    occurred_at: datetime,
    by_email: dict[str, Lead],
    by_phone: dict[str, Lead],
) -> set[str]:
    """In memory, what intake does for a returning person (`leads.services.lead_touch_apply`), plus
    the other contact detail when nobody else holds it. Returns the names of changed fields."""
    changed = lead_touch_apply(
        lead=lead, data=data, source=source, campaign=campaign, channel=channel, touch=touch, occurred_at=occurred_at
    )
    if data.email and not lead.email_normalized and email_normalized not in by_email:
        lead.email, lead.email_normalized = data.email, email_normalized
        changed.update(("email", "email_normalized"))
    elif data.phone_e164 and not lead.phone_e164 and data.phone_e164 not in by_phone:
        lead.phone, lead.phone_e164 = data.phone, data.phone_e164
        changed.update(("phone", "phone_e164"))
    return changed


def _bulk_insert(model: type[models.Model], objs: list[models.Model]) -> None:
    """Insert new rows and set their pks, like bulk_create; on PostgreSQL through COPY (ids taken
    from the table's sequence first), several times faster for wide rows. Values are prepared by
    the model fields exactly as for an INSERT, and the unique constraints apply as for an INSERT
    (a duplicate raises IntegrityError)."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=BATCH_SIZE)
        return
    meta = model._meta
    fields = meta.concrete_fields
    # Per column: the attribute and how to turn it into a COPY value. Plain values go as they are;
    # JSON is serialised with the field's encoder; auto_now(_add) timestamps are filled like save().
    columns = []
    for f in fields:
        if isinstance(f, models.JSONField):
            columns.append((f, partial(_json_text, encoder=f.encoder)))
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            columns.append((f, "pre_save"))
        else:
            columns.append((f, None))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(objs)],
        )
        for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
            obj._prepare_related_fields_for_save(operation_name="bulk_create")
            obj.pk = pk
        names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        table = connection.ops.quote_name(meta.db_table)
        # Through Django's error wrapper, so a unique violation is django.db.IntegrityError as for an INSERT.
        with connection.wrap_database_errors, cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for obj in objs:
                copy.write_row([_copy_value(obj, f, how) for f, how in columns])
    for obj in objs:
        obj._state.adding, obj._state.db = False, connection.alias


def _leads_update(*, leads: list[Lead], changes: dict[int, set[str]], now: datetime) -> None:
    """Write what changed on these (locked) leads. On PostgreSQL: COPY the new values of every
    column that changed on any of them into a temporary table, then one UPDATE … FROM (the other
    columns of a row carry its current values, which the lock keeps current). Elsewhere: one UPDATE
    per lead of only its changed columns."""
    for lead in leads:
        lead.updated_at = now
    if connection.vendor != "postgresql":
        for lead in leads:
            values = {name: getattr(lead, name) for name in changes[lead.pk]}
            Lead.objects.filter(pk=lead.pk).update(updated_at=now, **values)
        return
    fields = [Lead._meta.get_field(name) for name in sorted(set().union(*changes.values()) | {"updated_at"})]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    table = quote(Lead._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS lead_import_update")
        cursor.execute(
            "CREATE TEMPORARY TABLE lead_import_update ON COMMIT DROP AS "
            f"SELECT id, {columns} FROM {table} WITH NO DATA"
        )
        converters = [
            partial(_json_text, encoder=f.encoder) if isinstance(f, models.JSONField) else None for f in fields
        ]
        with (
            connection.wrap_database_errors,
            cursor.cursor.copy(f"COPY lead_import_update (id, {columns}) FROM STDIN") as copy,
        ):
            for lead in leads:
                row = [lead.pk]
                for f, convert in zip(fields, converters, strict=True):
                    value = getattr(lead, f.attname)
                    row.append(convert(value) if convert else value)
                copy.write_row(row)
        assignments = ", ".join(f"{quote(f.column)} = u.{quote(f.column)}" for f in fields)
        cursor.execute(f"UPDATE {table} AS l SET {assignments} FROM lead_import_update AS u WHERE l.id = u.id")


def _bulk_insert_rows(model: type[models.Model], rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows given as {attname: value} without building model instances (the import's
    activities, submissions and stage changes); a model instance as a value stands for its pk (a
    lead inserted just before); columns not given take the field's default. Returns the new ids."""
    if not rows:
        return []
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    if connection.vendor != "postgresql":
        objs = [model(**{k: _pk_of(v) for k, v in row.items()}) for row in rows]
        return [obj.pk for obj in model.objects.bulk_create(objs, batch_size=BATCH_SIZE)]
    defaults = {f.attname: f.get_default() for f in fields}
    json_columns = {
        f.attname: partial(_json_text, encoder=f.encoder) for f in fields if isinstance(f, models.JSONField)
    }
    meta = model._meta
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(rows)],
        )
        ids = [pk for (pk,) in cursor.fetchall()]
        names = ", ".join(connection.ops.quote_name(f.column) for f in [meta.pk, *fields])
        table = connection.ops.quote_name(meta.db_table)
        with connection.wrap_database_errors, cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for pk, row in zip(ids, rows, strict=True):
                values = [pk]
                for f in fields:
                    value = _pk_of(row[f.attname]) if f.attname in row else defaults[f.attname]
                    convert = json_columns.get(f.attname)
                    values.append(convert(value) if convert else value)
                copy.write_row(values)
    return ids


def _pk_of(value: Any) -> Any:
    return value.pk if isinstance(value, models.Model) else value


def _json_text(value: Any, *, encoder: type[json.JSONEncoder] | None) -> str | None:
    return None if value is None else json.dumps(value, cls=encoder)


def _copy_value(obj: models.Model, f: models.Field, how: Any) -> Any:
    if how is None:
        return getattr(obj, f.attname)
    if how == "pre_save":
        return f.pre_save(obj, True)
    return how(getattr(obj, f.attname))


def _tags_add(lead_tags: list[tuple[Lead, list[str]]]) -> None:
    names = sorted({name.strip() for _, tags in lead_tags for name in tags if name.strip()})
    Tag.objects.bulk_create([Tag(name=name) for name in names], ignore_conflicts=True)
    tag_ids = dict(Tag.objects.filter(name__in=names).values_list("name", "pk"))
    through = Lead.tags.through
    links = {(lead.pk, tag_ids[name.strip()]) for lead, tags in lead_tags for name in tags if name.strip()}
    through.objects.bulk_create(
        [through(lead_id=lead_id, tag_id=tag_id) for lead_id, tag_id in sorted(links)], ignore_conflicts=True
    )


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
