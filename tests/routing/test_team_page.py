import datetime

import pytest

from core.roles import Role
from tests.core.factories import UserFactory
from tests.routing.factories import RepProfileFactory, TeamFactory

pytestmark = pytest.mark.django_db


def test_manager_sees_each_rep_with_load_and_why_skipped(client, django_assert_max_num_queries):
    # given
    manager = UserFactory(with_role=Role.SALES_MANAGER)
    team = TeamFactory(manager=manager)
    RepProfileFactory(
        team=team, capacity=10, open_leads=5, work_start=datetime.time(0, 0), work_end=datetime.time(0, 0)
    )
    away = RepProfileFactory(team=team, is_available=False)
    not_mine = RepProfileFactory()  # another manager's team
    client.force_login(manager)
    # when
    with django_assert_max_num_queries(8):
        response = client.get("/routing/team/")
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert "5 / 10" in html
    assert away.user.get_full_name() in html and "Skipped" in html
    assert not_mine.user.get_full_name() not in html


def test_team_page_query_count_does_not_grow_with_reps(client, django_assert_max_num_queries):
    manager = UserFactory(with_role=Role.SALES_MANAGER)
    RepProfileFactory.create_batch(25, team=TeamFactory(manager=manager))
    client.force_login(manager)
    with django_assert_max_num_queries(8):
        assert client.get("/routing/team/").status_code == 200


def test_reps_may_not_see_the_team_page(client):
    client.force_login(UserFactory(with_role=Role.SALES_REP))
    assert client.get("/routing/team/").status_code == 403
