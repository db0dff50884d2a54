import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from config.celery import app as celery_app
from core.exceptions import ApplicationError
from core.roles import Role
from leads.enrichment import EnrichmentResult, enrichment_provider
from leads.models import Account, Activity, ActivityKind, IntakeSubmission, Lead, Stage, StageChange
from leads.normalization import company_domain_from_email, email_normalize, phone_to_e164
from leads.selectors import api_key_get_active
from leads.services import (
    ALLOWED_TRANSITIONS,
    IntakeContext,
    InvalidLeadData,
    InvalidStageTransition,
    LeadData,
    api_key_create,
    api_key_revoke,
    intake_submission_replay,
    lead_capture,
    lead_enrich,
    lead_enrichment_run,
    lead_merge,
    lead_stage_change,
    leads_bulk_apply,
)
from tests.core.factories import UserFactory
from tests.leads.factories import ActivityFactory, LeadFactory, SourceFactory, TagFactory

pytestmark = pytest.mark.django_db


def capture(**fields) -> Lead:
    return lead_capture(data=LeadData(**fields), context=IntakeContext(raw_payload=fields)).lead


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("  Ada@Example.COM ", "ada@example.com"),
        ("j.o.h.n+promo@gmail.com", "john@gmail.com"),
        ("John@GoogleMail.com", "john@gmail.com"),
        ("first.last+tag@company.example", "first.last+tag@company.example"),
    ],
)
def test_email_normalization(raw, normalized):
    assert email_normalize(raw) == normalized


def test_phone_parsing_to_e164():
    assert phone_to_e164("+49 30 901820") == "+4930901820"
    assert phone_to_e164("(415) 555-2671", region="US") == "+14155552671"


def test_free_mail_is_not_a_company_domain():
    assert company_domain_from_email("ann@gmail.com") == ""
    assert company_domain_from_email("ann@Initech.example") == "initech.example"


def test_capture_without_email_or_phone_is_refused():
    with pytest.raises(InvalidLeadData) as error:
        capture(first_name="Nobody")
    assert error.value.field == "email"
    assert Lead.objects.count() == 0


def test_capture_parses_phone_when_caller_did_not():
    assert capture(phone="+33 1 42 68 53 00").phone_e164 == "+33142685300"


def test_capture_with_a_bad_phone_names_the_field():
    with pytest.raises(InvalidLeadData) as error:
        capture(phone="12")
    assert error.value.field == "phone"


def test_historical_capture_keeps_the_time_it_happened():
    # given
    when = timezone.now() - timedelta(days=30)
    # when
    lead = capture(email="old@x.example", occurred_at=when)
    # then
    assert lead.created_at == when
    assert StageChange.objects.get(lead=lead).changed_at == when


def test_every_stage_has_a_transition_rule():
    assert set(ALLOWED_TRANSITIONS) == set(Stage.values)
    assert ALLOWED_TRANSITIONS[Stage.WON] == frozenset()


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        (["working", "mql", "sql", "opportunity", "won"], True),
        (["working", "sql", "lost", "recycled", "mql"], True),
        (["disqualified", "recycled", "working"], True),
        (["won"], False),
        (["opportunity"], False),
        (["working", "mql", "sql", "opportunity", "won", "recycled"], False),
    ],
)
def test_lifecycle_paths(path, ok):
    # given
    lead = LeadFactory(stage=Stage.NEW)
    # when
    try:
        for stage in path:
            lead_stage_change(lead_id=lead.pk, to_stage=stage, actor=None, reason="test")
        moved = True
    except InvalidStageTransition:
        moved = False
    # then
    assert moved is ok
    lead.refresh_from_db()
    history = list(StageChange.objects.filter(lead=lead).values_list("to_stage", flat=True))
    assert history[-1:] == [lead.stage] or (not history and lead.stage == Stage.NEW)


def test_merge_moves_history_fills_blanks_and_deletes_duplicates():
    # given
    survivor = LeadFactory(title="", phone="", phone_e164="", company_name="")
    duplicate = LeadFactory(
        title="CTO", company_name="Initech", phone="+1 415 555 2671", phone_e164="+14155552671", email=""
    )
    type(duplicate).objects.filter(pk=duplicate.pk).update(email_normalized="")
    duplicate.refresh_from_db()
    duplicate.tags.add(TagFactory(name="vip"))
    ActivityFactory(lead=duplicate)
    IntakeSubmission.objects.create(
        received_at=timezone.now(), lead=duplicate, payload={}, outcome="created", source=duplicate.source
    )
    # when
    merged = lead_merge(survivor_id=survivor.pk, duplicate_ids=[duplicate.pk], actor=None)
    # then
    assert not Lead.objects.filter(pk=duplicate.pk).exists()
    assert (merged.title, merged.company_name, merged.phone_e164) == ("CTO", "Initech", "+14155552671")
    assert list(merged.tags.values_list("name", flat=True)) == ["vip"]
    assert merged.activities.filter(kind=ActivityKind.NOTE).count() == 1
    assert merged.activities.get(kind=ActivityKind.MERGED).payload["merged"][0]["id"] == duplicate.pk
    assert IntakeSubmission.objects.get().lead == merged


def test_merge_needs_another_lead():
    lead = LeadFactory()
    with pytest.raises(ApplicationError):
        lead_merge(survivor_id=lead.pk, duplicate_ids=[lead.pk], actor=None)


def test_enrichment_fills_domain_country_and_account_once():
    # given
    lead = capture(email="ceo@initech.example", phone="+49 30 901820")
    # when
    lead_enrich(lead_id=lead.pk)
    again = lead_enrich(lead_id=lead.pk)  # a redelivered task
    # then
    lead.refresh_from_db()
    assert again is None
    assert (lead.company_domain, lead.country) == ("initech.example", "DE")
    assert lead.account == Account.objects.get(domain="initech.example")
    assert lead.enriched_at is not None
    assert Activity.objects.filter(lead=lead, kind=ActivityKind.ENRICHED).count() == 1


def test_enrichment_groups_colleagues_under_one_account_but_not_gmail_users():
    # given
    a, b = capture(email="a@initech.example"), capture(email="b@initech.example")
    c = capture(email="c@gmail.com")
    # when
    for lead in (a, b, c):
        lead_enrich(lead_id=lead.pk)
    # then
    a.refresh_from_db(), b.refresh_from_db(), c.refresh_from_db()
    assert a.account_id == b.account_id is not None
    assert c.account_id is None and c.company_domain == ""


def test_enrichment_never_overwrites_what_the_lead_said():
    lead = capture(email="x@initech.example", company_domain="initech.com", country="FR", phone="+49 30 901820")
    lead_enrich(lead_id=lead.pk)
    lead.refresh_from_db()
    assert (lead.company_domain, lead.country) == ("initech.com", "FR")


def test_an_enrichment_run_enriches_every_waiting_lead_across_batches():
    # given: leads whose enrichment request was lost, one already enriched
    waiting = [capture(email=f"s{n}@corp{n}.example") for n in range(5)]
    done = capture(email="done@corp.example")
    lead_enrich(lead_id=done.pk)
    # when
    run = lead_enrichment_run(batch_size=2)
    # then
    assert (run.handled, run.more, run.skipped) == (5, False, False)
    assert Lead.objects.filter(pk__in=[lead.pk for lead in waiting], account__isnull=False).count() == 5
    assert Activity.objects.filter(kind=ActivityKind.ENRICHED).count() == 6


def test_an_enrichment_run_leaves_its_leads_to_a_run_in_progress():
    # given: another worker's run holds the lock
    lead = capture(email="held@initech.example")
    cache.add("leadops:enrichment-run", "other-run", timeout=60)
    try:
        # when
        run = lead_enrichment_run()
    finally:
        cache.delete("leadops:enrichment-run")
    # then
    assert run.skipped and run.handled == 0
    lead.refresh_from_db()
    assert lead.enriched_at is None


class ProviderDownForOneLead:
    name = "flaky"

    def enrich(self, lead: Lead) -> EnrichmentResult:
        if lead.email == "broken@initech.example":
            raise ConnectionError("provider timed out")
        return EnrichmentResult(company_domain="provider.example")


def test_a_failing_provider_call_does_not_stall_the_leads_behind_it(settings):
    # given: the oldest waiting lead makes the provider fail
    settings.LEADOPS_ENRICHMENT_PROVIDER = "tests.leads.test_services.ProviderDownForOneLead"
    enrichment_provider.cache_clear()
    broken = capture(email="broken@initech.example")
    behind = [capture(email=f"b{n}@x{n}.example") for n in range(3)]
    try:
        # when
        run = lead_enrichment_run(batch_size=2)
    finally:
        enrichment_provider.cache_clear()
    # then: the others are enriched; the broken one waits for the next run
    assert (run.handled, run.failed, run.more) == (3, 1, False)
    assert Lead.objects.filter(pk__in=[lead.pk for lead in behind], enriched_at__isnull=False).count() == 3
    broken.refresh_from_db()
    assert broken.enriched_at is None


def test_capture_requests_enrichment_after_commit(django_capture_on_commit_callbacks):
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        capture(email="q@initech.example")
    # then
    assert [callback.args[0].name for callback in callbacks] == ["leads.tasks.lead_enrichment_run_task"]


def test_enrichment_is_requested_once_per_window_per_process(settings, monkeypatch, django_capture_on_commit_callbacks):
    # given: a one-second batch window, on the real Redis broker
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("counts messages on the Redis broker")
    settings.LEADOPS_ENRICHMENT_BATCH_SECONDS = 1
    monkeypatch.setattr("core.enqueue._batched_requested_at", {})
    broker = celery_app.connection_for_write().default_channel.client
    broker.delete("celery")
    # when: three leads are stored within the window
    for n in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            capture(email=f"w{n}@initech.example")
    # then: one run was sent, due after the window so that it sees all three
    messages = [json.loads(raw) for raw in broker.lrange("celery", 0, -1)]
    broker.delete("celery")
    assert [m["headers"]["task"] for m in messages] == ["leads.tasks.lead_enrichment_run_task"]
    assert messages[0]["headers"]["eta"] is not None


def test_api_keys_are_stored_hashed_and_revocable():
    # given
    key, raw = api_key_create(source=SourceFactory(), name="pricing form")
    # then
    assert raw not in key.key_hash and key.prefix in raw
    assert api_key_get_active(raw_key=raw) == key
    assert api_key_get_active(raw_key=raw[:-1] + "x") is None
    api_key_revoke(api_key=key)
    assert api_key_get_active(raw_key=raw) is None


def test_replaying_a_logged_submission_reaches_the_same_lead():
    # given
    lead = lead_capture(
        data=LeadData(email="r@x.example"), context=IntakeContext(raw_payload={"email": "r@x.example"})
    ).lead
    submission = IntakeSubmission.objects.get()
    # when
    result = intake_submission_replay(submission_id=submission.pk)
    # then
    assert result.lead.pk == lead.pk and result.created is False
    assert IntakeSubmission.objects.count() == 2


def test_closing_a_lead_gives_its_owner_capacity_back_at_once():
    # given
    from routing.models import RepProfile

    lead = LeadFactory(assigned=True, stage=Stage.OPPORTUNITY)
    rep = RepProfile.objects.create(user=lead.owner, capacity=5, open_leads=1)
    # when
    lead_stage_change(lead_id=lead.pk, to_stage=Stage.WON, actor=None)
    # then
    rep.refresh_from_db()
    assert rep.open_leads == 0


def test_recycling_a_closed_lead_takes_capacity_again():
    from routing.models import RepProfile

    lead = LeadFactory(assigned=True, stage=Stage.LOST)
    rep = RepProfile.objects.create(user=lead.owner, capacity=5, open_leads=0)
    lead_stage_change(lead_id=lead.pk, to_stage=Stage.RECYCLED, actor=None)
    rep.refresh_from_db()
    assert rep.open_leads == 1


def test_replay_of_a_deleted_lead_without_a_stored_response_is_a_conflict():
    # given: a submission logged with an Idempotency-Key whose response was never stored (crash window)
    context = IntakeContext(raw_payload={"email": "gone@x.example"}, idempotency_key="k1")
    result = lead_capture(data=LeadData(email="gone@x.example"), context=context)
    Lead.objects.filter(pk=result.lead.pk).delete()
    # when / then
    with pytest.raises(ApplicationError) as error:
        lead_capture(data=LeadData(email="gone@x.example"), context=context)
    assert error.value.status_code == 409


def test_a_dry_run_sample_lead_is_normalised_like_intake():
    # given / when
    from leads.services import lead_sample_build

    lead = lead_sample_build(
        fields={
            "email": "J.O.H.N+promo@gmail.com",
            "country": "de",
            "company_domain": "Initech.COM ",
            "phone": "030 901820",
        }
    )
    # then: the same identity intake would store, so the A/B arm and earlier-lead match agree
    assert lead.pk is None
    assert (lead.email_normalized, lead.country, lead.company_domain, lead.phone_e164) == (
        "john@gmail.com",
        "DE",
        "initech.com",
        "+4930901820",
    )


def test_a_bulk_action_changes_each_lead_on_its_own_and_only_visible_ones():
    # given: a rep's two leads (one already won: it cannot go back to working) and another rep's lead
    rep, other = UserFactory(with_role=Role.SALES_REP), UserFactory(with_role=Role.SALES_REP)
    open_lead, won = LeadFactory(owner=rep, stage=Stage.NEW), LeadFactory(owner=rep, stage=Stage.WON)
    theirs = LeadFactory(owner=other, stage=Stage.NEW)
    # when
    result = leads_bulk_apply(
        user=rep, action="stage", lead_ids=[open_lead.pk, won.pk, theirs.pk], to_stage=Stage.WORKING
    )
    # then
    assert result.done == 1 and list(result.failed) == [won.pk]
    open_lead.refresh_from_db(), won.refresh_from_db(), theirs.refresh_from_db()
    assert (open_lead.stage, won.stage, theirs.stage) == (Stage.WORKING, Stage.WON, Stage.NEW)


# --- intake log retention --------------------------------------------------------------------------


def test_intake_payloads_past_their_retention_are_deleted_and_the_rows_kept(settings):
    # given: 90 days of retention; a submission from 91 days ago (with the stored response of an
    # idempotent request) and one from yesterday
    from leads.services import intake_log_purge
    from tests.leads.factories import IntakeSubmissionFactory

    settings.LEADOPS_INTAKE_LOG_RETENTION_DAYS = 90
    now = timezone.now()
    old = IntakeSubmissionFactory(
        received_at=now - timedelta(days=91), remote_addr="203.0.113.9", response_body={"email": "a@x.example"}
    )
    recent = IntakeSubmissionFactory(received_at=now - timedelta(days=1), remote_addr="203.0.113.10")
    # when: the hourly job runs, twice
    purged, again = intake_log_purge(), intake_log_purge()
    # then: the old one lost its personal data, nothing else did
    old.refresh_from_db()
    recent.refresh_from_db()
    assert (purged, again) == (1, 0)
    assert (old.payload, old.response_body, old.remote_addr) == ({}, None, None)
    assert old.purged_at is not None and old.lead_id is not None and old.outcome == "created"
    assert recent.purged_at is None and recent.payload and recent.remote_addr == "203.0.113.10"


def test_intake_payloads_are_kept_forever_by_default():
    from leads.services import intake_log_purge
    from tests.leads.factories import IntakeSubmissionFactory

    ancient = IntakeSubmissionFactory(received_at=timezone.now() - timedelta(days=3650))
    assert intake_log_purge() == 0
    ancient.refresh_from_db()
    assert ancient.purged_at is None and ancient.payload


def test_a_purged_submission_cannot_be_replayed(settings):
    from leads.services import intake_log_purge, intake_submission_replay
    from tests.leads.factories import IntakeSubmissionFactory

    settings.LEADOPS_INTAKE_LOG_RETENTION_DAYS = 30
    old = IntakeSubmissionFactory(received_at=timezone.now() - timedelta(days=31))
    intake_log_purge()
    with pytest.raises(ApplicationError, match="payload was deleted"):
        intake_submission_replay(submission_id=old.pk)
    assert IntakeSubmission.objects.count() == 1  # nothing new was captured


def test_the_intake_log_purge_runs_hourly_on_beat():
    from leads.tasks import intake_log_purge_task

    entry = celery_app.conf.beat_schedule["intake-log-purge"]
    assert entry["task"] == intake_log_purge_task.name
    assert entry["schedule"] == timedelta(hours=1)


def test_a_recorded_outcome_closes_an_open_lead_in_one_step_and_never_reopens_a_closed_one():
    # given: a new lead, and one already won
    from leads.services import InvalidStageTransition, lead_stage_change

    open_lead = LeadFactory()
    won = LeadFactory(stage=Stage.WON)
    # when: a historical import records outcomes
    lead_stage_change(lead_id=open_lead.pk, to_stage=Stage.WON, actor=None, reason="import", recorded_outcome=True)
    lead_stage_change(lead_id=won.pk, to_stage=Stage.LOST, actor=None, reason="import", recorded_outcome=True)
    # then: new -> won in one step (a person could not), with its history; the won lead stays won
    open_lead.refresh_from_db()
    won.refresh_from_db()
    assert open_lead.stage == Stage.WON and won.stage == Stage.WON
    assert list(open_lead.stage_changes.values_list("from_stage", "to_stage")) == [(Stage.NEW, Stage.WON)]
    with pytest.raises(InvalidStageTransition):
        lead_stage_change(lead_id=open_lead.pk, to_stage=Stage.NEW, actor=None, recorded_outcome=True)
    with pytest.raises(InvalidStageTransition):
        lead_stage_change(lead_id=LeadFactory().pk, to_stage=Stage.WON, actor=None)  # a person may not
