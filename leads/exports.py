"""CSV exports of leads, streamed, and safe to open in a spreadsheet.

Every CSV the app writes (the lead list's export, the admin action, the rejected rows of an import)
goes through `csv_stream_writer()`, which escapes every cell, headers included, along OWASP's
CSV-injection guidance:
- a cell that would run as a formula (it begins, after any spaces or quotes, with `=`, `+`, `-`,
  `@`, a tab, a carriage return or a NUL) gets a leading apostrophe (`csv_safe`). A phone number or
  a plain number (`+353 1 234 5678`, `-5`) computes nothing and stays as it is;
- a cell where such a character follows a separator (`,` `;` tab `|`, or a line break) is written
  in double quotes, so a spreadsheet that splits lines on another separator than ours (`;` in much
  of Europe) keeps it one text cell instead of starting a formula in the next one.
`lead_csv_rows(leads=queryset)` is the one lead export (the lead list's "export current filter" and
the admin action): the queryset read as tuples in chunks, fast and flat in memory at 100,000+ rows.
"""

import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from leads.models import Channel, Lead, Stage

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\x00")
_FORMULA_START = re.compile(r"^[ \"']*[=+\-@\t\r\x00]")
# A number or a phone number: a sign, then only digits, spaces and ( ) . - / (at least one digit).
_NUMBER_LIKE = re.compile(r"^\s*[+-]?[\d\s().\-/]*\d[\d\s().\-/]*$")
# A separator (ours or a spreadsheet's in another locale) or a line break, then, after any spaces or
# quotes, a character that starts a formula: that part would begin a cell of its own.
_FORMULA_AFTER_SEPARATOR = re.compile(r"[,;\t|\r\n][ \"']*[=+\-@\t\r\x00]")
_QUOTE_ALWAYS = re.compile(r'[,"\r\n]')  # what the csv module quotes (the delimiter, quotes, line breaks)


def csv_safe(value: Any) -> Any:
    """The value to write in a CSV cell: text a spreadsheet would run as a formula gets a leading
    `'`; numbers and phone numbers are left as they are."""
    if isinstance(value, str) and _FORMULA_START.match(value) and not _NUMBER_LIKE.match(value):
        return "'" + value
    return value


def _field(value: Any) -> str:
    text = "" if value is None else str(csv_safe(value))
    if _QUOTE_ALWAYS.search(text) or _FORMULA_AFTER_SEPARATOR.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


class _SafeCsvWriter:
    """writerow(cells) returns the CSV line (comma-separated, CRLF, like the csv module's `excel`
    dialect), each cell escaped as the module docstring says."""

    def writerow(self, cells: Iterable[Any]) -> str:
        fields = [_field(cell) for cell in cells]
        if fields == [""]:
            fields = ['""']  # a lone empty cell, not a blank line
        return ",".join(fields) + "\r\n"


def csv_stream_writer() -> _SafeCsvWriter:
    """A writer whose writerow() escapes every cell and returns the line, to yield from a streamed
    response. The one way the app writes CSV."""
    return _SafeCsvWriter()


# (header, queryset path for values_list)
LEAD_EXPORT_COLUMNS: list[tuple[str, str]] = [
    ("id", "id"),
    ("created_at", "created_at"),
    ("first_name", "first_name"),
    ("last_name", "last_name"),
    ("email", "email"),
    ("phone", "phone"),
    ("title", "title"),
    ("company", "company_name"),
    ("company_domain", "company_domain"),
    ("country", "country"),
    ("stage", "stage"),
    ("score", "score"),
    ("channel", "channel"),
    ("source", "source__name"),
    ("campaign", "campaign__name"),
    ("owner", "owner__username"),
]
_HEADERS = [header for header, _ in LEAD_EXPORT_COLUMNS]
_LABELS = {"stage": dict(Stage.choices), "channel": dict(Channel.choices)}


def _cell(header: str, value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if header in _LABELS:
        return _LABELS[header].get(value, value)
    return value


def _line(writer: Any, values: Iterable[Any]) -> str:
    return writer.writerow([_cell(header, value) for header, value in zip(_HEADERS, values, strict=True)])


def lead_csv_rows(*, leads: QuerySet[Lead], chunk_size: int = 2000) -> Iterator[str]:
    """CSV lines (header first) for a queryset, read as tuples in chunks: memory stays flat."""
    writer = csv_stream_writer()
    yield writer.writerow(_HEADERS)
    paths = [path for _, path in LEAD_EXPORT_COLUMNS]
    rows = leads.select_related(None).prefetch_related(None).values_list(*paths).iterator(chunk_size=chunk_size)
    for row in rows:
        yield _line(writer, row)
