"""Roles are Django groups with permissions; this module is the one place that defines them."""

from enum import StrEnum

from django.contrib.auth.models import AbstractBaseUser, Group, Permission


class Role(StrEnum):
    MARKETING_OPS = "Marketing ops"
    SALES_REP = "Sales rep"
    SALES_MANAGER = "Sales manager"
    ADMIN = "Admin"


_LEAD_WORK = [
    "leads.view_lead",
    "leads.change_lead_stage",
    "leads.add_activity",
    "leads.view_activity",
]
ROLE_PERMISSIONS: dict[Role, list[str]] = {
    Role.SALES_REP: _LEAD_WORK,
    Role.SALES_MANAGER: [*_LEAD_WORK, "leads.view_all_leads", "leads.reassign_lead", "leads.export_leads"],
    Role.MARKETING_OPS: [
        *_LEAD_WORK,
        "leads.view_all_leads",
        "leads.add_lead",
        "leads.change_lead",
        "leads.export_leads",
        "leads.import_leads",
        "leads.view_source",
        "leads.add_source",
        "leads.change_source",
        "leads.view_campaign",
        "leads.add_campaign",
        "leads.change_campaign",
        "leads.view_intakesubmission",
        "leads.export_lead_data",
        "leads.erase_lead",
    ],
    Role.ADMIN: ["*"],
}


def roles_sync() -> None:
    """Create or update the role groups so they hold exactly the permissions listed above."""
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role.value)
        if codenames == ["*"]:
            permissions = list(Permission.objects.all())
        else:
            wanted = [tuple(name.split(".", 1)) for name in codenames]
            by_key = {
                (p.content_type.app_label, p.codename): p
                for p in Permission.objects.select_related("content_type").filter(
                    codename__in=[codename for _, codename in wanted]
                )
            }
            permissions = [by_key[key] for key in wanted if key in by_key]
        group.permissions.set(permissions)


def roles_sync_on_migrate(**kwargs) -> None:
    roles_sync()


def roles_of(user: AbstractBaseUser) -> set[str]:
    if not hasattr(user, "_leadops_roles"):
        names = set(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            names.add(Role.ADMIN.value)
        user._leadops_roles = names
    return user._leadops_roles
