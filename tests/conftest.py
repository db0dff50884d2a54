import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection, connections
from rest_framework.test import APIClient

from core.caches import caches_clear_all
from core.roles import Role
from tests.core.factories import UserFactory
from tests.leads.factories import ApiKeyFactory

ROOT = Path(__file__).resolve().parent.parent


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


requires_postgres = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="needs PostgreSQL (make test uses it when reachable; CI=true requires it)",
)
requires_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis")


@pytest.fixture(autouse=True)
def _clear_cache():
    # Rate-limit counters live in the cache (and this process's leases on them): each test starts
    # with fresh windows. Per-process lookups (campaigns, API keys) may point at rows an earlier
    # test rolled back.
    cache.clear()
    caches_clear_all()
    yield


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def api_key(db):
    return ApiKeyFactory()


@pytest.fixture
def key_client(api_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key.raw_key}")
    return client


@pytest.fixture
def ops_user(db):
    return UserFactory(with_role=Role.MARKETING_OPS)


@pytest.fixture
def manager_user(db):
    return UserFactory(with_role=Role.SALES_MANAGER)


@pytest.fixture
def rep_user(db):
    return UserFactory(with_role=Role.SALES_REP)


@pytest.fixture
def other_rep_user(db):
    return UserFactory(with_role=Role.SALES_REP)


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


@pytest.fixture
def celery_worker_process(transactional_db):
    """A real Celery worker on the Redis broker, using the test database. For task end-to-end tests."""
    if not (is_postgres() and settings.REDIS_URL):
        pytest.skip("the real-worker test needs PostgreSQL and Redis")
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "REDIS_URL": settings.REDIS_URL,
    }
    from config.celery import app

    app.connection_for_write().default_channel.client.flushdb()  # no stale messages from earlier runs
    log_path = ROOT / "var" / "test-worker.log"
    log_path.parent.mkdir(exist_ok=True)
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"test-{os.getpid()}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while "ready." not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"Celery worker did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    yield process
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


# --- browser tests -------------------------------------------------------------------------------
CHROMIUM = "/usr/bin/chromium"  # Debian's package; a browser is never downloaded
SCREENSHOTS = ROOT / "tests" / "_screenshots"  # ignored by git, kept for people to look at


@pytest.fixture
def browser():
    """Headless Debian Chromium driven by Playwright. Skipped on a machine without it, except in
    CI, where a missing browser is a missing install step and fails the run."""
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CHROMIUM} is missing: .ci/run should have installed Debian's chromium")
        pytest.skip(f"needs Debian's chromium at {CHROMIUM}")
    from playwright import sync_api

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"]
        )
        yield launched
        launched.close()
        # While Playwright's event loop runs, the test's ORM calls get their own connection
        # (Django's connections are per async context): close it before the database is dropped.
        connections.close_all()
