"""API-key guessing: wrong keys are counted per client address and answered 429 past the limit;
the per-process key cache stays bounded; keys of the wrong shape are refused before any lookup."""

import pytest

from leads import selectors
from leads.selectors import api_key_get_active
from tests.leads.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db

INTAKE = "/api/v1/leads/"


@pytest.fixture
def limits(settings):
    settings.LEADOPS_API_KEY_FAILURES_PER_IP = 5
    settings.LEADOPS_AUTH_FAILURE_WINDOW_SECONDS = 900
    return settings


def post_with_key(api_client, raw_key, ip="203.0.113.7"):
    return api_client.post(
        INTAKE, {"email": "x@example.com"}, format="json", HTTP_AUTHORIZATION=f"Api-Key {raw_key}", REMOTE_ADDR=ip
    )


def test_wrong_keys_from_one_address_are_answered_429_with_retry_after(api_client, limits):
    # given: a real key, and five wrong ones from one address
    api_key = ApiKeyFactory()
    for n in range(5):
        assert post_with_key(api_client, f"lo_{n:08x}_" + "0" * 48).status_code == 401

    # when: the next attempt from that address, even with the right key
    response = post_with_key(api_client, api_key.raw_key)

    # then: 429 with how long to wait; another address is not affected
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 900
    assert post_with_key(api_client, api_key.raw_key, ip="198.51.100.9").status_code not in (401, 429)


def test_malformed_keys_count_as_failures(api_client, limits):
    for raw in ["nonsense", "lo_x_y", "lo_ZZZZZZZZ_" + "0" * 48, "lo_" + "a" * 5000 + "_b"]:
        assert post_with_key(api_client, raw).status_code == 401
    post_with_key(api_client, "still-wrong")
    assert post_with_key(api_client, "another").status_code == 429


@pytest.mark.parametrize(
    "raw_key",
    [
        "lo_deadbeef",
        "lo_DEADBEEF_" + "0" * 48,  # upper-case hex: api_key_create never makes it
        "lo_deadbeef_" + "0" * 47,
        "lo_deadbeef_" + "0" * 49,
        "lo_dead_beef_" + "0" * 48,
        "lo_" + "d" * 12 + "_" + "0" * 48,
        "xx_deadbeef_" + "0" * 48,
        "lo_deadbeef_" + "g" * 48,
        "lo_deadbee\u0000_" + "0" * 48,
    ],
)
def test_keys_of_the_wrong_shape_are_refused_without_a_lookup(raw_key, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert api_key_get_active(raw_key=raw_key) is None
    assert len(selectors._api_key_cache) == 0


def test_unknown_prefixes_do_not_grow_the_key_cache_past_its_bound(monkeypatch):
    # given: a small bound and a real key looked up first
    monkeypatch.setattr(selectors, "API_KEY_CACHE_MAX", 50)
    api_key = ApiKeyFactory()
    assert api_key_get_active(raw_key=api_key.raw_key) == api_key

    # when: many well-shaped keys with unknown prefixes
    for n in range(200):
        assert api_key_get_active(raw_key=f"lo_{0xF0000000 + n:08x}_" + "0" * 48) is None

    # then: the cache holds at most the bound, the oldest entries went first
    assert len(selectors._api_key_cache) == 50
    assert api_key.prefix not in selectors._api_key_cache


def test_a_key_in_use_stays_cached_while_unknown_prefixes_come_and_go(monkeypatch, django_assert_num_queries):
    monkeypatch.setattr(selectors, "API_KEY_CACHE_MAX", 10)
    api_key = ApiKeyFactory()
    for n in range(40):
        api_key_get_active(raw_key=api_key.raw_key)  # used between each unknown: most recent
        api_key_get_active(raw_key=f"lo_{0xE0000000 + n:08x}_" + "0" * 48)
    with django_assert_num_queries(0):
        assert api_key_get_active(raw_key=api_key.raw_key) == api_key
