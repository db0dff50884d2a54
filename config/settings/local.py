"""Developer machine: DEBUG on, SQLite and the filesystem broker unless the environment says otherwise."""

from config.env import env

env.ENVIRON.setdefault("DJANGO_DEBUG", "True")

from config.settings.base import *  # noqa: E402,F403

SECRET_KEY = SECRET_KEY or "local-insecure-key-do-not-use-in-production"  # noqa: F405
ALLOWED_HOSTS = ["*"]
