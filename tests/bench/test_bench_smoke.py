"""Every script of bench/ runs at tiny sizes and prints its figures: a change of the app that breaks
a benchmark (an import, a service's signature) fails `make test` instead of the next person who
measures. The figures themselves are not judged here (a second of load on two busy cores says
nothing); only that the script finished (exit 0) and printed them.

Each script runs as a subprocess on its own throwaway database,
`leadops_bench_smoke_<pid>_<start time>_<script>` (so two test runs at once never share one), copied
from a template migrated once per run and dropped afterwards; what a killed run left behind is
dropped by a later run once it is an hour old. Needs PostgreSQL and Redis, like the scripts."""

import importlib.util
import os
import re
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import requires_postgres, requires_redis

pytestmark = [requires_postgres, requires_redis, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "leadops_bench_smoke_"
RUN = f"{PREFIX}{os.getpid()}_{int(time.time())}"
LEFTOVER_AGE = 3600  # seconds: a smoke run takes about a minute
# The smoke runs' own Redis databases: not the bench's (4, 5, 12) nor the test suite's (14, 15).
REDIS_CACHE_DB, REDIS_BROKER_DB = 6, 7


def _admin():
    import psycopg

    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=int(db["PORT"] or 5432),
        user=db["USER"] or "postgres",
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )


def _database_url(name: str) -> str:
    db = settings.DATABASES["default"]
    user = urllib.parse.quote(db["USER"] or "postgres")
    password = f":{urllib.parse.quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    return f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"


def _redis_url(db: int) -> str:
    url = urllib.parse.urlsplit(settings.REDIS_URL)
    return f"redis://{url.hostname or '127.0.0.1'}:{url.port or 6379}/{db}"


def _drop(conn, name: str) -> None:
    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _drop_leftovers(conn) -> None:
    """Databases of earlier smoke runs that were killed before their clean-up."""
    rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [f"{PREFIX}%"]).fetchall()
    for (name,) in rows:
        started = re.fullmatch(rf"{PREFIX}\d+_(\d+)_\w+", name)
        if started and time.time() - int(started[1]) > LEFTOVER_AGE:
            _drop(conn, name)


def _clean_env() -> dict[str, str]:
    """This process's environment without the test run's settings: each script sets its own."""
    prefixes = ("DJANGO_", "DATABASE_", "REDIS_", "CELERY_", "BENCH_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


@pytest.fixture(scope="module")
def template_database() -> Iterator[str]:
    """One migrated database per test run; each script gets a copy (CREATE DATABASE ... TEMPLATE is
    far quicker than migrating four times)."""
    name = f"{RUN}_template"
    with _admin() as conn:
        _drop_leftovers(conn)
        _drop(conn, name)
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {
            **_clean_env(),
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DJANGO_DEBUG": "False",
            "DATABASE_URL": _database_url(name),
            "REDIS_URL": "",
            "CELERY_BROKER_URL": "memory://",
        }
        done = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"migrating the template failed:\n{done.stdout}\n{done.stderr}"
        yield name
    finally:
        with _admin() as conn:
            _drop(conn, name)


@pytest.fixture
def bench_database(template_database: str, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"{RUN}_{request.node.name.removeprefix('test_')}"[:63]
    with _admin() as conn:
        _drop(conn, name)
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    try:
        yield _database_url(name)
    finally:
        with _admin() as conn:
            _drop(conn, name)


def run_bench(script: str, *args: str, timeout: float = 90) -> str:
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, f"bench/{script}", *args],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = f"{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, f"bench/{script} exited {done.returncode}:\n{output[-4000:]}"
    print(f"bench/{script} {' '.join(args)}: {time.monotonic() - t0:.1f} s\n{done.stdout}")
    return done.stdout


NUMBER = r"\d[\d,]*(?:\.\d+)?"


def test_intake(bench_database):
    # when: every scenario, 1 s each, from 1 and from 8 clients, on 2 gunicorn workers
    out = run_bench(
        "intake.py",
        *("--seconds", "1", "--warmup", "0.3", "--clients", "1,8", "--workers", "2", "--pool", "5"),
        *("--database-url", bench_database),
        *("--redis-url", _redis_url(REDIS_CACHE_DB), "--broker-url", _redis_url(REDIS_BROKER_DB)),
    )
    # then: a table row per scenario, the ratios, every target judged, and no request failed
    for scenario in ("intake, unique people", "intake, repeated people", "reference (DRF write)"):
        for clients in ("1 client", "8 clients"):
            assert re.search(rf"^{re.escape(f'{scenario}, {clients}')} +{NUMBER} +{NUMBER}", out, re.M), scenario
    assert re.search(rf"intake \(unique people\) / reference at 8 clients: {NUMBER}x", out)
    assert re.search(rf"intake \(unique people\) / reference p99 at 1 client: {NUMBER}x", out)
    assert len(re.findall(r"^  \[(?:pass|FAIL)\] ", out, re.M)) == 4
    assert "[pass] zero errors in every scenario" in out


def test_routing(bench_database):
    # when
    out = run_bench(
        "routing.py",
        *("--small", "100", "--big", "300", "--samples", "20", "--claim-leads", "30", "--claim-threads", "2"),
        *("--database-url", bench_database),
    )
    # then
    for size in ("100", "300"):
        assert re.search(rf"decision \({size} leads\) +n= +20 +p50= *{NUMBER} ms +p95= *{NUMBER} ms", out)
        assert re.search(rf"decision \({size} leads\).*queries/decision max={NUMBER}", out)
        assert re.search(rf"push lead_route \({size} leads\) +n= +20 +p50= *{NUMBER} ms", out)
    for mode in ("next", "same-list"):
        assert re.search(rf"claims \({mode} *\) 2 reps: 30 leads in {NUMBER} s = {NUMBER} claims/s", out)
    assert "every lead once: False" not in out


def test_sla(bench_database):
    # when: the delay part (a real worker and beat, a minute) is skipped
    out = run_bench(
        "sla.py", *("--small", "1000", "--big", "2000", "--due", "50", "--skip-delay"), "--database-url", bench_database
    )
    # then
    for size in ("1,000", "2,000"):
        assert re.search(rf"find due ids \(index read\) \[{size} leads: .*p95 {NUMBER} ms", out)
        assert re.search(rf"sweep statement \(lock \+ read batch\) \[{size} leads: .*p95 {NUMBER} ms", out)
    assert re.search(rf"escalation .* 50 clocks due at once, batches of 500: {NUMBER} s", out)
    assert re.search(rf"alert emails \(in-memory backend\) {NUMBER}: {NUMBER} s", out)
    assert re.search(rf"reassignment rung \(lead_reassign per lead\): {NUMBER} in {NUMBER} s", out)


def test_import(bench_database):
    # when
    out = run_bench("import.py", "--rows", "200", "--twice", "--database-url", bench_database)
    # then
    assert re.search(rf"first import: completed, 200 rows, created {NUMBER}, merged {NUMBER}", out)
    assert re.search(rf"same file again .*: completed, 200 rows, created 0, merged {NUMBER}", out)
    assert re.search(rf"elapsed {NUMBER} s, {NUMBER} rows/s", out)
    assert re.search(rf"peak RSS: {NUMBER} MB before the import", out)


# --- intake.py --check: the targets are ratios to the reference of the same run ----------------


def _intake_module():
    spec = importlib.util.spec_from_file_location("bench_intake", ROOT / "bench" / "intake.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _figures(intake, *, rps: float, p99: float, errors: int = 0):
    figures = intake.Figures(seconds=10.0, errors=errors, latencies_ms=[p99] * 100)
    figures.requests = round(rps * 10) + errors
    figures.ok = figures.requests - errors
    return figures


@pytest.mark.parametrize(
    ("unique_8", "unique_1", "errors", "verdicts"),
    [
        ((400.0, 24.0), (200.0, 6.0), 0, [True, True, True, True]),  # 0.5x, 1.2x, 1.2x
        ((300.0, 24.0), (200.0, 6.0), 0, [False, True, True, True]),  # 0.375x req/s
        ((400.0, 31.0), (200.0, 7.6), 0, [True, False, False, True]),  # 1.55x, 1.52x p99
        ((400.0, 24.0), (200.0, 6.0), 1, [True, True, True, False]),
    ],
)
def test_intake_check_judges_ratios_to_the_reference(unique_8, unique_1, errors, verdicts):
    # given: a reference of 800 req/s, p99 20 ms at 8 clients and 5 ms at 1
    intake = _intake_module()
    plan = {(s.kind, s.clients): s for s in intake.scenarios([1, 8], set())}
    results = {
        plan["reference", 8]: _figures(intake, rps=800.0, p99=20.0),
        plan["reference", 1]: _figures(intake, rps=400.0, p99=5.0),
        plan["unique", 8]: _figures(intake, rps=unique_8[0], p99=unique_8[1], errors=errors),
        plan["unique", 1]: _figures(intake, rps=unique_1[0], p99=unique_1[1]),
        plan["repeat", 8]: _figures(intake, rps=1.0, p99=1000.0),  # not a target
    }
    # when
    checks = intake.target_checks(results)
    # then
    assert [met for _, met in checks] == verdicts


def test_intake_check_fails_a_target_it_did_not_measure():
    # given: 1 client only, so nothing at 8 clients
    intake = _intake_module()
    plan = {(s.kind, s.clients): s for s in intake.scenarios([1], set())}
    results = {
        plan["reference", 1]: _figures(intake, rps=400.0, p99=5.0),
        plan["unique", 1]: _figures(intake, rps=200.0, p99=6.0),
    }
    # when
    checks = dict(intake.target_checks(results))
    # then
    assert checks == {
        "throughput >= 0.4x the reference at 8 clients: not measured (needs unique and reference at 8 clients)": False,
        "p99 <= 1.5x the reference p99 at 8 clients: not measured (needs unique and reference at 8 clients)": False,
        "p99 <= 1.5x the reference p99 at 1 client: 6.0 / 5.0 ms = 1.20x": True,
        "zero errors in every scenario: 0 error(s)": True,
    }
