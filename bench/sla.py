"""Response-SLA enforcement (issue 5 targets).

On a dedicated PostgreSQL database (its name must contain "bench"; it is emptied), with 10 teams,
200 reps and 100,000 then 1,000,000 leads, each with a response clock (99 % already touched, 1 %
running with a future deadline, 1,000 past due):

- find: the sweep's query (`clocks_due_for_update`: running clocks whose next step is due, through
  the partial index, FOR UPDATE SKIP LOCKED, LIMIT 500) — p50/p95, and its plan;
- throughput: 10,000 clocks fall due at once; `sla_steps_run` batches (breach recorded, manager
  notified in-app, alert row) until none is left, then every alert email (in-memory backend);
  also the reassignment rung (routing's lead_reassign per lead) on 300 clocks;
- delay: a real `celery worker` and `celery beat` (sweep every 15 s by default) on Redis against the
  bench database; 20 clocks fall due over a minute; the delay from each deadline to its breach.

Usage (repository root):

    .venv/bin/python bench/sla.py
    .venv/bin/python bench/sla.py --big 200000 --skip-delay     # quicker
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import ensure_database, leads_insert_series, percentile  # noqa: E402  (bench/ is on sys.path)


def setup_org() -> None:
    from django.contrib.auth import get_user_model

    from routing.models import RepProfile, Team
    from routing.selectors import routing_rule_fallback_ensure

    User = get_user_model()
    managers = User.objects.bulk_create(
        [User(username=f"bench-manager-{i}", email=f"m{i}@bench.example") for i in range(10)]
    )
    teams = Team.objects.bulk_create([Team(name=f"Bench team {i}", manager=managers[i]) for i in range(10)])
    users = User.objects.bulk_create(
        [User(username=f"bench-rep-{i}", email=f"rep{i}@bench.example") for i in range(200)]
    )
    RepProfile.objects.bulk_create(
        [
            RepProfile(user=u, team=teams[i % 10], work_days=list(range(7)), capacity=1_000_000, daily_cap=1_000_000)
            for i, u in enumerate(users)
        ]
    )
    routing_rule_fallback_ensure()


def fill(target: int) -> None:
    """Leads up to `target`, each with an owner and one response clock, in set-based SQL."""
    from django.db import connection

    from leads.models import Lead

    current = Lead.objects.count()
    if current >= target:
        return
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM leads_lead")
        last_id = cursor.fetchone()[0]
        cursor.execute("SELECT user_id FROM routing_repprofile ORDER BY id")
        user_ids = [row[0] for row in cursor.fetchall()]
        expressions = {
            "created_at": "now() - (g || ' seconds')::interval",
            "updated_at": "now()",
            "email": "'p' || g || '@c' || (g %% 5000) || '.example'",
            "email_normalized": "'p' || g || '@c' || (g %% 5000) || '.example'",
            "last_name": "'Last ' || g",
            "company_name": "'Company ' || (g %% 5000)",
            "country": "(ARRAY['DE','FR','US','GB','ES'])[1 + g %% 5]",
            "stage": "'working'",
            "owner_id": "(%s::bigint[])[1 + g %% %s]",
            "assigned_at": "now()",
            "score": "g %% 100",
            "enriched_at": "now()",
        }
        leads_insert_series(cursor, expressions=expressions, owner_user_ids=user_ids, first=current + 1, last=target)
        # One clock per new lead: 99 % touched (done), 1 % running with a deadline hours ahead,
        # and every 1,000th of those 1 % already past due (1,000 at 1M leads).
        cursor.execute(
            """
            INSERT INTO routing_responseclock (lead_id, rep_id, team_id, escalation, status, started_at, warn_at,
                due_at, escalate_at, next_action_at, first_touch_at, time_to_first_touch)
            SELECT l.id, r.id, r.team_id, 'notify',
                CASE WHEN l.id %% 100 = 0 THEN 'open' ELSE 'touched' END,
                l.created_at, l.created_at + interval '4 minutes', l.created_at + interval '5 minutes',
                l.created_at + interval '10 minutes',
                CASE WHEN l.id %% 1000 = 0 THEN now() - interval '1 minute'
                     WHEN l.id %% 100 = 0 THEN now() + (l.id %% 7200 || ' seconds')::interval + interval '1 hour'
                     ELSE NULL END,
                CASE WHEN l.id %% 100 = 0 THEN NULL ELSE l.created_at + (l.id %% 600 || ' seconds')::interval END,
                CASE WHEN l.id %% 100 = 0 THEN NULL ELSE (l.id %% 600 || ' seconds')::interval END
            FROM leads_lead l JOIN routing_repprofile r ON r.user_id = l.owner_id
            WHERE l.id > %s
            """,
            [last_id],
        )
        cursor.execute("VACUUM ANALYZE leads_lead")
        cursor.execute("VACUUM ANALYZE routing_responseclock")
    print(f"  filled {current:,} -> {target:,} leads and clocks in {time.perf_counter() - t0:.1f} s")


def measure_find(label: str, repeats: int = 200, due_count: int = 500) -> None:
    """Exactly `due_count` clocks due at every size: the index read of their ids (finding them), and
    the sweep's own statement (lock with SKIP LOCKED + read the batch, rolled back each time)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from routing.locks import clocks_due_for_update
    from routing.models import RUNNING_CLOCK_STATUSES, ResponseClock
    from routing.services.sla import DUE_CLOCK_COLUMNS

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE routing_responseclock SET next_action_at = now() + interval '1 hour' "
            "WHERE status = 'open' AND next_action_at <= now()"
        )
        cursor.execute(
            "UPDATE routing_responseclock SET next_action_at = now() - interval '1 minute' WHERE id IN "
            "(SELECT id FROM routing_responseclock WHERE status = 'open' ORDER BY random() LIMIT %s)",
            [due_count],
        )
        cursor.execute("ANALYZE routing_responseclock")
    find, lock = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ids = list(
            ResponseClock.objects.filter(
                status__in=RUNNING_CLOCK_STATUSES, next_action_at__isnull=False, next_action_at__lte=timezone.now()
            )
            .order_by("next_action_at", "id")
            .values_list("id", flat=True)[:500]
        )
        find.append(time.perf_counter() - t0)
        with transaction.atomic():
            t0 = time.perf_counter()
            # The lock queryset as routing defines it, read as the sweep reads it.
            rows = list(clocks_due_for_update(now=timezone.now(), limit=500).values_list(*DUE_CLOCK_COLUMNS))
            lock.append(time.perf_counter() - t0)
            transaction.set_rollback(True)
    with transaction.atomic(), connection.cursor() as cursor:
        sql, params = clocks_due_for_update(now=timezone.now(), limit=500).query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = " / ".join(row[0].strip() for row in cursor.fetchall() if "Index" in row[0] or "Scan" in row[0])
    total = ResponseClock.objects.count()
    for name, timings in (("find due ids (index read)", find), ("sweep statement (lock + read batch)", lock)):
        ms = [t * 1000 for t in timings]
        print(
            f"  {name} [{label}: {total:,} clocks, {len(ids)}/{len(rows)} due]: "
            f"p50 {percentile(ms, 50):.2f} ms, p95 {percentile(ms, 95):.2f} ms, max {max(ms):.2f} ms"
        )
    print(f"    plan: {plan[:200]}")


def measure_throughput(count: int = 10_000) -> None:
    from django.core import mail
    from django.db import connection
    from django.utils import timezone

    from routing.models import ClockStatus, ResponseClock
    from routing.services.sla import sla_alert_emails_send, sla_clock_escalate, sla_steps_run

    # Clear the 1,000 due clocks of the fill, then make `count` touched clocks fall due together.
    while sla_steps_run(batch_size=1000).found:
        pass
    sla_alert_emails_send(limit=100_000)
    for batch_size in (500, 1000):
        now = timezone.now()
        with connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE routing_responseclock SET status = 'open', first_touch_at = NULL, time_to_first_touch = NULL,
                    warned_at = %s, warn_at = %s, due_at = %s, escalate_at = %s, next_action_at = %s,
                    escalation = 'notify', breached_at = NULL, escalated_at = NULL
                WHERE id IN (SELECT id FROM routing_responseclock c WHERE status = 'touched' AND NOT EXISTS
                    (SELECT 1 FROM routing_responseclock o WHERE o.lead_id = c.lead_id AND o.status = 'open')
                    ORDER BY id LIMIT %s)
                """,
                [now, now, now, now + timezone.timedelta(hours=1), now, count],
            )
            cursor.execute("ANALYZE routing_responseclock")
        sla_alert_emails_send(limit=100_000)
        t0 = time.perf_counter()
        batches = steps = 0
        while True:
            result = sla_steps_run(batch_size=batch_size)
            if not result.found:
                break
            batches += 1
            steps += result.breached
        elapsed = time.perf_counter() - t0
        print(
            f"  escalation (breach recorded + manager notified in-app), {steps:,} clocks due at once, "
            f"batches of {batch_size}: {elapsed:.2f} s = {steps / elapsed:,.0f} /s ({batches} batches)"
        )
    mail.outbox = []
    t0 = time.perf_counter()
    sent = 0
    while n := sla_alert_emails_send(limit=500):
        sent += n
    elapsed = time.perf_counter() - t0
    print(f"  alert emails (in-memory backend) {sent:,}: {elapsed:.2f} s = {sent / elapsed:,.0f} /s")

    # The reassignment rung: clocks in ESCALATING, each reassigned by routing's lead_reassign.
    ids = list(
        ResponseClock.objects.filter(status=ClockStatus.OPEN, breached_at__isnull=False)
        .order_by("id")
        .values_list("id", flat=True)[:300]
    )
    ResponseClock.objects.filter(pk__in=ids).update(status=ClockStatus.ESCALATING, escalation="reassign")
    t0 = time.perf_counter()
    moved = sum(sla_clock_escalate(clock_id=i) is not None for i in ids)
    elapsed = time.perf_counter() - t0
    print(f"  reassignment rung (lead_reassign per lead): {moved} in {elapsed:.2f} s = {moved / elapsed:,.0f} /s")
    ResponseClock.objects.filter(status=ClockStatus.OPEN).update(status=ClockStatus.TOUCHED, next_action_at=None)


def measure_delay(database_url: str, broker_url: str, interval: int, count: int = 20, spread: int = 60) -> None:
    from django.db import connection
    from django.utils import timezone

    from routing.models import ResponseClock

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": "False",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "REDIS_URL": "",
        "EMAIL_URL": "dummymail://",
        "DJANGO_SLA_SWEEP_SECONDS": str(interval),
        "DJANGO_ENRICHMENT_SWEEP_SECONDS": "3600",
    }
    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "config", "purge", "-f"], env=env, cwd=ROOT, capture_output=True
    )
    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    schedule = var / "bench-sla-beat"
    for stale in var.glob("bench-sla-beat*"):
        stale.unlink()
    logs = [open(var / "bench-sla-worker.log", "w"), open(var / "bench-sla-beat.log", "w")]  # noqa: SIM115
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "-n",
            f"bench-sla-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],
        env=env,
        cwd=ROOT,
        stdout=logs[0],
        stderr=subprocess.STDOUT,
    )
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "beat", "-s", str(schedule), "--loglevel=INFO"],
        env=env,
        cwd=ROOT,
        stdout=logs[1],
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(5)
        now = timezone.now()
        with connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE routing_responseclock SET status = 'open', first_touch_at = NULL, time_to_first_touch = NULL,
                    warned_at = %s, breached_at = NULL, warn_at = %s,
                    due_at = %s + ((rn - 1) * %s || ' seconds')::interval,
                    next_action_at = %s + ((rn - 1) * %s || ' seconds')::interval,
                    escalate_at = %s + interval '1 hour', escalation = 'notify'
                FROM (SELECT id AS cid, row_number() OVER (ORDER BY id) AS rn FROM (SELECT id FROM routing_responseclock
                      WHERE status = 'touched' ORDER BY id DESC LIMIT %s) AS last_ones) AS picked
                WHERE id = picked.cid
                """,
                [
                    now,
                    now,
                    now + timezone.timedelta(seconds=5),
                    spread / count,
                    now + timezone.timedelta(seconds=5),
                    spread / count,
                    now,
                    count,
                ],
            )
        deadline = time.monotonic() + spread + 5 + interval * 2 + 20
        clocks = ResponseClock.objects.filter(status="open", escalate_at__lt=now + timezone.timedelta(hours=2))
        while time.monotonic() < deadline and clocks.filter(breached_at__isnull=True).exists():
            time.sleep(1)
        delays = [(c.breached_at - c.due_at).total_seconds() for c in clocks if c.breached_at]
        missing = clocks.filter(breached_at__isnull=True).count()
        print(
            f"  deadline -> breach with worker + beat every {interval} s: n={len(delays)} (missing {missing}), "
            f"mean {statistics.fmean(delays):.1f} s, p95 {percentile(delays, 95):.1f} s, max {max(delays):.1f} s"
        )
    finally:
        for process in (beat, worker):
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()
        for stale in var.glob("bench-sla-beat*"):
            stale.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--interval", type=int, default=15)
    parser.add_argument("--skip-delay", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="keep the filled database, measure again")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadops_bench_sla"),
    )
    parser.add_argument("--broker-url", default=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/12"))
    args = parser.parse_args()
    ensure_database(args.database_url)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DJANGO_DEBUG="False",
        DATABASE_URL=args.database_url,
        REDIS_URL="",
        CELERY_BROKER_URL="memory://",
        EMAIL_URL="memorymail://",
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    if args.reuse:
        print(f"reusing the filled database; PostgreSQL {connection.pg_version}")
        with connection.cursor() as cursor:  # back to 1 % running (one clock per lead), the rest touched
            cursor.execute(
                "UPDATE routing_responseclock SET status = 'touched', next_action_at = NULL "
                "WHERE status IN ('open', 'escalating')"
            )
            cursor.execute(
                "UPDATE routing_responseclock SET status = 'open', next_action_at = now() + interval '1 hour', "
                "warned_at = NULL, breached_at = NULL, escalated_at = NULL WHERE id IN "
                "(SELECT max(id) FROM routing_responseclock WHERE lead_id % 100 = 0 GROUP BY lead_id)"
            )
        measure_find(f"{args.big:,} leads")
        measure_throughput(args.due)
        if not args.skip_delay:
            measure_delay(args.database_url, args.broker_url, args.interval)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE leads_lead, routing_responseclock, routing_slaalert, routing_assignment, routing_queueentry, "
            "routing_routingrule, routing_ruleaction, routing_queue, routing_repprofile, routing_team, "
            "core_notification CASCADE"
        )
        cursor.execute("DELETE FROM auth_user WHERE username LIKE 'bench-%%'")
    setup_org()
    print(f"10 teams, 200 reps; PostgreSQL {connection.pg_version}")
    for size in (args.small, args.big):
        fill(size)
        measure_find(f"{size:,} leads")
    measure_throughput(args.due)
    if not args.skip_delay:
        measure_delay(args.database_url, args.broker_url, args.interval)


if __name__ == "__main__":
    main()
