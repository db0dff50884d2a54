from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from core.navigation import nav_items_for
from core.roles import roles_of
from core.selectors import notification_unread_count


def navigation(request: HttpRequest) -> dict:
    """The top bar's data, lazily: only a template that shows the top bar (base.html) runs the
    queries, not the htmx partials and polls that render without it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_roles": set(), "nav_items": []}
    return {
        "user_roles": SimpleLazyObject(lambda: roles_of(user)),
        "nav_items": SimpleLazyObject(lambda: nav_items_for(user=user, request=request)),
        # The unread badge of the top bar (routing notifies new owners).
        "unread_notifications": SimpleLazyObject(lambda: notification_unread_count(user=user)),
        "notifications_url": SimpleLazyObject(lambda: reverse("routing:me")),
    }
