from django.http import HttpRequest
from django.urls import reverse

from core.navigation import nav_items_for
from core.roles import Role, roles_of
from routing.selectors import notification_unread_count


def navigation(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_roles": set(), "nav_items": []}
    return {
        "user_roles": roles_of(user),
        "Role": Role,
        "nav_items": nav_items_for(user=user, request=request),
        # The unread badge of the top bar (routing notifies new owners).
        "unread_notifications": notification_unread_count(user=user),
        "notifications_url": reverse("routing:me"),
    }
