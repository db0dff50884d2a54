from django.apps import AppConfig


class NurtureConfig(AppConfig):
    name = "nurture"
    default_auto_field = "django.db.models.BigAutoField"
