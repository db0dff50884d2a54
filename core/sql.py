"""Several inserts in one round trip (PostgreSQL data-modifying CTEs).

The intake path writes a handful of rows per request; one statement instead of one per row took
a fifth off its CPU. Values are prepared by each field exactly as `Model.save()` prepares them.
"""

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from functools import cache

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models import Model


@contextlib.contextmanager
def cursor_prepared() -> Iterator:
    """A cursor whose statements PostgreSQL parses and plans once per connection (server-side
    binding, prepared on first use), for the fixed statements of the intake path. Elsewhere,
    or with DJANGO_DB_PREPARED_STATEMENTS off (e.g. behind a transaction pooler that cannot keep
    prepared statements), the ordinary cursor."""
    db = _this_thread_connection()
    if db.vendor != "postgresql" or not settings.LEADOPS_DB_PREPARED_STATEMENTS:
        with db.cursor() as cursor:
            yield cursor
        return
    db.ensure_connection()
    db.validate_thread_sharing()
    raw = db.connection
    if raw.prepare_threshold is None:
        # Django turns automatic preparing off; only this cursor's statements ask for it.
        raw.prepare_threshold = 2**31 - 1
    wrap = db.make_debug_cursor if db.queries_logged else db.make_cursor
    with wrap(_PreparingCursor(raw)) as cursor:
        yield cursor


def _this_thread_connection():
    """The default connection object itself: every attribute read through the `connection` proxy
    looks the thread's connection up again, and the intake path reads ~80 of them."""
    return connections[DEFAULT_DB_ALIAS]


def _preparing_cursor_class():
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparingCursor(ServerBindingCursor):
        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=True, binary=binary)

    return PreparingCursor


def rows_insert_together(
    rows: Sequence[Model],
    *,
    sql_for: Mapping[tuple[int, str], str] | None = None,
    unless_first_conflicts: bool = False,
    update: tuple[Model, Sequence[str]] | None = None,
    update_if_version: str | None = None,
) -> bool:
    """INSERT `rows` (unsaved instances, their primary keys generated) in one statement and set
    their primary keys; PostgreSQL only.

    `sql_for[(i, attname)]` replaces row i's placeholder for that field with SQL: `%s` in it is the
    field's own value (leave it out to ignore the value) and `{rN}` the new id of an earlier row N,
    e.g. `"%s || jsonb_build_object('submission_id', {r0})"`.

    `unless_first_conflicts`: the first row is inserted `ON CONFLICT DO NOTHING` and the others
    only if it was; returns False, with nothing written, when it conflicted with a unique index.

    `update=(instance, field names)`: also UPDATE those fields of that saved instance (as
    `save(update_fields=...)` would, auto_now fields included) in the same statement.
    `update_if_version`: only if its row is still the version read (`ROW_VERSION_SQL`); returns
    False, with nothing written, when a concurrent write changed the row since."""
    sql_for = sql_for or {}
    update_instance, update_names = update if update is not None else (None, ())
    sql, update_fields, row_fields = _statement(
        tuple(type(row) for row in rows),
        tuple(sorted(sql_for.items())),
        unless_first_conflicts,
        type(update_instance) if update_instance is not None else None,
        tuple(update_names),
        update_if_version is not None,
    )
    db = _this_thread_connection()
    params = [field.get_db_prep_save(field.pre_save(update_instance, False), db) for field in update_fields]
    if update_instance is not None:
        params.append(update_instance.pk)
    if update_if_version is not None:
        params.append(update_if_version)
    for row, fields in zip(rows, row_fields, strict=True):
        for field, attname, plain_types in fields:
            value = getattr(row, attname)
            if plain_types and (
                value is None
                or (type(value) in plain_types and (type(value) is not datetime or value.tzinfo is not None))
            ):
                params.append(value)  # what get_db_prep_save would return, without its ~10 calls
            else:
                params.append(field.get_db_prep_save(field.pre_save(row, True), db))
    with cursor_prepared() as cursor:
        cursor.execute(sql, params)
        ids = cursor.fetchone()
    if ids[0] is None:
        return False
    for row, pk in zip(rows, ids, strict=True):
        row.pk = pk
        row._state.adding, row._state.db = False, db.alias
    return True


# --- reading rows of hand-written SELECTs -------------------------------------------------------


def column_converters(fields: Sequence[models.Field]) -> list[tuple[int, object, list]]:
    """For a SELECT of these fields' columns, in order: (index, column, converters) of each column
    whose raw value the ORM would convert (JSON decoding, SQLite dates, booleans, ...). Build once
    per statement and process; `row_convert` applies it."""
    converters = []
    for index, field in enumerate(fields):
        column = field.get_col(field.model._meta.db_table)
        if found := connection.ops.get_db_converters(column) + column.get_db_converters(connection):
            converters.append((index, column, found))
    return converters


def row_convert(row: Sequence, converters: list[tuple[int, object, list]]) -> list:
    """The row's values as the ORM would hand them to `Model.from_db`."""
    values = list(row)
    db = _this_thread_connection() if converters else None
    for index, column, column_converters in converters:
        for convert in column_converters:
            values[index] = convert(values[index], column, db)
    return values


# --- inserting rows --------------------------------------------------------------------------------

_PLAIN_TYPES = {
    models.DateTimeField: (datetime,),  # aware ones only: see rows_insert_together
    models.CharField: (str,),
    models.TextField: (str,),
    models.BooleanField: (bool,),
    models.IntegerField: (int,),
    models.BigIntegerField: (int,),
    models.SmallIntegerField: (int,),
    models.PositiveIntegerField: (int,),
    models.PositiveSmallIntegerField: (int,),
}


def _plain_types(field: models.Field) -> tuple[type, ...]:
    """Python types whose values the field stores unchanged (nothing to convert, no pre_save
    hook); empty when every value needs the field's own preparation."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return ()  # pre_save sets them
    if isinstance(field, models.ForeignKey):
        return _plain_types(field.target_field) or (
            (int,) if field.target_field.get_internal_type().endswith("AutoField") else ()
        )
    return _PLAIN_TYPES.get(type(field), ())


# A row's version for optimistic writes: PostgreSQL's xmin, which every UPDATE of the row changes
# (also those that do not touch updated_at) and row locks do not.
ROW_VERSION_SQL = "{alias}.xmin::text"


@cache
def _statement(models, sql_for, unless_first_conflicts, update_model, update_names, update_versioned):
    """The SQL of one shape of call (built once per process), the fields whose values it takes
    for the update, and per row the fields whose values it takes, in parameter order."""
    sql_for = dict(sql_for)
    quote = connection.ops.quote_name
    ctes = []
    update_fields = [update_model._meta.get_field(name) for name in update_names] if update_model else []
    if update_model is not None:
        assignments = ", ".join(f"{quote(field.column)} = %s" for field in update_fields)
        table, pk = quote(update_model._meta.db_table), quote(update_model._meta.pk.column)
        version = " AND xmin = %s::xid RETURNING 1" if update_versioned else ""
        ctes.append(f"u AS (UPDATE {table} SET {assignments} WHERE {pk} = %s{version})")
    row_fields = []
    for i, model in enumerate(models):
        meta = model._meta
        fields = [f for f in meta.concrete_fields if not f.primary_key]
        placeholders, with_values = [], []
        for field in fields:
            placeholder = sql_for.get((i, field.attname), "%s")
            if "%s" in placeholder:
                with_values.append((field, field.attname, _plain_types(field)))
            for j in range(i):
                placeholder = placeholder.replace(f"{{r{j}}}", f"(SELECT id FROM r{j})")
            placeholders.append(placeholder)
        row_fields.append(with_values)
        insert = f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"
        if i and (unless_first_conflicts or update_versioned):
            values = f"SELECT {', '.join(placeholders)} FROM r0"  # no row when the first one conflicted
        elif update_versioned:
            values = f"SELECT {', '.join(placeholders)} FROM u"  # no row when the update matched none
        else:
            values = f"VALUES ({', '.join(placeholders)})"
        conflict = " ON CONFLICT DO NOTHING" if i == 0 and unless_first_conflicts else ""
        ctes.append(f"r{i} AS ({insert} {values}{conflict} RETURNING {quote(meta.pk.column)} AS id)")
    selects = ", ".join(f"(SELECT id FROM r{i})" for i in range(len(models)))
    return f"WITH {', '.join(ctes)} SELECT {selects}", update_fields, row_fields


try:
    _PreparingCursor = _preparing_cursor_class()
except ImportError:  # no PostgreSQL driver
    _PreparingCursor = None
