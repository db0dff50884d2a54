"""Every row lock of the leads app, and its lock-free counterpart: reading a lead with its row
version for a write that succeeds only if the row is unchanged (`leads_matching_with_versions`).

Lock order, app-wide: Lead rows (ascending pk) before anything else. Routing and SLA code that
also locks reps or assignments takes the lead first, then the rep.
"""

from functools import cache

from django.db import connection
from django.db.models import Model, QuerySet

from core.sql import ROW_VERSION_SQL, column_converters, cursor_prepared, row_convert
from leads.models import Lead


def leads_for_update(*, lead_ids: list[int]) -> QuerySet[Lead]:
    """Leads whose fields change (merge, stage, last touch). The key never changes: NO KEY lock."""
    return Lead.objects.filter(pk__in=lead_ids).order_by("pk").select_for_update(of=("self",), no_key=True)


def leads_for_delete(*, lead_ids: list[int]) -> QuerySet[Lead]:
    """Leads that a merge deletes: a full lock, so no one inserts rows that reference them meanwhile."""
    return Lead.objects.filter(pk__in=lead_ids).order_by("pk").select_for_update(of=("self",))


def leads_matching_for_update(*, email_normalized: str, phone_e164: str) -> list[Lead]:
    """The lead(s) of a person by normalised email or E.164 phone, locked for a new touch, with
    what the intake response shows (owner, source, campaign) joined: one statement.

    A returning person's submission runs this on every request, and compiling the equivalent
    select_related queryset cost more CPU than the rest of the request; the SQL is built once
    per process from the models' fields and the rows become instances through `Model.from_db`."""
    return [lead for lead, _ in _leads_matching(email_normalized=email_normalized, phone_e164=phone_e164, lock=True)]


def leads_matching_with_versions(*, email_normalized: str, phone_e164: str) -> list[tuple[Lead, str]]:
    """`leads_matching_for_update` without the lock (PostgreSQL): each lead with its row version,
    for a write that succeeds only if the row is unchanged since (`rows_insert_together`'s
    `update_if_version`)."""
    return _leads_matching(email_normalized=email_normalized, phone_e164=phone_e164, lock=False)


def _leads_matching(*, email_normalized: str, phone_e164: str, lock: bool) -> list[tuple[Lead, str | None]]:
    by = [name for name, value in (("email_normalized", email_normalized), ("phone_e164", phone_e164)) if value]
    if not by:
        return []
    sql, shapes, columns = _matching_sql(tuple(by), connection.vendor, lock)
    with cursor_prepared() as cursor:
        cursor.execute(sql, [value for value in (email_normalized, phone_e164) if value])
        rows = cursor.fetchall()
    leads = []
    for raw in rows:
        version = None if lock else raw[-1]
        row = row_convert(raw if lock else raw[:-1], columns)
        values, start = [], 0
        for _model, attnames in shapes:
            values.append(row[start : start + len(attnames)])
            start += len(attnames)
        lead = Lead.from_db(connection.alias, shapes[0][1], values[0])
        for name, (model, attnames), related_values in zip(_MATCH_RELATED, shapes[1:], values[1:], strict=True):
            related = model.from_db(connection.alias, attnames, related_values) if related_values[0] else None
            Lead._meta.get_field(name).set_cached_value(lead, related)
        leads.append((lead, version))
    return leads


_MATCH_RELATED = ("owner", "source", "campaign")


@cache
def _matching_sql(
    by: tuple[str, ...], vendor: str, lock: bool
) -> tuple[str, list[tuple[type[Model], list[str]]], list]:
    quote = connection.ops.quote_name
    shapes: list[tuple[type[Model], list[str]]] = [(Lead, [f.attname for f in Lead._meta.concrete_fields])]
    columns = [f"l.{quote(f.column)}" for f in Lead._meta.concrete_fields]
    all_fields = [*Lead._meta.concrete_fields]
    joins = []
    for i, name in enumerate(_MATCH_RELATED):
        field = Lead._meta.get_field(name)
        model = field.related_model
        fields = [model._meta.pk, *(f for f in model._meta.concrete_fields if not f.primary_key)]
        shapes.append((model, [f.attname for f in fields]))
        columns += [f"r{i}.{quote(f.column)}" for f in fields]
        all_fields += fields
        on = f"r{i}.{quote(model._meta.pk.column)} = l.{quote(field.column)}"
        joins.append(f"LEFT JOIN {quote(model._meta.db_table)} r{i} ON {on}")
    where = " OR ".join(f"l.{quote(Lead._meta.get_field(name).column)} = %s" for name in by)
    if not lock:
        columns.append(ROW_VERSION_SQL.format(alias="l"))
    lock_clause = " FOR NO KEY UPDATE OF l" if lock and vendor == "postgresql" else ""
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(Lead._meta.db_table)} l {' '.join(joins)} "
        f"WHERE {where} ORDER BY l.{quote(Lead._meta.pk.column)}{lock_clause}"
    )
    return sql, shapes, column_converters(all_fields)
