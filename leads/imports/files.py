"""The uploaded file: store it, detect its encoding and delimiter, read it back as a stream, and
delete it (with the rejected rows) once the retention period is over."""

import codecs
import csv
import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from leads.imports.errors import InvalidImport
from leads.imports.mapping import import_mapping_suggest
from leads.models import ImportJob, ImportRowError, ImportStatus, Source
from leads.services import source_get_or_create

SNIFF_BYTES = 64 * 1024
MAX_COLUMNS = 200
# The csv module's own limit on one cell (131,072 characters), left as it is: it bounds the memory
# one row can take. A longer cell refuses the upload, or (in a file stored before that check) its row.
MAX_CELL_CHARS = csv.field_size_limit()
CELL_TOO_LONG = f"a cell longer than {MAX_CELL_CHARS // 1024} KB ({MAX_CELL_CHARS:,} characters)"


class UnreadableRow(list):
    """A row the csv reader refused (a cell over the field limit): no cells, and the reason."""

    reason = f"This row has {CELL_TOO_LONG}; it was not read."


def _rows_tolerant(reader: Any) -> Iterator[list[str]]:
    """The reader's rows; a row it refuses comes back as an `UnreadableRow` and reading goes on with
    the next line, so one bad row never stops a preview or an import."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            row = UnreadableRow()
        yield row


def row_is_blank(cells: list[str]) -> bool:
    return not isinstance(cells, UnreadableRow) and not any(c.strip() for c in cells)


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
def csv_data_rows(job: ImportJob) -> Iterator[Iterator[list[str]]]:
    """The data rows of the job's file (header skipped), decoded as a stream."""
    with job.file.storage.open(job.file.name, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding=job.encoding, errors="replace", newline="")
        rows = _rows_tolerant(csv.reader(text, delimiter=job.delimiter))
        next(rows, None)
        yield rows


def csv_rows_count(job: ImportJob) -> int:
    with csv_data_rows(job) as reader:
        return sum(1 for _ in reader)


def _headers_clean(cells: list[str]) -> list[str]:
    headers, seen = [], set()
    for index, cell in enumerate(cells, start=1):
        name = cell.strip().lstrip("\ufeff") or f"column {index}"
        if name in seen:
            raise InvalidImport(f"The column “{name}” appears twice in the header row.", field="file")
        seen.add(name)
        headers.append(name)
    return headers


def _cells_size_check(*, upload: UploadedFile, encoding: str, delimiter: str) -> None:
    """Read the whole upload once as the import will, and refuse it at the first row with a cell
    over the field limit: the person learns it now, with the row number, not from a rejected row."""
    upload.seek(0)
    text = io.TextIOWrapper(upload, encoding=encoding, errors="replace", newline="")
    try:
        for number, row in enumerate(_rows_tolerant(csv.reader(text, delimiter=delimiter))):
            if isinstance(row, UnreadableRow):
                raise InvalidImport(
                    f"Row {number} has {CELL_TOO_LONG}. Shorten or remove that cell and upload the file again.",
                    field="file",
                )
    finally:
        text.detach()  # leave the upload open: it is stored next
        upload.seek(0)


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
    _cells_size_check(upload=upload, encoding=encoding, delimiter=delimiter)
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
