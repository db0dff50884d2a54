"""The first rows of a file as the import will read them: validated, and whether each will merge
into an existing lead or an earlier row of the file."""

from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from leads.imports.files import csv_data_rows, row_is_blank
from leads.imports.mapping import CUSTOM_PREFIX
from leads.imports.rows import ParsedRow, RowReader
from leads.models import ImportJob, Lead

PREVIEW_ROWS = 20


@dataclass
class PreviewRow:
    number: int
    values: dict[str, Any]
    outcome: str
    error: str
    matches_existing: bool = False
    duplicate_of: int = 0  # an earlier row of the file is the same person


def leads_matching_contacts(*, emails: set[str], phones: set[str]) -> QuerySet[Lead]:
    """Leads holding any of these normalised emails or E.164 phones. The explicit `<> ''` lets
    PostgreSQL use the partial unique indexes lead_unique_email / lead_unique_phone for a long IN
    list (it cannot infer their predicate from more than 100 values): index look-ups, not a scan."""
    return Lead.objects.filter(
        (Q(email_normalized__in=emails) & ~Q(email_normalized="")) | (Q(phone_e164__in=phones) & ~Q(phone_e164=""))
    )


def import_preview(*, job: ImportJob, mapping: dict[str, str], limit: int = PREVIEW_ROWS) -> list[PreviewRow]:
    """The first rows as the import will read them, each validated, and whether it will merge."""
    reader = RowReader(headers=job.headers, mapping=mapping)
    rows: list[ParsedRow] = []
    with csv_data_rows(job) as cells_iter:
        for number, cells in enumerate(cells_iter, start=1):
            if row_is_blank(cells):
                continue
            rows.append(reader.read(number=number, cells=cells))
            if len(rows) >= limit:
                break
    emails = {r.email_normalized for r in rows if r.email_normalized}
    phones = {r.data.phone_e164 for r in rows if r.data and r.data.phone_e164}
    known_emails, known_phones = set(), set()
    if emails or phones:
        matching = leads_matching_contacts(emails=emails, phones=phones)
        for email, phone in matching.values_list("email_normalized", "phone_e164"):
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
