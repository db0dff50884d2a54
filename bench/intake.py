"""Throughput and latency of the public intake endpoint against a plain DRF write on the same stack.

Starts the app under gunicorn (production settings, DEBUG off, PostgreSQL, Redis) on 127.0.0.1,
drives `POST /api/v1/leads/` with unique people and with a small pool of returning people (the
de-duplication / merge path), and the reference endpoint `POST /bench/reference/` (a DRF
`ModelSerializer` that validates four fields and inserts one row: the ceiling of a DRF write
here), each from 1 and from 8 concurrent clients. Prints req/s, p50/p95/p99 latency, errors, the
intake/reference ratios at 8 clients (pooled, and of each round with `--rounds`) and of p99 at 1
and 8 clients, and which targets pass. The targets are ratios to the reference of the same run (so
they hold on any machine and under the same noise): unique people pushed at >= 0.4x the reference's
req/s at 8 clients, p99 <= 1.5x the reference's p99 at 8 clients and at 1 client, zero errors.
`--check` exits 1 when one fails (or was not measured: it needs unique and reference at 1 and 8).

`--broker-down` also measures intake while the Celery broker is unreachable: a second gunicorn on
the same database whose CELERY_BROKER_URL points at a closed local port, driven with the same
intake scenarios interleaved with the normal ones (same run, same noise). It prints the p95 of
each intake scenario with the broker down next to the normal one, and adds the target: unique
people's p95 with the broker down <= 2x the normal p95, at each client count.

Usage (from the repository root; PostgreSQL and Redis at their local default addresses):

    .venv/bin/python bench/intake.py                  # 10 s per scenario, everything
    .venv/bin/python bench/intake.py --seconds 20 --rounds 2
    .venv/bin/python bench/intake.py --only reference --workers 3   # e.g. to tune the server
    .venv/bin/python bench/intake.py --url http://127.0.0.1:8000 --api-key lo_xxx_yyy
    .venv/bin/python bench/intake.py --broker-down --only unique,reference

What it does, in its own server mode (the default):

- creates the database of `--database-url` if missing (its name must contain "bench"), migrates
  it and empties it (`manage.py flush`), so every run starts from the same state;
- creates an API key with `manage.py create_api_key`;
- starts gunicorn with sync workers on a free port with rate limits raised out of the way
  (DJANGO_INTAKE_RATE_PER_KEY/IP), DJANGO_BENCH_ENDPOINTS=true, enrichment tasks sent to the
  Redis broker DB of `--broker-url` (no worker needs to run: that DB is flushed before and after);
- warms every worker up, then runs each scenario for `--seconds` (or `--max-requests` per client);
- stops gunicorn at the end, also on Ctrl+C or SIGTERM.

With `--url` it only drives an already running server (which must route the bench endpoints and
have generous rate limits); nothing is created or flushed, so pass `--api-key`.

Load generator: one OS process per client (no GIL shared between clients), each with its own
`http.client` connection to 127.0.0.1 only. Connections are keep-alive on the client side, but
gunicorn's sync workers close every connection after one response, so each request also pays a
loopback TCP connect; this is the same for intake and reference. `--mode thread` runs the
clients as threads of one process instead.

Chosen defaults: 3 sync workers and one process per client. A sweep of 1-6 workers on a quiet
machine (24 Nov 2026, session 3, unique people / returning people / reference at 8 clients, req/s):
1: 369 / 401 / 821; 2: 508 / 617 / 1147; 3: 523 / 689 / 1193; 4: 489 / 666 / 1198;
5: 389 / 642 / 1328; 6: 356 / 499 / 1278. Three workers serve the intake best (more workers than
that make simultaneous pushes and returning people wait on each other's row locks on 2 cores);
the reference alone would do ~10% more with 5. Session 5, after intake stopped holding row locks
across statements (unique-people ratio, 2 rounds): 3 workers 0.53x and 0.53x, 4 workers 0.46x and
0.55x, 2 workers 0.50x. Re-run `--workers N` on other hardware.
Every figure of this script is noisy when the cores are shared: it prints the load average, and
`--rounds N` interleaves the scenarios so that intake and reference see the same noise.

Throughput is successful responses per second of wall time; latency is measured around one
request (connect if needed, send, read the whole response) in the client; percentiles are
nearest-rank. Errors are exceptions and any status other than the expected one (201 for a new
person or a reference row, 200 for a returning person).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import multiprocessing
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import unicodedata
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INTAKE_PATH = "/api/v1/leads/"
REFERENCE_PATH = "/bench/reference/"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# Person numbers of one client in one scenario run live in their own block (see _person).
PEOPLE_PER_CLIENT = 500_000
PEOPLE_PER_RUN = 5_000_000

# Targets, as ratios to the reference measured in the same run (absolute milliseconds move with the
# machine and its load; the reference sees the same machine and the same noise).
TARGET_THROUGHPUT_RATIO = 0.4  # unique people: intake req/s >= 0.4x the reference's at 8 clients
TARGET_P99_RATIO = 1.5  # unique people: intake p99 <= 1.5x the reference's p99, at 8 clients and at 1
TARGET_BROKER_DOWN_P95_RATIO = 2.0  # --broker-down: unique people's p95 <= 2x the normal p95

# --- realistic form submissions ----------------------------------------------------------------

FIRST_NAMES = ("Anna", "Ben", "Chloé", "Daniel", "Emma", "Felix", "Grace", "Hugo", "Isabel", "Jonas", "Kate", "Liam")
FIRST_NAMES += ("Mia", "Noah", "Olivia", "Paul", "Rosa", "Samuel", "Tara", "Umar", "Valentina", "Yusuf", "Léa", "Sofia")
LAST_NAMES = ("Smith", "Müller", "Dupont", "García", "Rossi", "Jansen", "Nowak", "Johnson", "Brown", "Schmidt")
LAST_NAMES += ("Martin", "Bernard", "de Vries", "Kowalski", "Taylor", "Fischer", "Moreau", "Wójcik", "Nguyen")
COMPANIES = (
    ("Acme Analytics", "acme-analytics.com"),
    ("Brightwave GmbH", "brightwave.de"),
    ("Cobalt Logistics", "cobalt-logistics.co.uk"),
    ("Dunmore & Partners", "dunmore.com"),
    ("Elevate Health", "elevatehealth.io"),
    ("Fjord Software AS", "fjordsoftware.no"),
    ("Granite Capital", "granitecap.com"),
    ("Helios Énergie", "helios-energie.fr"),
    ("Ironbark Mining", "ironbark.com.au"),
    ("Juniper Retail", "juniperretail.com"),
)
FREE_MAIL = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com")
TITLES = ("Head of Marketing", "CTO", "Operations Manager", "VP Sales", "Founder", "Data Analyst", "")
UTM = (
    ("google", "cpc", "spring-demo-2025", "lead management software"),
    ("linkedin", "social", "spring-demo-2025", ""),
    ("newsletter", "email", "q2-product-update", ""),
    ("facebook", "paid-social", "retargeting-eu", ""),
    ("bing", "cpc", "brand-search", "leadops"),
)
LANDING_PAGES = ("/demo", "/pricing", "/contact", "/whitepaper/lead-scoring", "/webinar/routing")
REFERRERS = ("https://www.google.com/", "https://www.linkedin.com/", "", "https://news.example.org/")

# Mobile ranges in which every subscriber number is valid for `phonenumbers` (checked at start).
# country, calling code, national prefixes, subscriber digits, lowest subscriber, trunk prefix
PHONE_PLANS = (
    ("US", "1", ("415", "646", "312", "617", "206", "303", "512", "404"), 7, 2_000_000, ""),
    ("GB", "44", ("73", "74", "75"), 8, 0, "0"),
    ("DE", "49", ("151", "152", "157", "159"), 8, 0, "0"),
    ("FR", "33", ("61", "62", "64", "65"), 7, 0, "0"),
    ("AU", "61", ("40", "41", "42", "43"), 7, 0, "0"),
)


def _phone(number: int) -> tuple[str, str, str]:
    """A distinct valid mobile number for each `number` < 2e8: (as typed, E.164, country)."""
    country, code, prefixes, digits, low, trunk = PHONE_PLANS[number % len(PHONE_PLANS)]
    n = number // len(PHONE_PLANS)
    prefix = prefixes[n % len(prefixes)]
    subscriber = str(low + (n // len(prefixes)) % (10**digits - low)).zfill(digits)
    national = prefix + subscriber
    e164 = f"+{code}{national}"
    if country == "US":
        typed = f"({national[:3]}) {national[3:6]}-{national[6:]}"
    elif n % 2:
        typed = f"+{code} {national[:4]} {national[4:]}"
    else:
        typed = f"{trunk}{national[:4]} {national[4:]}"
    return typed, e164, country


def _person(number: int) -> dict:
    """The identity of person `number`: unique email and phone per number."""
    rng = random.Random(number)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    company, domain = rng.choice(COMPANIES)
    if rng.random() < 0.3:
        domain = rng.choice(FREE_MAIL)
    local = unicodedata.normalize("NFKD", f"{first}.{last}".lower().replace(" ", "")).encode("ascii", "ignore").decode()
    phone, _, country = _phone(number)
    return {
        # The fixed-width number keeps addresses distinct even after Gmail's dot removal.
        "email": f"{local}.{number:010d}@{domain}",
        "first_name": first,
        "last_name": last,
        "company_name": company,
        "title": rng.choice(TITLES),
        "phone": phone,
        "country": country,
    }


def _intake_body(person: dict, rng: random.Random) -> bytes:
    source, medium, campaign, term = rng.choice(UTM)
    consent = rng.random() < 0.6
    body = {
        **person,
        "utm_source": source,
        "utm_medium": medium,
        "utm_campaign": campaign,
        "utm_term": term,
        "landing_page": "https://www.leadops.example" + rng.choice(LANDING_PAGES),
        "referrer": rng.choice(REFERRERS),
        "marketing_consent": consent,
        "consent_method": "checkbox on web form" if consent else "",
        "message": rng.choice(("", "", "We'd like a demo for a team of 12.", "Please call me back tomorrow.")),
    }
    return json.dumps(body).encode()


def _reference_body(person: dict, rng: random.Random) -> bytes:
    return json.dumps(
        {
            "name": f"{person['first_name']} {person['last_name']}",
            "email": person["email"],
            "company": person["company_name"],
            "score": rng.randrange(100),
        }
    ).encode()


# What intake does in a configured installation: a round-robin rule over a team of 8 reps who are
# always available with room to spare, so each new lead gets an owner, a capacity count, an SLA
# clock and an owner notification (the fallback-queue-only path of an empty database is cheaper).
REPS_SETUP = """
import datetime
from django.contrib.auth import get_user_model
from routing.models import Method, Queue, RepProfile, RoutingRule, RuleAction, Team
team = Team.objects.create(name="Bench team")
for n in range(8):
    user = get_user_model().objects.create(username=f"bench-rep-{n}", email=f"bench-rep-{n}@leadops.example")
    RepProfile.objects.create(
        user=user, team=team, capacity=10**8, daily_cap=10**8, work_days=list(range(7)),
        work_start=datetime.time(0), work_end=datetime.time(23, 59, 59),
    )
rule = RoutingRule.objects.create(name="Bench: round-robin", position=1, queue=Queue.objects.create(name="Bench"))
RuleAction.objects.create(rule=rule, arm="A", method=Method.ROUND_ROBIN, team=team)
"""


# --- scenarios and the load generator ---------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    kind: str  # "unique", "repeat" or "reference"
    clients: int
    expected_status: int
    broker_down: bool = False  # driven against the server whose broker is unreachable


@dataclass
class Job:
    """What one client does: picklable, so it crosses into a worker process."""

    host: str
    port: int
    path: str
    headers: dict
    kind: str
    first_person: int  # unique: this client's block of person numbers; repeat: offset in the pool
    pool: tuple[int, ...]
    expected_status: int
    seed: int
    start_at: float  # time.monotonic(), shared by the processes of one machine
    deadline: float
    max_requests: int


@dataclass
class ClientResult:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0


def _run_client(job: Job) -> ClientResult:
    rng = random.Random(job.seed)
    result = ClientResult()
    conn = http.client.HTTPConnection(job.host, job.port, timeout=30)
    people = {number: _person(number) for number in job.pool}
    make_body = _reference_body if job.kind == "reference" else _intake_body
    with contextlib.suppress(ValueError):
        time.sleep(job.start_at - time.monotonic())
    result.started = time.monotonic()
    sent = 0
    try:
        while sent < job.max_requests and time.monotonic() < job.deadline:
            if job.kind == "repeat":
                person = people[job.pool[(job.first_person + sent) % len(job.pool)]]
            else:
                person = _person(job.first_person + sent)
            body = make_body(person, rng)
            sent += 1
            t0 = time.perf_counter()
            try:
                conn.request("POST", job.path, body, job.headers)
                response = conn.getresponse()
                content = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                result.errors += 1
                result.statuses["exception"] += 1
                if len(result.error_samples) < 3:
                    result.error_samples.append(repr(exc))
                continue
            result.latencies_ms.append((time.perf_counter() - t0) * 1000)
            result.statuses[response.status] += 1
            if response.status != job.expected_status:
                result.errors += 1
                if len(result.error_samples) < 3:
                    result.error_samples.append(f"{response.status} {content[:300]!r}")
    except KeyboardInterrupt:
        pass
    finally:
        result.finished = time.monotonic()
        conn.close()
    return result


def _process_client(job: Job, queue) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    queue.put(_run_client(job))


def _drive(jobs: list[Job], mode: str) -> list[ClientResult]:
    if mode == "thread":
        results: list[ClientResult] = []
        threads = [threading.Thread(target=lambda j=job: results.append(_run_client(j))) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    processes = [ctx.Process(target=_process_client, args=(job, queue), daemon=True) for job in jobs]
    try:
        for process in processes:
            process.start()
        results = [queue.get(timeout=max(60.0, jobs[0].deadline - time.monotonic() + 60)) for _ in jobs]
        for process in processes:
            process.join(timeout=10)
        return results
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()


@dataclass
class Figures:
    requests: int = 0
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)

    def add(self, results: list[ClientResult]) -> None:
        self.seconds += max(r.finished for r in results) - min(r.started for r in results)
        for r in results:
            self.latencies_ms += r.latencies_ms
            self.statuses += r.statuses
            self.errors += r.errors
            self.requests += sum(r.statuses.values())
            self.error_samples += r.error_samples[: max(0, 5 - len(self.error_samples))]
        self.ok = self.requests - self.errors

    def merge(self, other: Figures) -> None:
        self.requests += other.requests
        self.ok += other.ok
        self.errors += other.errors
        self.seconds += other.seconds
        self.latencies_ms += other.latencies_ms
        self.statuses += other.statuses
        self.error_samples += other.error_samples[: max(0, 5 - len(self.error_samples))]

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return math.nan
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class Bench:
    def __init__(self, *, host: str, port: int, api_key: str, mode: str, salt: int) -> None:
        self.host, self.port, self.api_key, self.mode, self.salt = host, port, api_key, mode, salt
        self.runs = 0
        self.pool: tuple[int, ...] = ()

    def headers(self, path: str) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json", "Connection": "keep-alive"}
        if path == INTAKE_PATH:
            headers["Authorization"] = f"Api-Key {self.api_key}"
        return headers

    def run(self, scenario: Scenario, *, seconds: float, max_requests: int) -> list[ClientResult]:
        block = self.salt + self.runs * PEOPLE_PER_RUN
        self.runs += 1
        start_at = time.monotonic() + 0.2 + 0.02 * scenario.clients
        jobs = [
            Job(
                host=self.host,
                port=self.port,
                path=scenario.path,
                headers=self.headers(scenario.path),
                kind=scenario.kind,
                first_person=(
                    (i * len(self.pool)) // scenario.clients
                    if scenario.kind == "repeat"
                    else block + i * PEOPLE_PER_CLIENT
                ),
                pool=self.pool if scenario.kind == "repeat" else (),
                expected_status=scenario.expected_status,
                seed=self.runs * 1000 + i,
                start_at=start_at,
                deadline=start_at + seconds,
                max_requests=min(max_requests, PEOPLE_PER_CLIENT),
            )
            for i in range(scenario.clients)
        ]
        return _drive(jobs, self.mode)


def scenarios(clients: list[int], only: set[str], *, broker_down: bool = False) -> list[Scenario]:
    """The plan; with `broker_down`, each intake scenario is followed by its broker-down twin."""
    kinds = [
        ("intake, unique people", INTAKE_PATH, "unique", 201),
        ("intake, repeated people", INTAKE_PATH, "repeat", 200),
        ("reference (DRF write)", REFERENCE_PATH, "reference", 201),
    ]
    plan = []
    for n in clients:
        for name, path, kind, status in kinds:
            if only and kind not in only:
                continue
            label = f"{name}, {n} client{'s' if n > 1 else ''}"
            plan.append(Scenario(label, path, kind, n, status))
            if broker_down and path == INTAKE_PATH:
                plan.append(Scenario(f"{label}, broker down", path, kind, n, status, broker_down=True))
    return plan


# --- the server under test ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _database_create(database_url: str) -> None:
    import psycopg

    url = urllib.parse.urlsplit(database_url)
    name = url.path.lstrip("/")
    if "bench" not in name:
        raise SystemExit(f"Refusing to use database {name!r}: the bench empties it, so its name must contain 'bench'.")
    with psycopg.connect(
        host=url.hostname or "127.0.0.1",
        port=url.port or 5432,
        user=urllib.parse.unquote(url.username or "postgres"),
        password=urllib.parse.unquote(url.password or "") or None,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def _redis_flush(url: str) -> None:
    import redis

    with contextlib.suppress(redis.RedisError):
        redis.Redis.from_url(url, socket_timeout=2).flushdb()


def _check_local(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname
    if host not in LOCAL_HOSTS:
        raise SystemExit(f"{url}: the bench only ever talks to 127.0.0.1.")


def _kill_with_parent() -> None:
    """In the gunicorn child: die with the bench even if it is killed without cleanup (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Server:
    """gunicorn with sync workers on 127.0.0.1, production settings, DEBUG off."""

    def __init__(self, args: argparse.Namespace, *, broker_down: bool = False) -> None:
        self.args = args
        self.port = _free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = ROOT / "var" / f"bench-gunicorn{'-broker-down' if broker_down else ''}.log"
        # Broker down: a local port where nothing listens (bound for a moment, then released).
        broker_url = f"redis://127.0.0.1:{_free_port()}/0" if broker_down else args.broker_url
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_", "CELERY_"))},
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_BENCH_ENDPOINTS": "true",
            "DJANGO_INTAKE_RATE_PER_KEY": "10000000",
            "DJANGO_INTAKE_RATE_PER_IP": "10000000",
            "DJANGO_ROUTING_BALANCE_TOLERANCE": str(args.balance_tolerance),
            "DATABASE_URL": args.database_url,
            "REDIS_URL": args.redis_url,
            "CELERY_BROKER_URL": broker_url,
        }

    def prepare(self) -> str:
        """Create, migrate and empty the bench database; return a fresh API key."""
        _database_create(self.args.database_url)
        _manage(self.env, "migrate", "--no-input", "-v", "0")
        _manage(self.env, "flush", "--no-input", "-v", "0")
        _redis_flush(self.args.broker_url)
        if self.args.routing == "reps":
            _manage(self.env, "shell", "-c", REPS_SETUP)
        return _manage(self.env, "create_api_key", "Bench web form", "--name", "bench").strip().splitlines()[-1]

    def start(self) -> None:
        self.log_path.parent.mkdir(exist_ok=True)
        self.log_path.write_text("")
        command = [
            *(sys.executable, "-m", "gunicorn", "config.wsgi:application"),
            *("--bind", f"127.0.0.1:{self.port}", "--worker-class", "sync", "--workers", str(self.args.workers)),
            *("--timeout", "60", "--graceful-timeout", "5", "--no-control-socket", "--log-level", "warning"),
            *("--error-logfile", str(self.log_path)),
        ]
        with self.log_path.open("a") as log:  # the app's own console logging goes there too
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_kill_with_parent,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            time.sleep(0.2)
        raise SystemExit(f"gunicorn did not answer /healthz within 30 s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


# --- report -------------------------------------------------------------------------------------


def _line(name: str, figures: Figures) -> str:
    return (
        f"{name:<50} {figures.rps:>8.1f} {figures.percentile(0.50):>8.1f} {figures.percentile(0.95):>8.1f} "
        f"{figures.percentile(0.99):>8.1f} {figures.errors:>7d} {figures.requests:>8d}"
    )


def _report(results: dict[Scenario, Figures], rounds: dict[Scenario, list[float]] | None = None) -> bool:
    header = f"{'scenario':<50} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7} {'requests':>8}"
    print("\n" + header + "\n" + "-" * len(header))
    for scenario, figures in results.items():
        print(_line(scenario.name, figures))
    for scenario, figures in results.items():
        if figures.errors:
            print(f"\n{scenario.name}: statuses {dict(figures.statuses)}; e.g.")
            for sample in figures.error_samples:
                print(f"  {sample}")

    by_kind = {(s.kind, s.clients): f for s, f in results.items() if not s.broker_down}
    for kind, label in (("unique", "unique people"), ("repeat", "repeated people")):
        lines = []
        at8, reference = by_kind.get((kind, 8)), by_kind.get(("reference", 8))
        if at8 and reference:
            ratio = at8.rps / reference.rps if reference.rps else 0.0
            lines.append(f"intake ({label}) / reference at 8 clients: {ratio:.2f}x")
            per_round = _round_ratios(rounds or {}, kind)
            if len(per_round) > 1:
                lines.append(f"  by round: {', '.join(f'{r:.2f}' for r in per_round)}x (min {min(per_round):.2f}x)")
        for clients in (1, 8):
            intake, reference = by_kind.get((kind, clients)), by_kind.get(("reference", clients))
            if intake and reference:
                p99 = _ratio(intake.percentile(0.99), reference.percentile(0.99))
                where = f"{clients} client{'s' if clients > 1 else ''}"
                lines.append(f"intake ({label}) / reference p99 at {where}: {p99:.2f}x")
        if lines:
            print("\n" + "\n".join(lines))

    down = [(s, f) for s, f in results.items() if s.broker_down]
    if down:
        print("\nintake p95 with the broker down / normal (same run):")
        for scenario, figures in down:
            normal = by_kind.get((scenario.kind, scenario.clients))
            if normal:
                p95, normal_p95 = figures.percentile(0.95), normal.percentile(0.95)
                print(
                    f"  {scenario.name.removesuffix(', broker down')}: {p95:.1f} / {normal_p95:.1f} ms = "
                    f"{_ratio(p95, normal_p95):.2f}x ({figures.rps:.1f} / {normal.rps:.1f} req/s)"
                )

    checks = target_checks(results)
    print("\ntargets (ratios to the reference of this run; unique people):")
    for text, met in checks:
        print(f"  [{'pass' if met else 'FAIL'}] {text}")
    return all(met for _, met in checks)


def _ratio(value: float, reference: float) -> float:
    return value / reference if reference and not math.isnan(reference) else math.nan


def target_checks(results: dict[Scenario, Figures]) -> list[tuple[str, bool]]:
    """Each target with whether this run met it. A target whose scenarios were not run (--clients,
    --only) is reported as failed: it was not shown to hold."""
    by_kind = {(s.kind, s.clients): f for s, f in results.items() if not s.broker_down}
    checks: list[tuple[str, bool]] = []

    at8, reference8 = by_kind.get(("unique", 8)), by_kind.get(("reference", 8))
    text = f"throughput >= {TARGET_THROUGHPUT_RATIO:g}x the reference at 8 clients"
    if at8 and reference8:
        ratio = _ratio(at8.rps, reference8.rps)
        checks.append((f"{text}: {ratio:.2f}x", ratio >= TARGET_THROUGHPUT_RATIO))
    else:
        checks.append((f"{text}: not measured (needs unique and reference at 8 clients)", False))

    for clients in (8, 1):
        intake, reference = by_kind.get(("unique", clients)), by_kind.get(("reference", clients))
        where = f"{clients} client{'s' if clients > 1 else ''}"
        text = f"p99 <= {TARGET_P99_RATIO:g}x the reference p99 at {where}"
        if intake and reference:
            ratio = _ratio(intake.percentile(0.99), reference.percentile(0.99))
            checks.append(
                (
                    f"{text}: {intake.percentile(0.99):.1f} / {reference.percentile(0.99):.1f} ms = {ratio:.2f}x",
                    ratio <= TARGET_P99_RATIO,  # False for NaN (no successful request)
                )
            )
        else:
            checks.append((f"{text}: not measured (needs unique and reference at {where})", False))

    for scenario, figures in results.items():
        if scenario.broker_down and scenario.kind == "unique":
            normal = by_kind.get(("unique", scenario.clients))
            where = f"{scenario.clients} client{'s' if scenario.clients > 1 else ''}"
            text = f"p95 with the broker down <= {TARGET_BROKER_DOWN_P95_RATIO:g}x the normal p95 at {where}"
            if normal:
                p95, normal_p95 = figures.percentile(0.95), normal.percentile(0.95)
                ratio = _ratio(p95, normal_p95)
                checks.append(
                    (f"{text}: {p95:.1f} / {normal_p95:.1f} ms = {ratio:.2f}x", ratio <= TARGET_BROKER_DOWN_P95_RATIO)
                )
            else:
                checks.append((f"{text}: not measured (needs the normal scenario too)", False))

    errors = sum(f.errors for f in results.values())
    checks.append((f"zero errors in every scenario: {errors} error(s)", not errors))
    return checks


def _round_ratios(rounds: dict[Scenario, list[float]], kind: str) -> list[float]:
    """Intake/reference req/s at 8 clients of each round: how much of the pooled ratio is noise."""
    by_kind = {(s.kind, s.clients): rps for s, rps in rounds.items() if not s.broker_down}
    intake, reference = by_kind.get((kind, 8), []), by_kind.get(("reference", 8), [])
    return [i / r for i, r in zip(intake, reference, strict=False) if r]


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="drive this already running server (127.0.0.1 only) instead of starting one")
    parser.add_argument("--api-key", default="", help="intake API key of the --url server")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per scenario (default 10)")
    parser.add_argument("--max-requests", type=int, default=PEOPLE_PER_CLIENT, help="per client and scenario")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per endpoint (default 3)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat all scenarios, interleaved, and pool them")
    parser.add_argument("--clients", default="1,8", help="concurrent clients, comma-separated (default 1,8)")
    parser.add_argument("--only", default="", help="comma-separated subset of: unique, repeat, reference")
    parser.add_argument("--mode", choices=("process", "thread"), default="process", help="one process per client")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (default 3)")
    parser.add_argument("--pool", type=int, default=50, help="returning people in the repeated scenarios")
    parser.add_argument(
        "--routing",
        choices=("reps", "queue"),
        default="reps",
        help="new leads pushed round-robin to 8 reps (default; owner, capacity, SLA clock, notification) "
        "or only the fallback queue (an empty database's routing)",
    )
    parser.add_argument(
        "--balance-tolerance",
        type=int,
        default=0,
        help="DJANGO_ROUTING_BALANCE_TOLERANCE of the server (default 0: exact round-robin, the app's default)",
    )
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/leadops_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/4")
    parser.add_argument(
        "--broker-down",
        action="store_true",
        help="also drive every intake scenario against a second server whose Celery broker URL is a closed "
        "local port, interleaved with the normal ones; compares their p95 (target: <= 2x)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args(argv)


def _self_check_phones() -> None:
    import phonenumbers

    rng = random.Random(1)
    for number in [*range(200), *(rng.randrange(200_000_000) for _ in range(800))]:
        typed, e164, country = _phone(number)
        parsed = phonenumbers.parse(typed, country)
        if not phonenumbers.is_valid_number(parsed) or phonenumbers.format_number(parsed, 0) != e164:
            raise SystemExit(f"bench bug: generated phone {typed!r} ({country}) is not the valid {e164}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    _self_check_phones()
    only = {k.strip() for k in args.only.split(",") if k.strip()}
    clients = [int(n) for n in args.clients.split(",")]
    plan = scenarios(clients, only, broker_down=args.broker_down)
    if args.broker_down and args.url:
        raise SystemExit("--broker-down starts its own servers; it cannot be combined with --url.")

    server = down_server = None
    try:
        if args.url:
            _check_local(args.url)
            url = urllib.parse.urlsplit(args.url)
            host, port, salt = "127.0.0.1", url.port or 80, random.randrange(20_000_000)
            if not args.api_key and any(s.path == INTAKE_PATH for s in plan):
                raise SystemExit("--url needs --api-key for the intake scenarios.")
            api_key = args.api_key
        else:
            for url in (args.database_url, args.redis_url, args.broker_url):
                _check_local(url)
            server = Server(args)
            print("preparing the bench database (create, migrate, flush) ...", flush=True)
            api_key = server.prepare()
            server.start()
            host, port, salt = "127.0.0.1", server.port, 0
            if args.broker_down:
                down_server = Server(args, broker_down=True)  # same database, broker unreachable
                down_server.start()
        print(
            f"server: {args.url or f'gunicorn 127.0.0.1:{port}, {args.workers} sync workers, production settings'}; "
            f"routing: {'round-robin to 8 reps' if args.routing == 'reps' or args.url else 'fallback queue'}"
            f"{f' (balance tolerance {args.balance_tolerance})' if args.balance_tolerance else ''}; "
            f"clients: {args.mode} each; {args.seconds:g} s per scenario x {args.rounds} round(s); "
            f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )

        if down_server is not None:
            print(
                f"broker down: a second gunicorn on 127.0.0.1:{down_server.port}, its broker a closed port", flush=True
            )
        bench = Bench(host=host, port=port, api_key=api_key, mode=args.mode, salt=salt)
        ports = {False: port, True: down_server.port if down_server else port}
        # The returning people: a block of person numbers that the unique scenarios never reach.
        bench.pool = tuple(180_000_000 + salt + i for i in range(args.pool))
        warm = {s.kind: s for s in scenarios([max(clients)], set())}
        if any(s.kind == "repeat" for s in plan):
            first_pass = Scenario("pool", INTAKE_PATH, "repeat", 1, 201)
            figures = Figures()
            figures.add(bench.run(first_pass, seconds=60, max_requests=args.pool))
            if figures.errors and not args.url:
                raise SystemExit(f"creating the returning people failed: {figures.error_samples}")
        for kind in {s.kind for s in plan}:
            for down in {s.broker_down for s in plan if s.kind == kind}:
                bench.port = ports[down]
                bench.run(warm[kind], seconds=args.warmup, max_requests=PEOPLE_PER_CLIENT)

        results: dict[Scenario, Figures] = {s: Figures() for s in plan}
        rounds: dict[Scenario, list[float]] = {s: [] for s in plan}
        for round_no in range(args.rounds):
            for scenario in plan:
                bench.port = ports[scenario.broker_down]
                figures = Figures()
                figures.add(bench.run(scenario, seconds=args.seconds, max_requests=args.max_requests))
                results[scenario].merge(figures)
                rounds[scenario].append(figures.rps)
                label = f"{scenario.name} (round {round_no + 1})" if args.rounds > 1 else scenario.name
                print(_line(label, figures), flush=True)
        print(f"load average after: {os.getloadavg()[0]:.2f} (other processes share the cores: figures are noisy)")
        met = _report(results, rounds)
        return 1 if args.check and not met else 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if down_server is not None:
            down_server.stop()
        if server is not None:
            server.stop()
            _redis_flush(args.broker_url)


if __name__ == "__main__":
    sys.exit(main())
