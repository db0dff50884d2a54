from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class RoutingConfig(AppConfig):
    name = "routing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model

        from leads import hooks
        from routing import hooks as routing_hooks
        from routing import pages
        from routing.models import RepProfile
        from routing.selectors import ROUTING_CONFIG_MODELS, routing_config_cache_clear
        from routing.services.engine.decision import candidates_cache_clear

        # Other processes notice an edit within LEADOPS_ROUTING_RULES_RECHECK_SECONDS; this one at once.
        for model in ROUTING_CONFIG_MODELS:
            post_save.connect(routing_config_cache_clear, sender=model, dispatch_uid=f"rules-cache-{model.__name__}")
            post_delete.connect(routing_config_cache_clear, sender=model, dispatch_uid=f"rules-del-{model.__name__}")
        # A rep or user edited in this process: the next push reads the candidates afresh.
        for model in (RepProfile, get_user_model()):
            post_save.connect(candidates_cache_clear, sender=model, dispatch_uid=f"reps-cache-{model.__name__}")
            post_delete.connect(candidates_cache_clear, sender=model, dispatch_uid=f"reps-del-{model.__name__}")
        hooks.capture_step_register(routing_hooks.ASSIGN_STEP, routing_hooks.assign_new_lead)
        hooks.hook_register(hooks.STAGE_CHANGED, routing_hooks.owner_capacity_on_stage_change)
        hooks.hook_register(hooks.CONTACTED, routing_hooks.clock_stop_on_contact)
        hooks.hook_register(hooks.MERGED, routing_hooks.owners_recount_on_merge)
        hooks.hook_register(hooks.ERASED, routing_hooks.personal_data_erase)
        # What routing adds to the leads pages (panels, list filters, the bulk reassign).
        for panel in pages.LEAD_PANELS:
            hooks.lead_panel_register(panel)
        hooks.lead_list_extension_register(pages.LEAD_LIST_EXTENSION)
        hooks.lead_bulk_action_register(pages.BULK_REASSIGN)
