from django.http import HttpRequest

from core.roles import Role, roles_of


def navigation(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_roles": set()}
    return {"user_roles": roles_of(user), "Role": Role}
