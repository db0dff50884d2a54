from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo data (`manage.py seed_demo`). The top app layer: it writes through the services of
    the apps below it, like any other caller, and no app imports it."""

    name = "demo"
    default_auto_field = "django.db.models.BigAutoField"
