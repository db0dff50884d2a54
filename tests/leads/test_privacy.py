"""Privacy requests: the JSON export holds everything about a lead; erasure removes personal data
everywhere it is stored, keeps the figures, and is audited without personal data."""

import json

import pytest
from django.contrib.auth.models import Permission
from django.core.serializers.json import DjangoJSONEncoder
from django.urls import reverse

from leads.models import Activity, ActivityKind, IntakeSubmission, Lead, PrivacyRequest, Stage, StageChange
from leads.privacy import LeadAlreadyErased, lead_data_export, lead_erase
from leads.services import IntakeContext, LeadData, activity_log, lead_capture, lead_stage_change
from tests.core.factories import UserFactory
from tests.leads.factories import LeadFactory, SourceFactory

pytestmark = pytest.mark.django_db

PII = ["Ada", "Lovelace", "ada.lovelace@analytical.example", "+442079460958", "20 7946 0958", "N1 9GU", "203.0.113.9"]


@pytest.fixture
def privacy_user(db):
    """Marketing ops with the two privacy permissions (what core/roles.py should grant ops)."""
    user = UserFactory(with_role="Marketing ops")
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="leads", codename__in=["export_lead_data", "erase_lead"])
    )
    return user


@pytest.fixture
def lead_with_history(ops_user) -> Lead:
    payload = {
        "email": "ada.lovelace@analytical.example",
        "phone": "+44 20 7946 0958",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "postal_code": "N1 9GU",
        "message": "Call me, Ada Lovelace, on +44 20 7946 0958",
        "referrer": "https://mail.example/?to=ada.lovelace@analytical.example",
        "utm_source": "newsletter",
        "custom_fields": {"hobby": "engines"},
    }
    data = LeadData(
        **{k: v for k, v in payload.items() if k != "custom_fields"},
        custom_fields=payload["custom_fields"],
        tags=["vip"],
        marketing_consent=True,
    )
    source = SourceFactory()
    lead = lead_capture(
        data=data, context=IntakeContext(raw_payload=payload, source=source, remote_addr="203.0.113.9")
    ).lead
    activity_log(lead_id=lead.pk, kind=ActivityKind.CALL, actor=ops_user, payload={"note": "Ada asked for a demo"})
    lead_stage_change(lead_id=lead.pk, to_stage=Stage.MQL, actor=ops_user, reason="Ada Lovelace is keen")
    return lead


def dump(data) -> str:
    return json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False)


def test_export_holds_everything_about_the_lead(lead_with_history, ops_user):
    # when
    data = lead_data_export(lead_id=lead_with_history.pk, actor=ops_user, reference="T-1")
    # then
    assert data["lead"]["email"] == "ada.lovelace@analytical.example" and data["lead"]["id"] == lead_with_history.pk
    assert data["lead"]["custom_fields"] == {"hobby": "engines"}
    assert data["tags"] == ["vip"]
    assert {a["kind"] for a in data["activities"]} >= {"form_submitted", "call", "stage_changed"}
    assert [(s["from_stage"], s["to_stage"]) for s in data["stage_changes"]][-1] == (
        Stage.WORKING,
        Stage.MQL,
    )  # the call moved it to working
    assert data["intake_submissions"][0]["payload"]["message"].startswith("Call me")
    assert data["intake_submissions"][0]["remote_addr"] == "203.0.113.9"
    assert "routing.assignment" in data["other_records"]  # other apps' rows about the lead are included
    json.loads(dump(data))  # serialisable as it is
    audit = PrivacyRequest.objects.get()
    assert (audit.kind, audit.lead_ref, audit.actor, audit.reference) == (
        "export",
        lead_with_history.pk,
        ops_user,
        "T-1",
    )


def test_erasure_removes_personal_data_everywhere_and_keeps_the_figures(lead_with_history, ops_user):
    # given
    lead_id = lead_with_history.pk
    before = {
        "leads": Lead.objects.count(),
        "activities": Activity.objects.filter(lead_id=lead_id).count(),
        "stage_changes": list(StageChange.objects.filter(lead_id=lead_id).values_list("to_stage", "changed_at")),
        "submissions": IntakeSubmission.objects.filter(lead_id=lead_id).count(),
    }
    # when
    audit = lead_erase(lead_id=lead_id, actor=ops_user, reference="DSR-42")
    # then: nothing personal is left anywhere the export looks
    text = dump(lead_data_export(lead_id=lead_id, actor=ops_user))
    for value in PII:
        assert value not in text, value
    assert "engines" not in text and "demo" not in text and "keen" not in text
    # the figures stay
    lead = Lead.objects.get(pk=lead_id)
    assert (lead.stage, lead.source_id is not None, lead.created_at) == (Stage.MQL, True, lead_with_history.created_at)
    assert lead.first_touch["utm_source"] == "newsletter" and "referrer" not in lead.first_touch
    assert not lead.marketing_consent and str(lead) == f"Lead {lead_id}"
    assert Lead.objects.count() == before["leads"]
    assert Activity.objects.filter(lead_id=lead_id).count() == before["activities"]
    assert (
        list(StageChange.objects.filter(lead_id=lead_id).values_list("to_stage", "changed_at"))
        == before["stage_changes"]
    )
    assert StageChange.objects.filter(lead_id=lead_id, reason="captured").exists()  # system reasons stay
    assert IntakeSubmission.objects.filter(lead_id=lead_id).count() == before["submissions"]
    assert list(lead.tags.values_list("name", flat=True)) == ["vip"]
    # the audit row: who, when, which lead, counts; no personal data
    assert (audit.kind, audit.lead_ref, audit.actor, audit.reference) == ("erase", lead_id, ops_user, "DSR-42")
    audit_text = dump({"summary": audit.summary, "reference": audit.reference})
    assert not any(value in audit_text for value in PII)


def test_erasure_renames_the_lead_in_notifications_about_it_and_leaves_others_alone(lead_with_history, ops_user):
    from core.models import Notification

    # given: what the owner and the manager were told about Ada, and a notification about someone else
    lead_id = lead_with_history.pk
    url = reverse("leads:lead_detail", kwargs={"lead_id": lead_id})
    other = LeadFactory(first_name="Grace", last_name="Hopper")
    told = [
        Notification.objects.create(recipient=ops_user, title="New lead: Ada Lovelace", body="round-robin", url=url),
        Notification.objects.create(
            recipient=ops_user, title="SLA breached: Ada Lovelace", body="Tom has not touched Ada Lovelace.", url=url
        ),
    ]
    unrelated = Notification.objects.create(
        recipient=ops_user, title="New lead: Grace Hopper", url=reverse("leads:lead_detail", args=[other.pk])
    )
    # when
    audit = lead_erase(lead_id=lead_id, actor=ops_user)
    # then
    texts = [(n.title, n.body) for n in Notification.objects.filter(pk__in=[n.pk for n in told]).order_by("pk")]
    assert texts == [
        (f"New lead: Lead {lead_id}", "round-robin"),
        (f"SLA breached: Lead {lead_id}", f"Tom has not touched Lead {lead_id}."),
    ]
    assert Notification.objects.get(pk=unrelated.pk).title == "New lead: Grace Hopper"
    assert audit.summary["notifications"] == 2


def test_erasure_happens_once(lead_with_history, ops_user):
    lead_erase(lead_id=lead_with_history.pk, actor=ops_user)
    with pytest.raises(LeadAlreadyErased):
        lead_erase(lead_id=lead_with_history.pk, actor=ops_user)
    assert PrivacyRequest.objects.filter(kind="erase").count() == 1


def test_after_erasure_the_same_person_starts_a_new_lead(lead_with_history, ops_user):
    lead_erase(lead_id=lead_with_history.pk, actor=ops_user)
    again = lead_capture(data=LeadData(email="ada.lovelace@analytical.example"), context=IntakeContext(raw_payload={}))
    assert again.created and again.lead.pk != lead_with_history.pk


# --- pages ---------------------------------------------------------------------------------------


def test_privacy_pages_need_the_privacy_permissions(client, ops_user, rep_user, manager_user):
    lead = LeadFactory()
    for user in (rep_user, manager_user):
        client.force_login(user)
        assert client.get(reverse("leads-privacy:page", args=[lead.pk])).status_code == 403
        assert client.post(reverse("leads-privacy:erase", args=[lead.pk]), {"confirm": "ERASE"}).status_code == 403
    assert Lead.objects.get(pk=lead.pk).email
    # Marketing ops handle privacy requests.
    client.force_login(ops_user)
    assert client.get(reverse("leads-privacy:page", args=[lead.pk])).status_code == 200


def test_export_download(client, privacy_user, lead_with_history):
    client.force_login(privacy_user)
    assert client.get(reverse("leads-privacy:page", args=[lead_with_history.pk])).status_code == 200
    response = client.post(reverse("leads-privacy:export", args=[lead_with_history.pk]), {"reference": "T-7"})
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert "attachment" in response["Content-Disposition"]
    assert json.loads(response.content)["lead"]["last_name"] == "Lovelace"


def test_erase_through_the_page_needs_the_confirmation_word(client, privacy_user, lead_with_history):
    client.force_login(privacy_user)
    url = reverse("leads-privacy:erase", args=[lead_with_history.pk])
    refused = client.post(url, {"confirm": "yes"})
    assert refused.status_code == 400 and b"Type ERASE to confirm" in refused.content
    response = client.post(url, {"confirm": "ERASE", "reference": "DSR-1"}, follow=True)
    assert response.status_code == 200 and b"Erased on" in response.content
    assert Lead.objects.get(pk=lead_with_history.pk).email == ""
    again = client.post(url, {"confirm": "ERASE"})
    assert again.status_code == 409 and b"already been erased" in again.content


def test_admin_may_erase(client, lead_with_history):
    admin = UserFactory(is_superuser=True, is_staff=True)
    client.force_login(admin)
    response = client.post(reverse("leads-privacy:erase", args=[lead_with_history.pk]), {"confirm": "ERASE"})
    assert response.status_code == 302
    assert PrivacyRequest.objects.get(kind="erase").actor == admin
