"""One CSV row → a validated `LeadData` (the intake API's serializer and normalisation: one set of
rules), its historical outcome and date, or the reason it is rejected."""

from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as dt_time
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework import serializers

from leads.imports.files import UnreadableRow
from leads.imports.mapping import ColumnPlan
from leads.intake_schema import IntakeInputSerializer, lead_data_from_validated
from leads.models import Stage
from leads.normalization import email_normalize
from leads.services import InvalidLeadData, LeadData, lead_data_normalize

# Outcome cells of a historical import -> the lead's final stage.
OUTCOME_VALUES: dict[str, str] = {
    **dict.fromkeys(("won", "win", "yes", "y", "true", "1", "converted", "customer", "closed won"), Stage.WON),
    **dict.fromkeys(("lost", "lose", "no", "n", "false", "0", "not converted", "closed lost"), Stage.LOST),
    **{stage: stage for stage in Stage.values},
}


class RowRejected(Exception):
    pass


@dataclass
class ParsedRow:
    number: int
    cells: list[str]
    payload: dict[str, Any] = field(default_factory=dict)
    data: LeadData | None = None  # None: rejected, for `reason`
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
        self.headers = headers
        self.plan = ColumnPlan.build(headers=headers, mapping=mapping)
        self.serializer = IntakeInputSerializer()
        # Fields no column maps to are absent from every payload: validating them would only skip
        # them, so they are dropped from this instance (the rules of the mapped ones are unchanged).
        mapped = {name for _, name in self.plan.fields} | ({"custom_fields"} if self.plan.custom else set())
        for name in list(self.serializer.fields):
            if name not in mapped:
                del self.serializer.fields[name]

    def read(self, *, number: int, cells: list[str]) -> ParsedRow:
        if isinstance(cells, UnreadableRow):
            return ParsedRow(number=number, cells=[], reason=cells.reason)
        if any("\x00" in cell for cell in cells):
            return self._nul_rejected(number=number, cells=cells)
        row = ParsedRow(number=number, cells=cells)
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

    def _nul_rejected(self, *, number: int, cells: list[str]) -> ParsedRow:
        """A NUL (a damaged or binary file) rejects the row: no PostgreSQL text or JSON column can
        hold one. The cells are kept for the rejected-rows file with each NUL shown as U+FFFD."""
        index = next(i for i, cell in enumerate(cells) if "\x00" in cell)
        column = self.headers[index] if index < len(self.headers) else f"column {index + 1}"
        return ParsedRow(
            number=number,
            cells=[cell.replace("\x00", "\ufffd") for cell in cells],
            reason=f"{column}: the cell contains a NUL character.",
        )

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
