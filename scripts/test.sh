#!/usr/bin/env bash
# The whole suite: lint, migrations in sync, then pytest on the best backends available.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
exports=$($BIN/python scripts/backends.py)
eval "$exports"
export DJANGO_SETTINGS_MODULE=config.settings.test
$BIN/ruff check --quiet .
$BIN/python manage.py makemigrations --check --dry-run > /dev/null || {
  echo "make test: a model change has no migration (run manage.py makemigrations)"; exit 1; }
exec $BIN/pytest "$@"
