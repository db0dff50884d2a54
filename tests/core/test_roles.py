import pytest
from django.contrib.auth.models import Group

from core.roles import ROLE_PERMISSIONS, Role, roles_sync
from tests.core.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_every_role_is_a_group_holding_its_permissions():
    # given
    roles_sync()
    # then
    for role, codenames in ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=role.value)
        held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        if codenames != ["*"]:
            assert held == set(codenames), role


def test_roles_sync_is_idempotent():
    roles_sync()
    roles_sync()
    assert Group.objects.filter(name__in=[r.value for r in Role]).count() == len(Role)


def test_rep_may_not_see_all_leads_but_a_manager_may():
    rep, manager = UserFactory(with_role=Role.SALES_REP), UserFactory(with_role=Role.SALES_MANAGER)
    assert not rep.has_perm("leads.view_all_leads")
    assert manager.has_perm("leads.view_all_leads")
    assert manager.has_perm("leads.reassign_lead") and not rep.has_perm("leads.reassign_lead")
