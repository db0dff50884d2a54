"""Test run: PostgreSQL and Redis when `make test` found them (DATABASE_URL / REDIS_URL), else SQLite."""

from config.settings.base import *  # noqa: F403

SECRET_KEY = "test-secret-key"
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LEADOPS_INTAKE_RATE_PER_KEY = 1000
LEADOPS_INTAKE_RATE_PER_IP = 1000
LEADOPS_ROUTING_RULES_RECHECK_SECONDS = 0  # rolled-back test data must never be served from the cache
LEADOPS_ENRICHMENT_BATCH_SECONDS = 0
LEADOPS_NOTIFY_BATCH_SECONDS = 0  # a run per lead: tests must not depend on an earlier test's request
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
