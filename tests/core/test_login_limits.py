"""Password guessing: failed sign-ins are counted per client address and per username; past the
limit the sign-in pages answer 429 with Retry-After and do not check the password."""

import pytest
from django.urls import reverse

from tests.core.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings):
    settings.LEADOPS_LOGIN_FAILURES_PER_IP = 6
    settings.LEADOPS_LOGIN_FAILURES_PER_USERNAME = 3
    settings.LEADOPS_AUTH_FAILURE_WINDOW_SECONDS = 900
    return settings


def sign_in(client, username, password, ip="203.0.113.7", url="/login/"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_wrong_passwords_for_one_username_lock_it_with_429_and_retry_after(client, limits):
    # given: a user and three wrong passwords for them
    UserFactory(username="olivia", password="right-password")
    for _ in range(3):
        assert sign_in(client, "olivia", "guess").status_code == 200

    # when: the right password comes next, even from another address, or in another case
    response = sign_in(client, "olivia", "right-password", ip="198.51.100.9")
    response_case = sign_in(client, "OLIVIA", "guess", ip="198.51.100.10")

    # then: refused without checking it, with how long to wait
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 900
    assert b"Too many failed sign-ins" in response.content
    assert "_auth_user_id" not in client.session
    assert response_case.status_code == 429


def test_wrong_passwords_from_one_address_lock_the_address_for_every_username(client, limits):
    # given: six failures from one address, each for a different username
    UserFactory(username="rory", password="right-password")
    for n in range(6):
        assert sign_in(client, f"user{n}", "guess").status_code == 200

    # when / then: that address is refused, another one signs in
    assert sign_in(client, "rory", "right-password").status_code == 429
    assert sign_in(client, "rory", "right-password", ip="198.51.100.9").status_code == 302


def test_admin_sign_in_shares_the_limits(client, limits):
    UserFactory(username="ada", password="right-password", is_staff=True, is_superuser=True)
    for _ in range(3):
        assert sign_in(client, "ada", "guess", url="/admin/login/").status_code == 200
    response = sign_in(client, "ada", "right-password", url="/admin/login/")
    assert response.status_code == 429
    assert "Retry-After" in response
    assert sign_in(client, "ada", "right-password").status_code == 429  # the same username count


def test_a_successful_sign_in_clears_the_username_count(client, limits):
    # given: two failures, then the right password
    UserFactory(username="sam", password="right-password")
    sign_in(client, "sam", "guess")
    sign_in(client, "sam", "guess")
    assert sign_in(client, "sam", "right-password").status_code == 302
    client.logout()

    # when: two more mistakes
    sign_in(client, "sam", "guess")
    sign_in(client, "sam", "guess")

    # then: still below the limit of three
    assert sign_in(client, "sam", "right-password").status_code == 302


def test_the_sign_in_page_itself_is_never_limited(client, limits):
    for _ in range(4):
        sign_in(client, "olivia", "guess")
    assert client.get(reverse("login"), REMOTE_ADDR="203.0.113.7").status_code == 200
