from django import template

from core.selectors import notification_unread_count

register = template.Library()


@register.simple_tag(takes_context=True)
def unread_notification_count(context) -> int:
    if context.get("unread_notifications") is not None:  # already counted for the top bar
        return context["unread_notifications"]
    request = context.get("request")
    user = getattr(request, "user", None)
    return notification_unread_count(user=user) if user is not None else 0


@register.simple_tag(takes_context=True)
def routing_nav_flags(context) -> dict:
    """Which routing pages the signed-in user may open (the views check again)."""
    from routing.selectors import rep_get_for_user, user_can_dry_run, user_can_edit_rules, user_can_reassign

    user = context["request"].user
    return {
        "is_rep": rep_get_for_user(user=user) is not None,
        "can_edit_rules": user_can_edit_rules(user),
        "can_dry_run": user_can_dry_run(user),
        "can_reassign": user_can_reassign(user),
    }
