"""Throughput and memory of the CSV import (issue 3 target: 100,000 rows in under 60 s, memory flat).

Generates a CSV of `--rows` people (comma, UTF-8; a few percent of rows repeat an earlier person,
a few are invalid, every tenth has a historical outcome) and runs the import in-process on
PostgreSQL through the same services the Celery task calls (`import_job_create`, `import_start`,
`import_run`), then prints rows/s, the counts, and memory:

- peak RSS of the process (resource.getrusage) before the import and after it: flat memory means
  the import adds little to the baseline, whatever the file size (compare `--rows 20000`);
- with `--tracemalloc`, the peak of Python allocations during the import (slower run).

Usage (repository root; PostgreSQL at DATABASE_URL, default postgres://postgres@127.0.0.1:5432/leadops_bench_import):

    .venv/bin/python bench/import.py                # 100,000 rows
    .venv/bin/python bench/import.py --rows 20000 --tracemalloc
    .venv/bin/python bench/import.py --twice          # then the same file again: every row merges

The database (its name must contain "bench") is created if missing, migrated and emptied of leads
first. No Celery worker or broker is needed: the run is called directly (broker `memory://`).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import ensure_database  # noqa: E402  (bench/ is on sys.path)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    first = ["Ana", "Bruno", "Chloé", "Dmitri", "Eva", "Farid", "Greta", "Hiro", "Ines", "João", "Kofi", "Lena"]
    last = ["Silva", "Müller", "Dubois", "Rossi", "Nowak", "Tanaka", "Okafor", "Smith", "García", "Jensen"]
    industries = ["Software", "Banking", "Retail", "Manufacturing", "Healthcare", "Logistics"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Email", "Phone", "First name", "Last name", "Company", "Country", "Industry", "Plan", "Won"])
        for n in range(rows):
            person = n
            if n > 100 and rng.random() < 0.03:  # a returning person
                person = rng.randrange(n)
            email = f"person{person}@company{person % 5000}.example"
            if rng.random() < 0.01:
                email = f"not-an-email-{n}"
            phone = f"+4930{1000000 + person:07d}" if person % 4 == 0 else ""
            outcome = rng.choice(["won", "lost", "lost", "lost"]) if n % 10 == 0 else ""
            writer.writerow(
                [
                    email,
                    phone,
                    rng.choice(first),
                    rng.choice(last),
                    f"Company {person % 5000}",
                    rng.choice(["DE", "FR", "PT", "GB", "US"]),
                    rng.choice(industries),
                    rng.choice(["free", "team", "enterprise"]),
                    outcome,
                ]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--twice", action="store_true", help="then import the same file again (all merges)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadops_bench_import"),
    )
    args = parser.parse_args()
    ensure_database(args.database_url)

    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DJANGO_DEBUG="False",
        DATABASE_URL=args.database_url,
        REDIS_URL="",
        CELERY_BROKER_URL="memory://",
        DJANGO_MEDIA_ROOT=tempfile.mkdtemp(prefix="leadops-bench-media-"),
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    # A clean slate for leads and everything hanging off them.
    from django.db import connection

    from leads import imports
    from leads.models import Activity, ImportJob, IntakeSubmission, Lead, Source, StageChange

    tables = [m._meta.db_table for m in (IntakeSubmission, ImportJob, Lead, StageChange, Activity, Lead.tags.through)]
    with connection.cursor() as cursor:  # TRUNCATE: no rows loaded into this process, so RSS stays a baseline
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    user, _ = get_user_model().objects.get_or_create(username="bench-import")
    source, _ = Source.objects.get_or_create(name="Bench import")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "leads.csv"
        t0 = time.perf_counter()
        generate(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows ({size_mb:.1f} MB) in {time.perf_counter() - t0:.1f} s")
        rss_before = rss_mb()
        if args.tracemalloc:
            tracemalloc.start()
        job, elapsed, cpu = run_once(imports, user, source, path, args.batch_size)
        traced_peak = tracemalloc.get_traced_memory()[1] / 1e6 if args.tracemalloc else None
        rss_after = rss_mb()
        report("first import", job, elapsed, cpu)
        print(f"leads in database: {Lead.objects.count():,}")
        grew = rss_after - rss_before
        print(f"peak RSS: {rss_before:.0f} MB before the import, {rss_after:.0f} MB after (+{grew:.0f} MB)")
        first_ok = job.status == "completed" and elapsed < 60 and job.processed_rows >= 100_000
        if args.twice:
            again, elapsed2, cpu2 = run_once(imports, user, source, path, args.batch_size)
            report("same file again (every row a returning person)", again, elapsed2, cpu2)
    print(f"mapping: {job.mapping}")
    if traced_peak is not None:
        print(f"tracemalloc peak during the import: {traced_peak:.1f} MB")
    print(f"target (100,000 rows < 60 s): {'met' if first_ok else 'not met / not applicable'}")


def run_once(imports, user, source, path: Path, batch_size: int | None):
    from django.core.files import File

    with open(path, "rb") as fh:
        job = imports.import_job_create(user=user, upload=File(fh, name="leads.csv"), source=source)
    imports.import_start(job_id=job.pk, mapping=job.mapping, source=source)
    t0, cpu0 = time.perf_counter(), time.process_time()
    kwargs = {"batch_size": batch_size} if batch_size else {}
    while imports.import_run(job_id=job.pk, time_budget=3600, **kwargs):
        pass
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    job.refresh_from_db()
    return job, elapsed, cpu


def report(label: str, job, elapsed: float, cpu: float) -> None:
    print(
        f"{label}: {job.status}, {job.processed_rows:,} rows, created {job.created_count:,}, "
        f"merged {job.merged_count:,}, rejected {job.rejected_count:,}"
    )
    print(f"  elapsed {elapsed:.1f} s, {job.processed_rows / elapsed:,.0f} rows/s (CPU of this process {cpu:.1f} s)")
    print(f"  load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other jobs on the machine slow it)")


if __name__ == "__main__":
    main()
