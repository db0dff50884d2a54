#!/usr/bin/env bash
# `make run`: migrate, load demo data once, then web server + Celery worker + beat together.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var  # a fresh clone has none: the install log, SQLite file and broker live there
make --no-print-directory -s install
BIN=.venv/bin
PORT=${PORT:-8000}
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-config.settings.local}
$BIN/python manage.py migrate --no-input -v 0
$BIN/python manage.py seed_demo
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
$BIN/celery -A config worker --loglevel=WARNING --concurrency=2 > var/worker.log 2>&1 & pids+=($!)
$BIN/celery -A config beat --loglevel=WARNING > var/beat.log 2>&1 & pids+=($!)
$BIN/python manage.py runserver "0.0.0.0:${PORT}" & pids+=($!)
sleep 2
cat <<MSG

  LeadOps is running at http://127.0.0.1:${PORT}/   (API docs: /api/docs/, admin: /admin/)
  Demo logins (password for all: leadops-demo):
    admin    – administrator (Django admin)
    ops      – marketing ops
    manager  – sales manager
    rep1     – sales rep (rep2 … rep8 too)
  Worker and beat logs: var/worker.log, var/beat.log.  Ctrl+C stops everything.

MSG
wait -n "${pids[@]}"
