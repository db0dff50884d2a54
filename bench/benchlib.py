"""What the benchmark scripts share: percentiles, their own PostgreSQL database, and filling the
lead table with set-based SQL."""

import subprocess
import sys


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ensure_database(url: str) -> None:
    """Create the benchmark's database if missing; refuse any database not named for benchmarks."""
    name = url.rsplit("/", 1)[-1]
    if "bench" not in name:
        sys.exit("refusing: the database name must contain 'bench' (it is emptied)")
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    exists = subprocess.run(
        ["psql", admin_url, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not exists:
        subprocess.run(["psql", admin_url, "-qc", f'CREATE DATABASE "{name}"'], check=True)


def leads_insert_series(
    cursor, *, expressions: dict[str, str], owner_user_ids: list[int], first: int, last: int
) -> None:
    """INSERT leads numbered `first`..`last` with `generate_series` (`g`). Columns in `expressions` get
    those SQL expressions (`owner_id` may use `(%s::bigint[])[1 + g %% %s]`, filled from
    `owner_user_ids`); every other column its model default, so benchmarks keep working as the lead
    model grows."""
    from django.db import connection

    from leads.models import Lead

    columns, values, params = [], [], []
    for field in Lead._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(field.column)
        if field.attname in expressions:
            values.append(expressions[field.attname])
            if field.attname == "owner_id":
                params += [owner_user_ids, len(owner_user_ids)]
        elif field.null:
            values.append("NULL")
        else:
            values.append("%s")
            params.append(field.get_db_prep_save(field.get_default(), connection))
    cursor.execute(
        f"INSERT INTO leads_lead ({', '.join(columns)}) SELECT {', '.join(values)} FROM generate_series(%s, %s) AS g",
        [*params, first, last],
    )
