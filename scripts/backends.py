"""Pick the test backends: PostgreSQL and Redis at their default local addresses when reachable.

Prints shell `export` lines and, on stderr, one line saying which backends are used.
With CI=true both are required: exits 1 if either is unreachable.
"""

import os
import socket
import sys

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadops")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BROKER_URL = os.environ.get("TEST_BROKER_URL", "redis://127.0.0.1:6379/14")


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def main() -> int:
    has_pg = reachable("127.0.0.1", 5432)
    has_redis = reachable("127.0.0.1", 6379)
    required = os.environ.get("CI", "").lower() == "true"
    if required and not (has_pg and has_redis):
        missing = [name for name, ok in (("PostgreSQL", has_pg), ("Redis", has_redis)) if not ok]
        print(f"make test: CI=true but {' and '.join(missing)} not reachable on 127.0.0.1", file=sys.stderr)
        return 1
    exports = {}
    if has_pg:
        exports["DATABASE_URL"] = PG_URL
    if has_redis:
        exports["REDIS_URL"] = REDIS_URL
        exports["CELERY_BROKER_URL"] = BROKER_URL
    database = "PostgreSQL (127.0.0.1:5432)" if has_pg else "SQLite (fallback: PostgreSQL not reachable)"
    cache = "Redis (127.0.0.1:6379)" if has_redis else "in-memory cache + filesystem broker (Redis not reachable)"
    print(f"make test: database={database}; cache/broker={cache}", file=sys.stderr)
    for name, value in exports.items():
        print(f"export {name}={value}")
    if not has_pg:
        print("unset DATABASE_URL")
    if not has_redis:
        print("unset REDIS_URL CELERY_BROKER_URL")
    return 0


if __name__ == "__main__":
    sys.exit(main())
