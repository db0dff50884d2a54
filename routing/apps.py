from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class RoutingConfig(AppConfig):
    name = "routing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model

        from routing.models import RepProfile
        from routing.selectors import ROUTING_CONFIG_MODELS, routing_config_cache_clear
        from routing.services.engine import candidate_rows_cache_clear

        # Other processes notice an edit within LEADOPS_ROUTING_RULES_RECHECK_SECONDS; this one at once.
        for model in ROUTING_CONFIG_MODELS:
            post_save.connect(routing_config_cache_clear, sender=model, dispatch_uid=f"rules-cache-{model.__name__}")
            post_delete.connect(routing_config_cache_clear, sender=model, dispatch_uid=f"rules-del-{model.__name__}")
        for model in (RepProfile, get_user_model()):
            post_save.connect(candidate_rows_cache_clear, sender=model, dispatch_uid=f"reps-cache-{model.__name__}")
            post_delete.connect(candidate_rows_cache_clear, sender=model, dispatch_uid=f"reps-del-{model.__name__}")
