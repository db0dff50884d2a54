"""Test run: PostgreSQL and Redis when `make test` found them (DATABASE_URL / REDIS_URL), else SQLite."""

from config.settings.base import *  # noqa: F403

SECRET_KEY = "test-secret-key"
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LEADOPS_INTAKE_RATE_PER_KEY = 1000
LEADOPS_INTAKE_RATE_PER_IP = 1000
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
