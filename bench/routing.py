"""Routing decision time and claim throughput (issue 4 target: a decision in under 5 ms at p95,
independent of the number of leads).

Sets up 200 reps in 10 teams with skills and territories, 50 routing rules (49 + the fallback; a mix
of round-robin, weighted, load-balanced, territory, skill, account-owner and pull-queue actions, with
conditions on fields, custom fields and score), then measures at 10,000 leads and again at
1,000,000 leads in the database:

- decision: `routing_decide` (rules + candidates + choice; what a dry run does) on varied sample
  leads, p50/p95/p99 and queries per decision;
- push: `lead_route` for a freshly inserted lead inside a transaction that is rolled back (the
  work the intake transaction adds: decision, capacity UPDATE, owner, assignment, activity);
- claims: 5,000 queued leads, 16 reps in threads claiming at once — with `lead_claim_next`
  (SKIP LOCKED) and with everybody clicking the top rows of the same list (`lead_claim`, many 409s).

Usage (repository root; PostgreSQL at --database-url, its name must contain "bench"; it is emptied):

    .venv/bin/python bench/routing.py
    .venv/bin/python bench/routing.py --big 200000 --samples 1000   # a quicker run
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import ensure_database, leads_insert_series, percentile  # noqa: E402  (bench/ is on sys.path)

COUNTRIES = ["DE", "AT", "CH", "FR", "IT", "ES", "GB", "US", "CA", "SE", "NL", "PL", "BR", "JP", "IN"]
INDUSTRIES = ["Software", "Banking", "Retail", "Manufacturing", "Healthcare", "Logistics", "Energy", "Media"]
SIZES = ["1-10", "11-50", "51-200", "201-1000", "1001-5000", "5000+"]
LANGUAGES = ["en", "de", "fr", "es", "it", "ja", "pt"]
PRODUCTS = ["cloud", "analytics", "security", "payments"]


def summary(label: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{label:<34} n={len(ms):>5}  p50={percentile(ms, 50):6.2f} ms  p95={percentile(ms, 95):6.2f} ms  "
        f"p99={percentile(ms, 99):6.2f} ms  mean={statistics.fmean(ms):6.2f} ms"
    )


def setup_org(rng: random.Random) -> None:
    """200 reps in 10 teams, 20 territories, 50 rules."""
    import datetime

    from django.contrib.auth import get_user_model

    from routing.models import Method, Queue, RepProfile, RoutingRule, RuleAction, Team, Territory
    from routing.selectors import routing_rule_fallback_ensure

    User = get_user_model()
    teams = [Team.objects.create(name=f"Team {i}") for i in range(10)]
    territories = [
        Territory.objects.create(
            name=f"Territory {i}",
            countries=rng.sample(COUNTRIES, 2),
            industries=rng.sample(INDUSTRIES, 3) if i % 3 == 0 else [],
            postal_prefixes=[str(i % 10)] if i % 4 == 0 else [],
        )
        for i in range(20)
    ]
    users = User.objects.bulk_create(
        [User(username=f"bench-rep-{i}", email=f"rep{i}@bench.example") for i in range(200)]
    )
    reps = RepProfile.objects.bulk_create(
        [
            RepProfile(
                user=user,
                team=teams[i % 10],
                weight=1 + i % 3,
                capacity=10_000_000,
                daily_cap=10_000_000,
                work_days=list(range(7)),
                work_start=datetime.time(0),
                work_end=datetime.time(0),
                is_available=i % 17 != 0,  # some unavailable: eligibility does work
                languages=rng.sample(LANGUAGES, 2),
                products=rng.sample(PRODUCTS, 2),
                industries=rng.sample(INDUSTRIES, 3),
                segments=rng.sample(SIZES, 3),
            )
            for i, user in enumerate(users)
        ]
    )
    through = RepProfile.territories.through
    through.objects.bulk_create(
        [through(repprofile_id=rep.pk, territory_id=territories[i % 20].pk) for i, rep in enumerate(reps)]
    )
    queues = [Queue.objects.create(name=f"Queue {i}", team=teams[i % 10]) for i in range(5)]
    methods = [Method.ROUND_ROBIN, Method.WEIGHTED, Method.LOAD_BALANCED, Method.TERRITORY, Method.SKILL]
    for n in range(49):
        kind = n % 7
        if kind == 0:
            conditions = [{"field": "country", "op": "in", "value": rng.sample(COUNTRIES, 2)}]
        elif kind == 1:
            conditions = [
                {"field": "industry", "op": "equals", "value": rng.choice(INDUSTRIES)},
                {"field": "score", "op": "gt", "value": rng.randint(50, 90)},
            ]
        elif kind == 2:
            conditions = [{"field": "custom_fields.product", "op": "equals", "value": rng.choice(PRODUCTS)}]
        elif kind == 3:
            conditions = [{"field": "title", "op": "matches", "value": r"^(vp|head|chief)"}]
        elif kind == 4:
            conditions = [
                {"field": "company_size", "op": "in", "value": rng.sample(SIZES, 2)},
                {"field": "country", "op": "not_in", "value": ["US", "CA"]},
            ]
        elif kind == 5:
            conditions = [{"field": "email_domain", "op": "contains", "value": f"company{n}"}]
        else:
            conditions = [{"field": "custom_fields.budget", "op": "gt", "value": rng.randint(10_000, 90_000)}]
        rule = RoutingRule.objects.create(
            name=f"Rule {n}",
            position=(n + 1) * 10,
            queue=queues[n % 5],
            conditions=conditions,
            match="all" if n % 2 else "any",
            split_percent=30 if n % 10 == 0 else 0,
        )
        method = Method.ACCOUNT_OWNER if n == 13 else Method.QUEUE if n == 27 else methods[n % 5]
        RuleAction.objects.create(rule=rule, arm="A", method=method, team=teams[n % 10], queue=queues[n % 5])
        if rule.split_percent:
            RuleAction.objects.create(rule=rule, arm="B", method=Method.LOAD_BALANCED, team=teams[(n + 1) % 10])
    routing_rule_fallback_ensure()


def sample_leads(rng: random.Random, count: int) -> list:
    from leads.models import Lead

    titles = ["VP Sales", "Head of IT", "Engineer", "Chief Data Officer", "Analyst", "Office manager"]
    leads = []
    for i in range(count):
        email = f"sample{i}@company{rng.randrange(200)}.example"
        leads.append(
            Lead(
                email=email,
                email_normalized=email,
                country=rng.choice(COUNTRIES),
                industry=rng.choice(INDUSTRIES),
                company_size=rng.choice(SIZES),
                title=rng.choice(titles),
                postal_code=f"{rng.randrange(100000):05d}",
                score=rng.randrange(100),
                custom_fields={"product": rng.choice(PRODUCTS), "budget": rng.randrange(100_000)},
            )
        )
    return leads


def fill_leads(target: int) -> None:
    """Bring leads (and one assignment each) up to `target` rows with set-based SQL."""
    from django.db import connection

    from leads.models import Lead

    current = Lead.objects.count()
    if current >= target:
        return
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM auth_user WHERE username LIKE 'bench-rep-%%' ORDER BY id")
        user_ids = [row[0] for row in cursor.fetchall()]
        # Expressions for the columns that matter; every other column gets its model default, so the
        # bench keeps working when the lead model grows.
        expressions = {
            "created_at": "now() - (g || ' minutes')::interval",
            "updated_at": "now()",
            "email": "'p' || g || '@c' || (g %% 5000) || '.example'",
            "email_normalized": "'p' || g || '@c' || (g %% 5000) || '.example'",
            "last_name": "'Last ' || g",
            "company_name": "'Company ' || (g %% 5000)",
            "company_domain": "'c' || (g %% 5000) || '.example'",
            "industry": "'Software'",
            "company_size": "'51-200'",
            "country": "(ARRAY['DE','FR','US','GB','ES'])[1 + g %% 5]",
            "stage": "(ARRAY['new','working','mql','won','lost'])[1 + g %% 5]",
            "owner_id": "(%s::bigint[])[1 + g %% %s]",
            "assigned_at": "now()",
            "score": "g %% 100",
            "enriched_at": "now()",
        }
        leads_insert_series(cursor, expressions=expressions, owner_user_ids=user_ids, first=current + 1, last=target)
        cursor.execute(
            """
            INSERT INTO routing_assignment (lead_id, rep_id, method, arm, candidates, reason, created_at, rule_name,
                notify_attempts, notify_error)
            SELECT l.id, r.id, 'round_robin', '', '[]'::jsonb, 'bench', l.created_at, 'Rule 0', 0, ''
            FROM leads_lead l JOIN routing_repprofile r ON r.user_id = l.owner_id
            WHERE NOT EXISTS (SELECT 1 FROM routing_assignment a WHERE a.lead_id = l.id)
            """
        )
    with connection.cursor() as cursor:  # so autovacuum does not start in the middle of a measurement
        cursor.execute("VACUUM ANALYZE leads_lead")
        cursor.execute("VACUUM ANALYZE routing_assignment")
    print(f"  filled leads {current:,} -> {target:,} in {time.perf_counter() - t0:.1f} s (with VACUUM ANALYZE)")


def measure_decisions(samples: list, label: str) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from routing.services import routing_decide

    for lead in samples[:50]:  # warm-up
        routing_decide(lead=lead, now=timezone.now())
    times, queries = [], []
    for lead in samples:
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            routing_decide(lead=lead, now=timezone.now())
            times.append(time.perf_counter() - t0)
        queries.append(len(captured))
    load = os.getloadavg()[0]
    print(summary(f"decision ({label})", times) + f"  queries/decision max={max(queries)}  load={load:.1f}")


def measure_push(samples: list, label: str) -> None:
    from django.db import transaction

    from leads.models import Lead
    from routing.services import lead_route

    times = []
    for i, sample in enumerate(samples):
        with transaction.atomic():
            sample.pk = None
            sample.email = sample.email_normalized = f"push{i}-{time.time_ns()}@bench.example"
            lead = Lead.objects.create(
                **{f.attname: getattr(sample, f.attname) for f in Lead._meta.concrete_fields if f.attname != "id"}
            )
            t0 = time.perf_counter()
            lead_route(lead=lead)
            times.append(time.perf_counter() - t0)
            transaction.set_rollback(True)
    print(summary(f"push lead_route ({label})", times) + f"  load={os.getloadavg()[0]:.1f}")


def measure_claims(*, leads_count: int, threads: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from core.exceptions import ApplicationError
    from leads.models import Lead
    from routing.models import Queue, QueueEntry, RepProfile
    from routing.selectors import queue_list_for_rep
    from routing.services import lead_claim, lead_claim_next

    reps = list(RepProfile.objects.select_related("user").order_by("pk")[:threads])
    queue = Queue.objects.create(name=f"Bench claims {time.time_ns()}")  # open to every rep

    for mode in ("next", "same-list"):
        now = timezone.now()
        ids = list(
            Lead.objects.filter(owner__isnull=True)
            .exclude(queue_entry__isnull=False)
            .values_list("pk", flat=True)[:leads_count]
        )
        if len(ids) < leads_count:
            new = Lead.objects.bulk_create(
                [
                    Lead(
                        email=f"q{mode}{i}-{time.time_ns()}@bench.example",
                        email_normalized=f"q{mode}{i}-{time.time_ns()}@bench.example",
                        score=i % 100,
                    )
                    for i in range(leads_count - len(ids))
                ]
            )
            ids += [lead.pk for lead in new]
        QueueEntry.objects.filter(queue=queue).delete()
        QueueEntry.objects.bulk_create(
            [QueueEntry(lead_id=pk, queue=queue, score=pk % 100, enqueued_at=now, due_at=now) for pk in ids]
        )
        outcomes = {"claimed": 0, "conflict": 0}
        lock = threading.Lock()
        barrier = threading.Barrier(threads)

        def work(rep, mode=mode, outcomes=outcomes, lock=lock, barrier=barrier) -> None:
            try:
                barrier.wait()
                while True:
                    if mode == "next":
                        lead = lead_claim_next(rep=rep)
                        if lead is None:
                            return
                        result = "claimed"
                    else:
                        visible = [e.lead_id for e in queue_list_for_rep(rep=rep, limit=10)]
                        if not visible:
                            return
                        try:
                            lead_claim(rep=rep, lead_id=random.choice(visible))
                            result = "claimed"
                        except ApplicationError:
                            result = "conflict"
                    with lock:
                        outcomes[result] += 1
            finally:
                connection.close()

        workers = [threading.Thread(target=work, args=(rep,)) for rep in reps]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - t0
        claimed = QueueEntry.objects.filter(queue=queue, claimed_at__isnull=False).count()
        print(
            f"claims ({mode:<9}) {threads} reps: {claimed:,} leads in {elapsed:.2f} s = "
            f"{claimed / elapsed:,.0f} claims/s, "
            f"{outcomes['conflict']:,} answered 409; every lead once: {claimed == len(ids) == outcomes['claimed']}"
        )
        # Give the capacity back for the next round.
        Lead.objects.filter(pk__in=ids).update(owner=None, assigned_at=None)
        RepProfile.objects.filter(pk__in=[r.pk for r in reps]).update(open_leads=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--claim-leads", type=int, default=5000)
    parser.add_argument("--claim-threads", type=int, default=16)
    parser.add_argument("--claims-only", action="store_true", help="keep the database, measure claims only")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadops_bench_routing"),
    )
    args = parser.parse_args()
    ensure_database(args.database_url)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DJANGO_DEBUG="False",
        DATABASE_URL=args.database_url,
        REDIS_URL="",
        CELERY_BROKER_URL="memory://",
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    if args.claims_only:
        measure_claims(leads_count=args.claim_leads, threads=args.claim_threads)
        return
    with connection.cursor() as cursor:  # a clean slate
        cursor.execute(
            "TRUNCATE leads_lead, routing_assignment, routing_queueentry, routing_routingrule, routing_ruleaction, "
            "routing_queue, routing_repprofile, routing_territory, routing_team, core_notification CASCADE"
        )
        cursor.execute("DELETE FROM auth_user WHERE username LIKE 'bench-rep-%%'")
    rng = random.Random(4)
    setup_org(rng)
    samples = sample_leads(rng, args.samples)
    print(f"200 reps, 50 rules, {args.samples} sample leads; PostgreSQL {connection.pg_version}")
    for size in (args.small, args.big):
        fill_leads(size)
        label = f"{size:,} leads"
        measure_decisions(samples, label)
        measure_push(samples[: max(200, args.samples // 4)], label)
    measure_claims(leads_count=args.claim_leads, threads=args.claim_threads)


if __name__ == "__main__":
    main()
