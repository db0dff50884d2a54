import csv
import io
import re
from datetime import timedelta

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import Notification
from leads.exports import csv_safe
from leads.models import (
    Activity,
    ActivityKind,
    ApiKey,
    IntakeOutcome,
    IntakeSubmission,
    Lead,
    Stage,
    StageChange,
)
from leads.selectors import api_key_hash
from tests.core.factories import UserFactory
from tests.leads.factories import (
    AccountFactory,
    ActivityFactory,
    ApiKeyFactory,
    CampaignFactory,
    IntakeSubmissionFactory,
    LeadFactory,
    SourceFactory,
    StageChangeFactory,
    TagFactory,
)
from tests.routing.factories import RepProfileFactory, TeamFactory

pytestmark = pytest.mark.django_db

ROWS = 20  # more rows than the query budget: an N+1 cannot hide under it
CHANGELIST_MAX_QUERIES = 15
RAW_KEY = re.compile(r"lo_[0-9a-f]{8}_[0-9a-f]{48}")


def changelist_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def action(admin_client, model, name: str, objects, follow: bool = True):
    return admin_client.post(
        changelist_url(model), {"action": name, "_selected_action": [obj.pk for obj in objects]}, follow=follow
    )


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.fixture
def many_rows(db) -> None:
    """ROWS of every model admin lists, each with all its foreign keys filled."""
    for n in range(ROWS):
        rep = RepProfileFactory(team=TeamFactory(manager=UserFactory()))
        source = SourceFactory()
        campaign = CampaignFactory(source=source)
        lead = LeadFactory(
            assigned=True,
            owner=rep.user,
            source=source,
            campaign=campaign,
            last_source=source,
            last_campaign=campaign,
            account=AccountFactory(owner=rep.user),
            phone_e164=f"+4420794600{n:02d}",
        )
        lead.tags.add(TagFactory())
        StageChangeFactory(lead=lead, changed_by=rep.user)
        ActivityFactory(lead=lead, actor=rep.user)
        IntakeSubmissionFactory(lead=lead, api_key=ApiKeyFactory(source=source), submitted_by=rep.user)
        Notification.objects.create(recipient=rep.user, title=f"New lead {n}")


@pytest.mark.parametrize("model", sorted(admin.site._registry, key=lambda m: m._meta.label), ids=str)
def test_every_changelist_loads_with_a_bounded_number_of_queries(
    admin_client, many_rows, model, django_assert_max_num_queries
):
    # given: many_rows
    # when
    with django_assert_max_num_queries(CHANGELIST_MAX_QUERIES):
        response = admin_client.get(changelist_url(model))
    # then
    assert response.status_code == 200


def test_lead_change_page_shows_history_with_a_bounded_number_of_queries(admin_client, django_assert_max_num_queries):
    # given: a lead with a long history by several people
    lead = LeadFactory()
    for n in range(30):
        ActivityFactory(lead=lead, actor=UserFactory(), occurred_at=timezone.now() - timedelta(hours=n))
        StageChangeFactory(lead=lead, changed_by=UserFactory())
    # when
    with django_assert_max_num_queries(25):
        response = admin_client.get(reverse("admin:leads_lead_change", args=[lead.pk]))
    # then: only the latest activities are listed
    assert response.status_code == 200
    assert response.content.decode().count('class="field-kind"') == 20


def test_lead_supplied_text_is_escaped(admin_client):
    # given
    lead = LeadFactory(first_name="<script>alert(1)</script>", company_name="<b>Acme</b>")
    ActivityFactory(lead=lead, payload={"note": "<img src=x onerror=alert(2)>"})
    # when
    pages = [
        admin_client.get(changelist_url(Lead)).content.decode(),
        admin_client.get(reverse("admin:leads_lead_change", args=[lead.pk])).content.decode(),
        admin_client.get(changelist_url(Activity)).content.decode(),
    ]
    # then
    for page in pages:
        assert "<script>alert(1)" not in page
        assert "<img src=x" not in page
        assert "<b>Acme" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0]


def test_merge_action_merges_the_selected_leads_into_the_oldest(admin_client, admin_user):
    # given
    oldest = LeadFactory(email="ada@company.example", created_at=timezone.now() - timedelta(days=3), title="")
    duplicate = LeadFactory(email="ada.l@company.example", title="CTO")
    note = ActivityFactory(lead=duplicate)
    # when
    response = action(admin_client, Lead, "merge_selected", [duplicate, oldest])
    # then
    assert not Lead.objects.filter(pk=duplicate.pk).exists()
    oldest.refresh_from_db()
    assert oldest.title == "CTO"
    note.refresh_from_db()
    assert note.lead_id == oldest.pk
    assert Activity.objects.filter(lead=oldest, kind=ActivityKind.MERGED, actor=admin_user).exists()
    assert any("Merged 1 lead(s)" in message for message in messages_of(response))


def test_merge_action_needs_two_leads(admin_client):
    # given
    lead = LeadFactory()
    # when
    response = action(admin_client, Lead, "merge_selected", [lead])
    # then
    assert Lead.objects.filter(pk=lead.pk).exists()
    assert messages_of(response) == ["Select at least two leads to merge."]


def test_recycle_action_recycles_what_can_move_and_names_what_cannot(admin_client, admin_user):
    # given
    working = LeadFactory(stage=Stage.WORKING)
    lost = LeadFactory(stage=Stage.LOST)
    won = LeadFactory(stage=Stage.WON, first_name="Grace", last_name="Hopper")
    # when
    response = action(admin_client, Lead, "recycle_selected", [working, lost, won])
    # then
    assert set(Lead.objects.filter(stage=Stage.RECYCLED).values_list("pk", flat=True)) == {working.pk, lost.pk}
    won.refresh_from_db()
    assert won.stage == Stage.WON
    change = StageChange.objects.get(lead=working)
    assert (change.from_stage, change.to_stage, change.changed_by) == (Stage.WORKING, Stage.RECYCLED, admin_user)
    messages = messages_of(response)
    assert "Recycled 2 lead(s)." in messages
    assert any("1 lead(s) could not be recycled" in m and "Grace Hopper" in m for m in messages)


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil.example")', '\'=HYPERLINK("http://evil.example")'),
        ("+1-555", "+1-555"),  # a phone number computes nothing: no apostrophe (issue 16)
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Ada", "Ada"),
        ("", ""),
        (42, 42),
    ],
)
def test_csv_safe_defuses_formulas(value, cell):
    # given / when / then
    assert csv_safe(value) == cell


def test_export_action_streams_the_selected_leads_as_csv_with_formulas_defused(admin_client):
    # given
    evil = LeadFactory(first_name="=cmd|' /C calc'!A0", company_name="@SUM(1+1)", phone="+44 20 7946 0958")
    plain = LeadFactory(first_name="Ada", company_name="Analytical Engines")
    LeadFactory(first_name="Not selected")
    # when
    response = action(admin_client, Lead, "export_csv", [evil, plain], follow=False)
    # then
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    by_id = {int(row["id"]): row for row in rows}
    assert set(by_id) == {evil.pk, plain.pk}
    assert by_id[evil.pk]["first_name"] == "'=cmd|' /C calc'!A0"
    assert by_id[evil.pk]["company"] == "'@SUM(1+1)"
    assert by_id[evil.pk]["phone"] == "+44 20 7946 0958"  # a phone number stays as it is (issue 16)
    assert by_id[plain.pk]["first_name"] == "Ada"
    assert by_id[plain.pk]["source"] == plain.source.name


def test_adding_an_api_key_shows_the_raw_key_once_and_it_authenticates(admin_client):
    # given
    source = SourceFactory(name="Website")
    # when
    response = admin_client.post(
        reverse("admin:leads_apikey_add"), {"source": source.pk, "name": "Pricing form"}, follow=True
    )
    # then: the raw key is in the message, only its hash is stored
    assert response.status_code == 200
    found = RAW_KEY.search(" ".join(messages_of(response)))
    assert found, messages_of(response)
    raw_key = found.group()
    api_key = ApiKey.objects.get()
    assert (api_key.source, api_key.name, api_key.key_hash) == (source, "Pricing form", api_key_hash(raw_key))
    assert raw_key.split("_")[1] == api_key.prefix
    # ... and never again
    again = admin_client.get(reverse("admin:leads_apikey_change", args=[api_key.pk])).content.decode()
    assert raw_key not in again
    assert raw_key not in admin_client.get(changelist_url(ApiKey)).content.decode()
    # ... and it works against the intake API
    intake = APIClient().post(
        "/api/v1/leads/", {"email": "new@company.example"}, format="json", HTTP_AUTHORIZATION=f"Api-Key {raw_key}"
    )
    assert intake.status_code == 201, intake.content


def test_api_key_add_form_asks_only_for_source_and_name(admin_client):
    # given / when
    page = admin_client.get(reverse("admin:leads_apikey_add")).content.decode()
    # then
    assert 'name="source"' in page and 'name="name"' in page
    assert 'name="prefix"' not in page and 'name="key_hash"' not in page


def test_revoke_action_makes_the_key_fail_with_401(admin_client, api_key, key_client):
    # given
    assert key_client.post("/api/v1/leads/", {"email": "one@company.example"}, format="json").status_code == 201
    # when
    response = action(admin_client, ApiKey, "revoke_selected", [api_key])
    # then
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert "Revoked 1 key(s)." in messages_of(response)
    assert key_client.post("/api/v1/leads/", {"email": "two@company.example"}, format="json").status_code == 401


def test_replay_action_runs_submissions_through_intake_again(admin_client):
    # given: one submission whose lead still exists, one whose lead was deleted since
    existing = IntakeSubmissionFactory()
    source = SourceFactory()
    orphan = IntakeSubmissionFactory(lead=None, source=source, payload={"email": "lost@company.example"})
    # when
    response = action(admin_client, IntakeSubmission, "replay_selected", [existing, orphan])
    # then
    assert "Replayed 2 submission(s): 1 created a lead, 1 matched an existing one." in messages_of(response)
    recreated = Lead.objects.get(email_normalized="lost@company.example")
    assert recreated.source == source
    replays = IntakeSubmission.objects.exclude(pk__in=[existing.pk, orphan.pk])
    assert {(s.lead_id, s.outcome) for s in replays} == {
        (existing.lead_id, IntakeOutcome.MERGED),
        (recreated.pk, IntakeOutcome.CREATED),
    }
    assert Activity.objects.filter(lead=existing.lead, kind=ActivityKind.FORM_SUBMITTED).exists()


def test_replay_action_reports_a_submission_that_no_longer_validates(admin_client):
    # given
    broken = IntakeSubmissionFactory(lead=None, source=SourceFactory(), payload={"email": "not-an-email"})
    # when
    response = action(admin_client, IntakeSubmission, "replay_selected", [broken])
    # then
    assert any(f"#{broken.pk}" in m and "could not be replayed" in m for m in messages_of(response))


def test_intake_log_is_read_only_in_admin(admin_client):
    # given
    submission = IntakeSubmissionFactory()
    # when
    page = admin_client.get(reverse("admin:leads_intakesubmission_change", args=[submission.pk]))
    add = admin_client.get(reverse("admin:leads_intakesubmission_add"))
    # then
    assert page.status_code == 200
    assert 'name="payload"' not in page.content.decode()
    assert add.status_code == 403


def test_imports_and_privacy_requests_are_listed_read_only_and_a_running_import_can_be_cancelled(admin_client):
    from leads.models import ImportJob, ImportStatus, PrivacyRequest

    # given: a running import, a finished one, and a privacy request
    running = ImportJob.objects.create(
        original_name="fair.csv", encoding="utf-8", delimiter=",", status=ImportStatus.RUNNING, file="imports/fair.csv"
    )
    done = ImportJob.objects.create(
        original_name="old.csv", encoding="utf-8", delimiter=",", status=ImportStatus.COMPLETED, file="imports/old.csv"
    )
    PrivacyRequest.objects.create(kind="export", lead_ref=42, reference="TICKET-7")

    # when
    imports_page = admin_client.get(changelist_url(ImportJob)).content.decode()
    privacy_page = admin_client.get(changelist_url(PrivacyRequest)).content.decode()
    change_page = admin_client.get(reverse("admin:leads_importjob_change", args=[running.pk])).content.decode()
    response = action(admin_client, ImportJob, "cancel_selected", [running, done])

    # then
    assert "fair.csv" in imports_page and "old.csv" in imports_page and "TICKET-7" in privacy_page
    assert 'name="_save"' not in change_page  # read-only
    assert "1 import(s) cancelled" in " ".join(messages_of(response))
    running.refresh_from_db(), done.refresh_from_db()
    assert running.cancel_requested and (done.status, done.cancel_requested) == (ImportStatus.COMPLETED, False)


def test_every_model_can_be_seen_in_admin(rf, admin_user):
    # given: issue 2, "every model in Django admin"; the bench's scratch table is not the product's
    from django.apps import apps

    from core.models import BenchReferenceRow

    request = rf.get("/admin/")
    request.user = admin_user
    shown = set(admin.site._registry)
    for model_admin in admin.site._registry.values():
        shown |= {inline.model for inline in model_admin.get_inline_instances(request)}
    models = [model for app in ("core", "leads", "routing") for model in apps.get_app_config(app).get_models()]
    # then
    missing = [model.__name__ for model in models if model not in shown and model is not BenchReferenceRow]
    assert missing == []


def test_replay_action_reports_a_submission_whose_payload_was_purged(admin_client, settings):
    # given
    from leads.services import intake_log_purge

    settings.LEADOPS_INTAKE_LOG_RETENTION_DAYS = 30
    old = IntakeSubmissionFactory(received_at=timezone.now() - timedelta(days=40))
    intake_log_purge()
    # when
    response = action(admin_client, IntakeSubmission, "replay_selected", [old])
    # then
    assert any(f"#{old.pk}" in m and "payload was deleted" in m for m in messages_of(response))
    assert IntakeSubmission.objects.count() == 1


def test_erase_action_asks_first_then_erases_and_records_each_request(admin_client):
    # given
    from leads.models import PrivacyRequest

    ada = LeadFactory(first_name="Ada", last_name="Lovelace", email="ada@x.example")
    grace = LeadFactory(first_name="Grace", last_name="Hopper", email="grace@x.example")
    # when: the action is chosen
    asked = action(admin_client, Lead, "erase_selected", [ada, grace])
    # then: a confirmation page naming both, and nothing erased yet
    page = asked.content.decode()
    assert asked.status_code == 200 and "This cannot be undone" in page
    assert "Ada Lovelace" in page and "Grace Hopper" in page
    assert Lead.objects.filter(email="ada@x.example").exists() and not PrivacyRequest.objects.exists()
    # when: confirmed, with a reference
    done = admin_client.post(
        changelist_url(Lead),
        {
            "action": "erase_selected",
            "_selected_action": [ada.pk, grace.pk],
            "confirm": "yes",
            "reference": "DSR-77",
        },
        follow=True,
    )
    # then
    assert any("Erased the personal data of 2 lead(s)" in m for m in messages_of(done))
    assert not Lead.objects.filter(email__in=["ada@x.example", "grace@x.example"]).exists()
    assert set(PrivacyRequest.objects.filter(kind="erase").values_list("lead_ref", "reference")) == {
        (ada.pk, "DSR-77"),
        (grace.pk, "DSR-77"),
    }
    # and: a second erasure is refused per lead, not as an error page
    again = admin_client.post(
        changelist_url(Lead), {"action": "erase_selected", "_selected_action": [ada.pk], "confirm": "yes"}, follow=True
    )
    assert any(f"#{ada.pk}: This lead has already been erased." in m for m in messages_of(again))


def test_erase_action_is_offered_only_to_users_who_may_erase(client, admin_client):
    # given: a staff user who may change and export leads but not erase them
    from django.contrib.auth.models import Permission

    LeadFactory()  # admin offers actions only on a list with rows
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_lead", "change_lead", "export_leads"]))
    client.force_login(staff)
    # when
    page = client.get(changelist_url(Lead))
    # then
    assert page.status_code == 200 and "export_csv" in page.content.decode()
    assert "erase_selected" not in page.content.decode()
    assert "erase_selected" in admin_client.get(changelist_url(Lead)).content.decode()
