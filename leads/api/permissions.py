from rest_framework.permissions import BasePermission

from leads.models import ApiKey


class IsApiKeyOrCanAddLeads(BasePermission):
    """External systems with a key, or internal users allowed to create leads."""

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiKey):
            return True
        return bool(request.user and request.user.is_authenticated and request.user.has_perm("leads.add_lead"))


class IsInternalUser(BasePermission):
    """A signed-in person (session or token), never an API key."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and not isinstance(request.auth, ApiKey))


class HasLeadPermission(IsInternalUser):
    def __init__(self, perm: str):
        self.perm = perm

    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and request.user.has_perm(self.perm)
