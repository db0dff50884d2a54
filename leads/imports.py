"""CSV import of leads: upload, column mapping, preview, and the batch run behind `lead_import_run_task`.

The same rules as the intake API, applied in batches for speed:
- each row becomes an intake payload and is validated by `IntakeInputSerializer` and normalised by
  `lead_data_normalize` (one set of rules: leads/api/intake.py, leads/services.py);
- de-duplication is the API's: a row matches the lead with the same normalised email, else the same
  E.164 phone (earlier rows of the same file included); a match adds a touch like `_lead_add_touch`;
- per batch of `BATCH_SIZE` rows: one query finds existing leads, new leads are bulk-inserted and
  the unique constraints `lead_unique_email` / `lead_unique_phone` decide races with concurrent
  intake (the batch is rolled back and retried, and then sees the other lead and merges into it);
  intake submissions, activities, stage changes and tags are bulk-inserted too.

The file is read as a stream from MEDIA_ROOT (never whole in memory). Progress lives on the
ImportJob row and is committed in the same transaction as each batch, so a redelivered task resumes
exactly after the last committed batch (idempotent), and a second runner of the same job finds the
counter moved and stops. A run works for `TIME_BUDGET_SECONDS` and then re-enqueues itself, so no
task comes near the Celery time limits whatever the file size.

Lock order (leads/locks.py): the ImportJob row (conditional UPDATE), then Lead rows by ascending pk.
"""

import codecs
import csv
import io
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as dt_time
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, OperationalError, connection, models, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.text import slugify
from rest_framework import serializers

from core.enqueue import enqueue_on_commit
from core.exceptions import ApplicationError, NotFound
from leads.exports import csv_safe, csv_stream_writer
from leads.intake_schema import MAX_CUSTOM_FIELDS, IntakeInputSerializer, lead_data_from_validated
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
    Stage,
    StageChange,
    Tag,
)
from leads.normalization import email_normalize
from leads.services import (
    InvalidLeadData,
    LeadData,
    campaign_for_submission,
    lead_build_new,  # the unsaved lead a first submission makes: the same values as the API's
    lead_data_normalize,
    lead_touch_apply,
    source_get_or_create,
    touch_build,
)

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
PREVIEW_ROWS = 20
SNIFF_BYTES = 64 * 1024
MAX_COLUMNS = 200
TIME_BUDGET_SECONDS = 40.0  # below CELERY_TASK_SOFT_TIME_LIMIT (60 s); the task re-enqueues itself
_ROW_RETRIES = 5

TARGET_IGNORE = ""
TARGET_OUTCOME = "outcome"
TARGET_CREATED_AT = "created_at"
CUSTOM_PREFIX = "custom:"

# Lead fields a column can fill: the intake serializer's (custom fields have their own target).
LEAD_FIELD_TARGETS: list[tuple[str, str]] = [
    (name, name.replace("_", " ").capitalize())
    for name in IntakeInputSerializer._declared_fields
    if name != "custom_fields"
]
_LEAD_FIELD_NAMES = frozenset(name for name, _ in LEAD_FIELD_TARGETS)

# Outcome cells of a historical import -> the lead's final stage.
OUTCOME_VALUES: dict[str, str] = {
    **dict.fromkeys(("won", "win", "yes", "y", "true", "1", "converted", "customer", "closed won"), Stage.WON),
    **dict.fromkeys(("lost", "lose", "no", "n", "false", "0", "not converted", "closed lost"), Stage.LOST),
    **{stage: stage for stage in Stage.values},
}
IMPORT_REASON = "imported"
OUTCOME_REASON = "historical outcome (import)"

_HEADER_ALIASES = {
    "e_mail": "email",
    "email_address": "email",
    "mail": "email",
    "mobile": "phone",
    "mobile_phone": "phone",
    "telephone": "phone",
    "tel": "phone",
    "phone_number": "phone",
    "firstname": "first_name",
    "given_name": "first_name",
    "lastname": "last_name",
    "surname": "last_name",
    "family_name": "last_name",
    "company": "company_name",
    "organisation": "company_name",
    "organization": "company_name",
    "job_title": "title",
    "website": "company_domain",
    "domain": "company_domain",
    "zip": "postal_code",
    "zip_code": "postal_code",
    "postcode": "postal_code",
    "state": "region",
    "consent": "marketing_consent",
    "y": TARGET_OUTCOME,
    "converted": TARGET_OUTCOME,
    "result": TARGET_OUTCOME,
    "won": TARGET_OUTCOME,
    "created": TARGET_CREATED_AT,
    "date": TARGET_CREATED_AT,
    "created_on": TARGET_CREATED_AT,
    "signup_date": TARGET_CREATED_AT,
}


class InvalidImport(ApplicationError):
    code = "invalid_import"


# --- reading the file ------------------------------------------------------------------------------


def csv_sniff(*, head: bytes) -> tuple[str, str]:
    """(encoding, delimiter) of a CSV from its first bytes: UTF-8 (with or without BOM), else
    Windows-1252 (what Excel saves as "CSV" on Windows: curly quotes, dashes and the euro sign sit
    where Latin-1 has control codes), else Latin-1 for the five bytes Windows-1252 leaves undefined;
    semicolon when the header line has more semicolons than commas, else comma."""
    if head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    else:
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
            encoding = "utf-8"
        except UnicodeDecodeError:
            try:
                head.decode("cp1252")
                encoding = "cp1252"
            except UnicodeDecodeError:
                encoding = "latin-1"
    first_line = head.decode(encoding, errors="replace").lstrip("\ufeff").split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    return encoding, delimiter


@contextmanager
def _csv_reader(job: ImportJob) -> Iterator[Iterator[list[str]]]:
    """The data rows of the job's file (header skipped), decoded as a stream."""
    with job.file.storage.open(job.file.name, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding=job.encoding, errors="replace", newline="")
        reader = csv.reader(text, delimiter=job.delimiter)
        next(reader, None)
        yield reader


def _headers_clean(cells: list[str]) -> list[str]:
    headers, seen = [], set()
    for index, cell in enumerate(cells, start=1):
        name = cell.strip().lstrip("\ufeff") or f"column {index}"
        if name in seen:
            raise InvalidImport(f"The column “{name}” appears twice in the header row.", field="file")
        seen.add(name)
        headers.append(name)
    return headers


# --- mapping -------------------------------------------------------------------------------------


def _header_key(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.lower()).strip("_")


def custom_target(header: str) -> str:
    return CUSTOM_PREFIX + (slugify(header).replace("-", "_")[:64] or "field")


def import_mapping_suggest(*, headers: list[str], source: Source | None) -> dict[str, str]:
    """A starting mapping: what this source's last import used, else a lead field of the same name
    (or a usual alias), else a custom field named after the column."""
    remembered = source.import_mapping if source else {}
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for header in headers:
        if header in remembered:
            target = remembered[header]
        else:
            key = _header_key(header)
            target = key if key in _LEAD_FIELD_NAMES else _HEADER_ALIASES.get(key, "")
            if target in taken:
                target = ""
            target = target or custom_target(header)
        mapping[header] = target
        if target and not target.startswith(CUSTOM_PREFIX):
            taken.add(target)
    return mapping


def import_mapping_validate(*, headers: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """The mapping restricted to the file's columns; raises InvalidImport for an unusable one."""
    clean: dict[str, str] = {}
    used: dict[str, str] = {}
    custom_count = 0
    for header in headers:
        target = (mapping.get(header) or "").strip()
        if not target:
            clean[header] = TARGET_IGNORE
            continue
        if target.startswith(CUSTOM_PREFIX):
            name = target.removeprefix(CUSTOM_PREFIX)
            if not 0 < len(name) <= 64:
                raise InvalidImport(f"Custom field names are 1 to 64 characters (column “{header}”).")
            custom_count += 1
        elif target not in _LEAD_FIELD_NAMES and target not in (TARGET_OUTCOME, TARGET_CREATED_AT):
            raise InvalidImport(f"Unknown target “{target}” for column “{header}”.")
        key = target
        if key in used:
            raise InvalidImport(f"Columns “{used[key]}” and “{header}” are both mapped to {target}.")
        used[key] = header
        clean[header] = target
    if custom_count > MAX_CUSTOM_FIELDS:
        raise InvalidImport(f"At most {MAX_CUSTOM_FIELDS} columns can become custom fields.")
    if "email" not in used and "phone" not in used:
        raise InvalidImport("Map a column to email or phone: leads are identified by one of them.")
    return clean


@dataclass(frozen=True)
class _Plan:
    """A mapping compiled to column positions."""

    fields: tuple[tuple[int, str], ...]
    custom: tuple[tuple[int, str], ...]
    outcome: int | None
    created_at: int | None

    @classmethod
    def build(cls, *, headers: list[str], mapping: dict[str, str]) -> "_Plan":
        fields, custom, outcome, created_at = [], [], None, None
        for index, header in enumerate(headers):
            target = mapping.get(header, "")
            if target == TARGET_OUTCOME:
                outcome = index
            elif target == TARGET_CREATED_AT:
                created_at = index
            elif target.startswith(CUSTOM_PREFIX):
                custom.append((index, target.removeprefix(CUSTOM_PREFIX)))
            elif target:
                fields.append((index, target))
        return cls(tuple(fields), tuple(custom), outcome, created_at)


# --- one row -------------------------------------------------------------------------------------


class RowRejected(Exception):
    pass


@dataclass
class _Row:
    number: int
    cells: list[str]
    payload: dict[str, Any] = field(default_factory=dict)
    data: LeadData | None = None
    email_normalized: str = ""
    outcome: str = ""
    reason: str = ""


def _detail_text(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_detail_text(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_detail_text(item) for item in detail)
    return str(detail)


def _cell(cells: list[str], index: int) -> str:
    return cells[index].strip() if index < len(cells) else ""


class RowReader:
    """Turns CSV rows into validated LeadData with the intake serializer (one instance, reused)."""

    def __init__(self, *, headers: list[str], mapping: dict[str, str]):
        self.plan = _Plan.build(headers=headers, mapping=mapping)
        self.serializer = IntakeInputSerializer()
        # Fields no column maps to are absent from every payload: validating them would only skip
        # them, so they are dropped from this instance (the rules of the mapped ones are unchanged).
        mapped = {name for _, name in self.plan.fields} | ({"custom_fields"} if self.plan.custom else set())
        for name in list(self.serializer.fields):
            if name not in mapped:
                del self.serializer.fields[name]

    def read(self, *, number: int, cells: list[str]) -> _Row:
        row = _Row(number=number, cells=cells)
        payload: dict[str, Any] = {}
        for index, name in self.plan.fields:
            value = _cell(cells, index)
            if value:
                payload[name] = [t.strip() for t in value.split(",") if t.strip()] if name == "tags" else value
        custom = {name: _cell(cells, index) for index, name in self.plan.custom if _cell(cells, index)}
        if custom:
            payload["custom_fields"] = custom
        row.payload = payload
        try:
            occurred_at = self._created_at(cells)
            row.outcome = self._outcome(cells)
            try:
                validated = self.serializer.run_validation(payload)
            except serializers.ValidationError as exc:
                raise RowRejected(_detail_text(exc.detail)) from exc
            data = lead_data_from_validated(validated)
            data.occurred_at = occurred_at
            try:
                row.data = lead_data_normalize(data=data)
            except InvalidLeadData as exc:
                raise RowRejected(f"{exc.field}: {exc.message}" if exc.field else exc.message) from exc
            row.email_normalized = email_normalize(data.email) if data.email else ""
        except RowRejected as exc:
            row.reason = str(exc)
        return row

    def _outcome(self, cells: list[str]) -> str:
        if self.plan.outcome is None:
            return ""
        value = _cell(cells, self.plan.outcome)
        if not value:
            return ""
        stage = OUTCOME_VALUES.get(value.lower())
        if stage is None:
            raise RowRejected(f"outcome: “{value}” is not an outcome (use won/lost, yes/no or a stage).")
        return stage

    def _created_at(self, cells: list[str]) -> datetime | None:
        if self.plan.created_at is None:
            return None
        value = _cell(cells, self.plan.created_at)
        if not value:
            return None
        try:
            parsed = parse_datetime(value)
            if parsed is None and (day := parse_date(value)) is not None:
                parsed = datetime.combine(day, dt_time.min)
        except ValueError:
            parsed = None
        if parsed is None:
            raise RowRejected(f"created_at: “{value}” is not a date (use YYYY-MM-DD or an ISO date-time).")
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, timezone.get_current_timezone())
        if parsed > timezone.now():
            raise RowRejected("created_at: the date is in the future.")
        return parsed


# --- upload, preview, start, cancel ------------------------------------------------------------------


def import_job_create(
    *, user: AbstractBaseUser, upload: UploadedFile, source: Source | None, new_source_name: str = ""
) -> ImportJob:
    """Store the upload under MEDIA_ROOT, detect encoding and delimiter, read the header row and
    suggest a mapping (the source's remembered one first). Without `source`, the source named
    `new_source_name` is found or created, only once the file has passed its checks (a rejected
    upload leaves no source behind)."""
    head = upload.read(SNIFF_BYTES)
    upload.seek(0)
    if not head.strip():
        raise InvalidImport("The file is empty.", field="file")
    if b"\x00" in head:
        raise InvalidImport("This does not look like a CSV file.", field="file")
    encoding, delimiter = csv_sniff(head=head)
    text = head.decode(encoding, errors="replace")
    header_cells = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    headers = _headers_clean(header_cells)
    if not headers:
        raise InvalidImport("The file has no header row.", field="file")
    if len(headers) > MAX_COLUMNS:
        raise InvalidImport(f"The file has {len(headers)} columns; at most {MAX_COLUMNS}.", field="file")
    if source is None:
        source = source_get_or_create(name=new_source_name)
    job = ImportJob(
        created_by=user,
        original_name=(upload.name or "upload.csv")[:255],
        encoding=encoding,
        delimiter=delimiter,
        headers=headers,
        source=source,
        mapping=import_mapping_suggest(headers=headers, source=source),
    )
    job.file.save(f"{uuid.uuid4().hex}.csv", upload, save=False)
    job.save()
    return job


@dataclass
class PreviewRow:
    number: int
    values: dict[str, Any]
    outcome: str
    error: str
    matches_existing: bool = False
    duplicate_of: int = 0  # an earlier row of the file is the same person


def import_preview(*, job: ImportJob, mapping: dict[str, str], limit: int = PREVIEW_ROWS) -> list[PreviewRow]:
    """The first rows as the import will read them, each validated, and whether it will merge."""
    reader = RowReader(headers=job.headers, mapping=mapping)
    rows: list[_Row] = []
    with _csv_reader(job) as cells_iter:
        for number, cells in enumerate(cells_iter, start=1):
            if not any(c.strip() for c in cells):
                continue
            rows.append(reader.read(number=number, cells=cells))
            if len(rows) >= limit:
                break
    emails = {r.email_normalized for r in rows if r.email_normalized}
    phones = {r.data.phone_e164 for r in rows if r.data and r.data.phone_e164}
    known_emails, known_phones = set(), set()
    if emails or phones:
        for email, phone in _leads_matching(emails=emails, phones=phones).values_list("email_normalized", "phone_e164"):
            known_emails.add(email)
            known_phones.add(phone)
    preview = []
    first_seen: dict[str, int] = {}
    for row in rows:
        duplicate_of = 0
        if row.data:
            keys = [k for k in (row.email_normalized, row.data.phone_e164) if k]
            duplicate_of = next((first_seen[k] for k in keys if k in first_seen), 0)
            for key in keys:
                first_seen.setdefault(key, row.number)
        values = {
            k: (", ".join(v) if isinstance(v, list) else v) for k, v in row.payload.items() if k != "custom_fields"
        }
        values.update({f"{CUSTOM_PREFIX}{k}": v for k, v in row.payload.get("custom_fields", {}).items()})
        matches = bool(
            row.data
            and (row.email_normalized in known_emails or (row.data.phone_e164 and row.data.phone_e164 in known_phones))
        )
        preview.append(PreviewRow(row.number, values, row.outcome, row.reason, matches, duplicate_of))
    return preview


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


# --- the run -------------------------------------------------------------------------------------


def _leads_matching(*, emails: set[str], phones: set[str]) -> QuerySet[Lead]:
    """Leads holding any of these normalised emails or E.164 phones. The explicit `<> ''` lets
    PostgreSQL use the partial unique indexes lead_unique_email / lead_unique_phone for a long IN
    list (it cannot infer their predicate from more than 100 values): index look-ups, not a scan."""
    return Lead.objects.filter(
        (Q(email_normalized__in=emails) & ~Q(email_normalized="")) | (Q(phone_e164__in=phones) & ~Q(phone_e164=""))
    )


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

    def _batch_apply(self, *, rows: list[_Row]) -> _Counts:
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


def _rows_count(job: ImportJob) -> int:
    with _csv_reader(job) as reader:
        return sum(1 for _ in reader)


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
            job.total_rows = _rows_count(job)
            ImportJob.objects.filter(pk=job_id).update(total_rows=job.total_rows)
        run = _ImportRun(job)
        deadline = time.monotonic() + time_budget
        offset = job.processed_rows
        with _csv_reader(job) as reader:
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


# --- reads ---------------------------------------------------------------------------------------


def import_job_list() -> QuerySet[ImportJob]:
    return ImportJob.objects.select_related("source", "campaign", "created_by")


def import_job_get(*, job_id: int) -> ImportJob:
    job = import_job_list().filter(pk=job_id).first()
    if job is None:
        raise NotFound("No import with this id.")
    return job


def import_files_purge(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Delete the uploaded file and the rejected rows (raw personal data) of every import that
    ended more than DJANGO_IMPORT_RETENTION_DAYS ago, and of uploads never started within that
    time (they become cancelled). Counts, mapping and the leads stay. Returns how many imports
    were purged. Idempotent and safe to run twice at once: each job is claimed by one
    conditional UPDATE, and deleting a file that is already gone is a no-op."""
    days = settings.LEADOPS_IMPORT_RETENTION_DAYS
    if days <= 0:
        return 0
    now = now or timezone.now()
    cutoff = now - timedelta(days=days)
    finished = Q(
        status__in=(ImportStatus.COMPLETED, ImportStatus.CANCELLED, ImportStatus.FAILED), finished_at__lt=cutoff
    )
    abandoned = Q(status=ImportStatus.DRAFT, created_at__lt=cutoff)
    due = ImportJob.objects.filter(finished | abandoned, purged_at__isnull=True)
    purged = 0
    for job in due.only("pk", "file", "status").order_by("pk")[:batch_size]:
        changes: dict[str, Any] = {"purged_at": now, "updated_at": now}
        if job.status == ImportStatus.DRAFT:
            changes.update(
                status=ImportStatus.CANCELLED,
                finished_at=now,
                error=f"Not started within {days} days; the file was deleted.",
            )
        with transaction.atomic():
            if not ImportJob.objects.filter(finished | abandoned, pk=job.pk, purged_at__isnull=True).update(**changes):
                continue  # started, or purged by a concurrent run, since it was read
            ImportRowError.objects.filter(job_id=job.pk).delete()
        if job.file.name:
            job.file.storage.delete(job.file.name)
        purged += 1
    return purged


def import_rejects_csv_lines(*, job: ImportJob) -> Iterator[str]:
    """The rejected rows as CSV: row number, reason, then the original columns (spreadsheet-safe)."""
    writer = csv_stream_writer()
    yield writer.writerow(["row", "reason", *job.headers])
    errors = job.row_errors.order_by("row_number").values_list("row_number", "reason", "values")
    for number, reason, values in errors.iterator(chunk_size=2000):
        yield writer.writerow([number, csv_safe(reason), *(csv_safe(v) for v in values)])
