"""core/db: the one place below Django's public API. These tests fail if the framework changes
under it."""

import pytest
from django.db import connection, transaction

from core.caches import caches_clear_all, caches_registered
from core.db import insert_unless_conflict
from leads.models import Lead

pytestmark = pytest.mark.django_db


def test_insert_unless_conflict_inserts_and_sets_the_key_and_state():
    # given
    lead = Lead(email="a@example.org", email_normalized="a@example.org")
    # when
    inserted = insert_unless_conflict(lead)
    # then: a saved instance, as Model.save() leaves it (a later save() is an UPDATE)
    assert inserted and lead.pk is not None
    assert not lead._state.adding and lead._state.db == "default"
    assert lead.updated_at is not None
    lead.title = "CTO"
    lead.save(update_fields=["title"])
    assert Lead.objects.get(pk=lead.pk).title == "CTO"


def test_insert_unless_conflict_does_nothing_on_a_partial_unique_index_and_keeps_the_transaction():
    # given: one lead per normalised email (a partial unique index)
    Lead.objects.create(email="a@example.org", email_normalized="a@example.org")
    duplicate = Lead(email="A@example.org", email_normalized="a@example.org")
    # when: inside a transaction, as capture runs it
    with transaction.atomic():
        inserted = insert_unless_conflict(duplicate)
        still_usable = Lead.objects.count()  # an aborted transaction would raise here
    # then
    assert not inserted and duplicate.pk is None
    assert still_usable == 1 and connection.vendor in ("postgresql", "sqlite")


def test_every_process_cache_is_in_the_registry_and_cleared_together():
    # given: the caches of intake, API keys, rate-limit leases and routing configuration
    import leads.api.throttling  # noqa: F401  (a module registers its cache when it is imported)
    from leads.services import intake

    intake._campaign_cache[("name", "x")] = (0.0, None)
    # when
    caches_clear_all()
    # then
    assert {"leads.campaigns", "leads.api_keys", "leads.throttle_leases", "routing.config"} <= set(caches_registered())
    assert intake._campaign_cache == {}


def test_skip_locked_clause_is_the_backends_own_lock_clause_or_nothing():
    from core.db import skip_locked_clause

    clause = skip_locked_clause(of="r")
    if connection.features.has_select_for_update_skip_locked:
        assert clause == 'FOR NO KEY UPDATE OF "r" SKIP LOCKED' or clause == "FOR NO KEY UPDATE OF r SKIP LOCKED"
    else:
        assert clause == ""


def test_rows_update_writes_each_rows_own_values_nulls_included_and_leaves_other_rows_alone():
    # given: three leads; two get new values, one of them a NULL timestamp and one a timestamp
    from django.utils import timezone

    from core.db import rows_update

    now = timezone.now()
    a, b, c = (Lead.objects.create(email=f"{n}@example.org", email_normalized=f"{n}@example.org") for n in "abc")
    Lead.objects.filter(pk=a.pk).update(last_touch_at=now)
    # when
    updated = rows_update(
        Lead,
        [(a.pk, {"title": "CEO", "last_touch_at": None}), (b.pk, {"title": "", "last_touch_at": now})],
        ["title", "last_touch_at"],
    )
    # then
    assert updated == 2
    values = dict(Lead.objects.values_list("pk", "title"))
    touched = dict(Lead.objects.values_list("pk", "last_touch_at"))
    assert (values[a.pk], values[b.pk], values[c.pk]) == ("CEO", "", "")
    assert touched[a.pk] is None and touched[b.pk] == now and touched[c.pk] is None
