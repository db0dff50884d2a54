"""CSV exports of leads, streamed, and safe to open in a spreadsheet.

`csv_safe` is shared by every export (the HTML lead list, admin): a cell that a spreadsheet would
read as a formula gets a leading apostrophe (CSV/formula injection, OWASP).
Two entry points over the same columns:
- `lead_export_lines(leads=...)`: from Lead instances (admin action over a selection);
- `lead_csv_rows(leads=queryset)`: from a queryset read as tuples in chunks (the lead list's
  "export current filter", fast at 100,000+ rows).
"""

import csv
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from leads.models import Channel, Lead, Stage

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """The value to write in a CSV cell: text starting like a formula is prefixed with `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class _Echo:
    """A file-like object whose write() hands the line back, for csv.writer over a stream."""

    def write(self, value: str) -> str:
        return value


def _related(name: str, attr: str) -> Callable[[Lead], Any]:
    def get(lead: Lead) -> Any:
        related = getattr(lead, name)
        return getattr(related, attr) if related is not None else ""

    return get


# (header, queryset path for values_list, getter on an instance)
LEAD_EXPORT_COLUMNS: list[tuple[str, str, Callable[[Lead], Any]]] = [
    ("id", "id", lambda lead: lead.pk),
    ("created_at", "created_at", lambda lead: lead.created_at),
    ("first_name", "first_name", lambda lead: lead.first_name),
    ("last_name", "last_name", lambda lead: lead.last_name),
    ("email", "email", lambda lead: lead.email),
    ("phone", "phone", lambda lead: lead.phone),
    ("title", "title", lambda lead: lead.title),
    ("company", "company_name", lambda lead: lead.company_name),
    ("company_domain", "company_domain", lambda lead: lead.company_domain),
    ("country", "country", lambda lead: lead.country),
    ("stage", "stage", lambda lead: lead.stage),
    ("score", "score", lambda lead: lead.score),
    ("channel", "channel", lambda lead: lead.channel),
    ("source", "source__name", _related("source", "name")),
    ("campaign", "campaign__name", _related("campaign", "name")),
    ("owner", "owner__username", _related("owner", "username")),
]
_HEADERS = [header for header, _, _ in LEAD_EXPORT_COLUMNS]
_LABELS = {"stage": dict(Stage.choices), "channel": dict(Channel.choices)}


def _cell(header: str, value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if header in _LABELS:
        return _LABELS[header].get(value, value)
    return csv_safe(value)


def _line(writer: Any, values: Iterable[Any]) -> str:
    return writer.writerow([_cell(header, value) for header, value in zip(_HEADERS, values, strict=True)])


def lead_export_lines(*, leads: Iterable[Lead]) -> Iterator[str]:
    """CSV lines (header first) for Lead instances; select_related owner/source/campaign upstream."""
    writer = csv.writer(_Echo())
    yield writer.writerow(_HEADERS)
    for lead in leads:
        yield _line(writer, (get(lead) for _, _, get in LEAD_EXPORT_COLUMNS))


def lead_csv_rows(*, leads: QuerySet[Lead], chunk_size: int = 2000) -> Iterator[str]:
    """CSV lines (header first) for a queryset, read as tuples in chunks: memory stays flat."""
    writer = csv.writer(_Echo())
    yield writer.writerow(_HEADERS)
    paths = [path for _, path, _ in LEAD_EXPORT_COLUMNS]
    rows = leads.select_related(None).prefetch_related(None).values_list(*paths).iterator(chunk_size=chunk_size)
    for row in rows:
        yield _line(writer, row)
