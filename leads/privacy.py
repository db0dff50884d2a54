"""Privacy requests (GDPR access and erasure) for one lead.

- `lead_data_export`: everything stored about a lead, as JSON-ready data: the lead's fields, tags,
  activities, stage changes, intake submissions (raw payloads), and any row of another app that
  points at the lead (routing assignments, ...), plus earlier privacy requests.
- `lead_erase`: personal data removed, the lead row kept so counts and analytics stay true.

What erasure keeps, and why: the lead row with its stage, stage history (times, from/to), source,
campaign, channel, owner, score, timestamps, account link and the company-level dimensions
industry / company size / country, so funnel, attribution and conversion figures do not change;
tags (categories set by the team). What it removes: names, email and phone (and their
normalised forms, so a later submission of the same person creates a new lead), title, company
name and domain, region, postal code, custom fields, consent record, referrer / landing page /
utm_term / utm_content of the touches, free text in activity payloads and stage-change reasons,
intake payloads (only attribution keys stay), the sender's IP address, stored responses and
idempotency keys. Both requests are written to the audit log `PrivacyRequest` (who, when, which
lead, counts; no personal data); an `erase` row is what marks a lead as erased.

Lock order (leads/locks.py): the Lead row first.
"""

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, models, transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from core.exceptions import ApplicationError, Conflict, NotFound
from core.json_safety import text_problem
from core.models import Notification
from leads import hooks
from leads.locks import leads_for_update
from leads.models import (
    Activity,
    IntakeSubmission,
    Lead,
    PrivacyRequest,
    PrivacyRequestKind,
    StageChange,
)


class LeadAlreadyErased(Conflict):
    code = "lead_erased"


class InvalidPrivacyReference(ApplicationError):
    code = "invalid_reference"


def privacy_reference_clean(*, reference: str) -> str:
    """The request's reference as stored, or InvalidPrivacyReference (400): it must fit the column
    and hold no character PostgreSQL refuses (NUL)."""
    reference = reference.strip()
    limit = PrivacyRequest._meta.get_field("reference").max_length
    if len(reference) > limit:
        raise InvalidPrivacyReference(f"The reference is at most {limit} characters.", field="reference")
    problem = text_problem(reference)
    if problem:
        raise InvalidPrivacyReference(f"The reference {problem}.", field="reference")
    return reference


ERASED_MARK = "erased"
# Personal fields of Lead and the value they are set to.
_PERSONAL_FIELDS: dict[str, Any] = {
    "email": "",
    "email_normalized": "",
    "phone": "",
    "phone_e164": "",
    "first_name": "",
    "last_name": "",
    "title": "",
    "company_name": "",
    "company_domain": "",
    "region": "",
    "postal_code": "",
    "custom_fields": {},
    "marketing_consent": False,
    "consent_at": None,
    "consent_method": "",
}
# Keys that survive in touches and payloads: attribution and bookkeeping, never free text.
_KEPT_TOUCH_KEYS = frozenset({"at", "channel", "source", "campaign", "utm_source", "utm_medium", "utm_campaign"})
_KEPT_PAYLOAD_KEYS = _KEPT_TOUCH_KEYS | frozenset(
    {"submission_id", "import_job_id", "row", "from", "to", "provider", "stage", "outcome"}
)
# Stage-change reasons written by the system (not typed by a person) stay; others are removed.
SYSTEM_REASONS = frozenset({"captured", "imported", "first contact", "historical outcome (import)"})


def _kept(data: Any, keys: frozenset[str]) -> dict:
    if not isinstance(data, dict):
        return {ERASED_MARK: True}
    kept = {key: value for key, value in data.items() if key in keys and not isinstance(value, dict | list)}
    if isinstance(data.get("reason"), str) and data["reason"] in SYSTEM_REASONS:
        kept["reason"] = data["reason"]
    return {**kept, ERASED_MARK: True}


# --- reads ---------------------------------------------------------------------------------------


def lead_erasure_get(*, lead_id: int) -> PrivacyRequest | None:
    return (
        PrivacyRequest.objects.select_related("actor").filter(lead_ref=lead_id, kind=PrivacyRequestKind.ERASE).first()
    )


def privacy_request_list_for_lead(*, lead_id: int) -> QuerySet[PrivacyRequest]:
    return PrivacyRequest.objects.select_related("actor").filter(lead_ref=lead_id)


def lead_privacy_summary(*, lead: Lead) -> dict[str, int]:
    """How many records of each kind are stored about the lead (shown before an export/erasure)."""
    return {
        "activities": lead.activities.count(),
        "stage_changes": lead.stage_changes.count(),
        "intake_submissions": lead.submissions.count(),
        "tags": lead.tags.count(),
    }


def _row(obj: models.Model) -> dict[str, Any]:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def _other_relations() -> list[models.ManyToOneRel]:
    """Relations from other models to Lead that the export lists generically (other apps' rows)."""
    handled = {Activity, StageChange, IntakeSubmission, PrivacyRequest}
    return [
        rel
        for rel in Lead._meta.related_objects
        if rel.one_to_many and rel.related_model not in handled and rel.related_model is not Lead
    ]


# --- writes --------------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def lead_data_export(*, lead_id: int, actor: AbstractBaseUser | None, reference: str = "") -> dict[str, Any]:
    """Everything stored about the lead, ready for json.dumps(cls=DjangoJSONEncoder); audited."""
    reference = privacy_reference_clean(reference=reference)
    lead = Lead.objects.select_related("source", "campaign", "owner", "account").filter(pk=lead_id).first()
    if lead is None:
        raise NotFound("No lead with this id.")
    data: dict[str, Any] = {
        "exported_at": timezone.now(),
        "lead": {
            **_row(lead),
            "source_name": lead.source.name if lead.source else "",
            "campaign_name": lead.campaign.name if lead.campaign else "",
            "account_domain": lead.account.domain if lead.account else "",
        },
        "tags": sorted(lead.tags.values_list("name", flat=True)),
        "activities": [_row(a) for a in lead.activities.order_by("occurred_at", "id")],
        "stage_changes": [_row(s) for s in lead.stage_changes.order_by("changed_at", "id")],
        "intake_submissions": [_row(s) for s in lead.submissions.order_by("received_at", "id")],
        "other_records": {},
        "privacy_requests": [
            {"kind": r.kind, "performed_at": r.performed_at, "reference": r.reference}
            for r in privacy_request_list_for_lead(lead_id=lead.pk).order_by("performed_at", "id")
        ],
    }
    for rel in _other_relations():
        rows = [_row(obj) for obj in rel.related_model._default_manager.filter(**{rel.field.name: lead})]
        if rows:
            data["other_records"][rel.related_model._meta.label_lower] = rows
    summary = {key: len(data[key]) for key in ("activities", "stage_changes", "intake_submissions", "tags")}
    PrivacyRequest.objects.create(
        kind=PrivacyRequestKind.EXPORT, lead=lead, lead_ref=lead.pk, actor=actor, reference=reference, summary=summary
    )
    return data


def _title_scrub(title: str, *, label: str, replacement: str) -> str:
    """The title with the label replaced, also when the title was cut to fit (it ends in "…" after
    the start of the label, which always comes last in a title)."""
    title = title.replace(label, replacement)
    if title.endswith("…"):
        head = title[:-1]
        cut = next((n for n in range(len(label), 0, -1) if head.endswith(label[:n])), 0)
        if cut:
            title = head[: len(head) - cut] + replacement
    limit = Notification._meta.get_field("title").max_length
    return title if len(title) <= limit else title[: limit - 1] + "…"


def _notifications_scrub(*, lead: Lead, label: str) -> int:
    """In-app notifications about the lead (they link to its page) name it by its label: after the
    erasure they name it as the lead page does ("Lead 123"). Emails already sent are out of reach.
    No index serves the link: an erasure reads the notification table once, which is rare enough."""
    replacement = str(lead)
    if not label or label == replacement:
        return 0
    url = reverse("leads:lead_detail", kwargs={"lead_id": lead.pk})
    notifications = list(Notification.objects.filter(url=url).only("id", "title", "body"))
    for notification in notifications:
        notification.title = _title_scrub(notification.title, label=label, replacement=replacement)
        notification.body = notification.body.replace(label, replacement)
    Notification.objects.bulk_update(notifications, ["title", "body"], batch_size=500)
    return len(notifications)


@transaction.atomic(durable=True)
def lead_erase(
    *, lead_id: int, actor: AbstractBaseUser | None, reference: str = "", now: datetime | None = None
) -> PrivacyRequest:
    """Remove the lead's personal data everywhere it is stored; keep the row for the figures."""
    reference = privacy_reference_clean(reference=reference)
    now = now or timezone.now()
    lead = leads_for_update(lead_ids=[lead_id]).first()
    if lead is None:
        raise NotFound("No lead with this id.")
    if PrivacyRequest.objects.filter(lead_ref=lead_id, kind=PrivacyRequestKind.ERASE).exists():
        raise LeadAlreadyErased("This lead has already been erased.")

    label = str(lead)  # how notifications name the lead ("New lead: Ada Lovelace")
    for name, value in _PERSONAL_FIELDS.items():
        setattr(lead, name, value)
    lead.first_touch = _kept(lead.first_touch, _KEPT_TOUCH_KEYS)
    lead.last_touch = _kept(lead.last_touch, _KEPT_TOUCH_KEYS)
    lead.updated_at = now
    lead.save(update_fields=[*_PERSONAL_FIELDS, "first_touch", "last_touch", "updated_at"])

    activities = list(lead.activities.only("id", "payload"))
    for activity in activities:
        activity.payload = _kept(activity.payload, _KEPT_PAYLOAD_KEYS)
    Activity.objects.bulk_update(activities, ["payload"], batch_size=500)
    reasons_removed = lead.stage_changes.exclude(reason__in=SYSTEM_REASONS).exclude(reason="").update(reason="")
    submissions = list(lead.submissions.only("id", "payload"))
    for submission in submissions:
        submission.payload = _kept(submission.payload, _KEPT_PAYLOAD_KEYS)
    IntakeSubmission.objects.bulk_update(submissions, ["payload"], batch_size=500)
    lead.submissions.update(
        remote_addr=None, response_body=None, request_fingerprint="", idempotency_key="", idempotency_scope=""
    )

    summary = {
        "activities": len(activities),
        "intake_submissions": len(submissions),
        "stage_change_reasons": reasons_removed,
        "notifications": _notifications_scrub(lead=lead, label=label),
    }
    hooks.hooks_run(hooks.ERASED, lead=lead, summary=summary)  # every other app's personal data
    try:
        with transaction.atomic():
            return PrivacyRequest.objects.create(
                kind=PrivacyRequestKind.ERASE,
                lead=lead,
                lead_ref=lead.pk,
                actor=actor,
                performed_at=now,
                reference=reference,
                summary=summary,
            )
    except IntegrityError as exc:  # privacyrequest_one_erasure_per_lead: a concurrent erasure won
        raise LeadAlreadyErased("This lead has already been erased.") from exc
