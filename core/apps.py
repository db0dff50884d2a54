from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.roles import roles_sync_on_migrate

        # Sent for this app after every app above it has its permissions, so roles can name them.
        post_migrate.connect(roles_sync_on_migrate, sender=self)
        _psycopg_parse_cache_widen()


def _psycopg_parse_cache_widen() -> None:
    """psycopg caches how it splits a query around its placeholders only for queries of at most
    50 parameters and 4 KB. The intake writes its rows in one statement of ~80 parameters, the
    same text every time, and re-splitting it cost ~8% of an intake's CPU. The cache stays an LRU
    of 128 entries, so a wider limit bounds memory at a few MB. (Module constants, read at each
    call; if a psycopg release renames them this does nothing.)"""
    try:
        from psycopg import _queries
    except ImportError:  # no PostgreSQL driver: SQLite
        return
    if hasattr(_queries, "MAX_CACHED_STATEMENT_PARAMS") and hasattr(_queries, "MAX_CACHED_STATEMENT_LENGTH"):
        _queries.MAX_CACHED_STATEMENT_PARAMS = max(_queries.MAX_CACHED_STATEMENT_PARAMS, 200)
        _queries.MAX_CACHED_STATEMENT_LENGTH = max(_queries.MAX_CACHED_STATEMENT_LENGTH, 16384)
