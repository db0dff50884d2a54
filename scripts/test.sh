#!/usr/bin/env bash
# The whole suite: lint, migrations in sync, then pytest on the best backends available.
# Extra arguments go to pytest (bash scripts/test.sh tests/leads -x).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var
exports=$(python3 scripts/backends.py)   # stdlib only: prints the backends line first
eval "$exports"
make --no-print-directory -s install
BIN=.venv/bin
export DJANGO_SETTINGS_MODULE=config.settings.test
$BIN/ruff check --quiet .
# The app layers (STYLE.md §1a, contracts in pyproject.toml): silent when kept, the report when not.
$BIN/lint-imports --no-logo > var/lint-imports.log 2>&1 || { cat var/lint-imports.log; exit 1; }
DATABASE_URL=sqlite://:memory: $BIN/python manage.py makemigrations --check --dry-run > /dev/null || {
  echo "make test: a model change has no migration (run manage.py makemigrations)"; exit 1; }
exec $BIN/pytest "$@"
