from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.roles import roles_sync_on_migrate

        # Sent for this app after every app above it has its permissions, so roles can name them.
        post_migrate.connect(roles_sync_on_migrate, sender=self)
