"""Capture: the one use case that stores a submission, whoever sends it (the intake API, web
forms, CSV import batches, intake-log replay, the demo seeder, tests).

`lead_capture` is the entry point (its own durable transaction); `lead_store` is the same use
case inside a caller's transaction (an import batch stores many rows and its progress together).
Either way, one transaction holds everything a submission writes: the lead (new, or the
person's existing lead with the new touch), the intake log (submission, activity, first stage
change), and whatever the capture steps of other apps write (routing's assignment, the owner's
response clock, the rep's counters). A process that dies at any point leaves all of it or none.
"""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.caches import cache_register
from core.db import insert_unless_conflict
from core.exceptions import ApplicationError, Conflict
from leads import hooks
from leads.intake_data import IntakeContext, LeadData
from leads.intake_schema import lead_data_from_payload
from leads.locks import leads_matching_for_update
from leads.models import (
    Activity,
    ApiKey,
    Campaign,
    Channel,
    IntakeOutcome,
    IntakeSubmission,
    Lead,
    Source,
    Stage,
    StageChange,
    Tag,
)
from leads.normalization import PhoneError, email_normalize, phone_to_e164
from leads.selectors import api_key_cache_clear, intake_submission_get_by_idempotency_key
from leads.services.api_keys import api_key_mark_used
from leads.services.enrichment import lead_enrichment_request


class InvalidLeadData(ApplicationError):
    code = "invalid_lead"


class RevokedApiKey(ApplicationError):
    status_code = 401
    code = "authentication_failed"


class IdempotencyKeyReused(ApplicationError):
    status_code = 422
    code = "idempotency_key_reused"


# Identity fields a later submission may fill when the lead has them blank (never overwrites).
FILLABLE_FIELDS = (
    "first_name",
    "last_name",
    "title",
    "company_name",
    "company_domain",
    "industry",
    "company_size",
    "country",
    "region",
    "postal_code",
)
TOUCH_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "referrer", "landing_page")


@dataclass
class CaptureResult:
    lead: Lead | None  # None only for a replay whose lead was deleted since (its stored response is used)
    created: bool
    submission: IntakeSubmission
    replayed: bool = False


# --- the use case ------------------------------------------------------------------------------


def lead_capture(*, data: LeadData, context: IntakeContext) -> CaptureResult:
    """Store a submission: create the person's lead, or add to the lead they already have.

    Exactly one lead per person even under concurrent submissions (unique constraints on the
    normalised email and phone); a retried request with the same Idempotency-Key changes nothing
    and gets the first answer again."""
    if context.idempotency_key:
        prior = intake_submission_get_by_idempotency_key(scope=context.idempotency_scope, key=context.idempotency_key)
        if prior is not None:
            return _capture_replay(prior=prior, context=context)
    if context.api_key is not None:
        api_key_mark_used(api_key=context.api_key)
    try:
        return _lead_capture_atomic(data=data, context=context)
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key won the intake log insert (everything
        # this one wrote, the rep's counters included, was rolled back with it)...
        if context.idempotency_key:
            prior = intake_submission_get_by_idempotency_key(
                scope=context.idempotency_scope, key=context.idempotency_key
            )
            if prior is not None:
                return _capture_replay(prior=prior, context=context)
        # ...or a cached campaign or key was deleted meanwhile: forget the caches, try once more.
        intake_caches_clear()
        if context.api_key is not None and not ApiKey.objects.filter(pk=context.api_key.pk).exists():
            raise RevokedApiKey("This API key no longer exists.") from None
        return _lead_capture_atomic(data=data, context=context)


@transaction.atomic(durable=True)
def _lead_capture_atomic(*, data: LeadData, context: IntakeContext) -> CaptureResult:
    return lead_store(data=data, context=context)


def lead_store(*, data: LeadData, context: IntakeContext) -> CaptureResult:
    """The capture use case inside the caller's transaction (required): find and lock the person's
    lead or insert a new one, write the intake log, run the capture steps. After commit: the
    enrichment run and the CAPTURED hooks."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lead_store runs inside a transaction; use lead_capture otherwise.")
    prepared = _prepare(data=data, context=context)
    lead, created = _person_lead_store(prepared=prepared)
    submission = _intake_log_write(prepared=prepared, lead=lead, created=created)
    if data.tags:
        lead_tags_add(lead=lead, names=data.tags)
    capture = hooks.Capture(
        data=prepared.data, context=context, lead=lead, created=created, submission=submission, at=prepared.occurred_at
    )
    if created:
        lead_enrichment_request()
    for _name, step in hooks.capture_steps():
        step(capture)
    for fn in capture.on_commit:
        transaction.on_commit(fn)
    if hooks.hooks_registered(hooks.CAPTURED):
        transaction.on_commit(partial(hooks.hooks_run, hooks.CAPTURED, lead_id=lead.pk, created=created))
    return CaptureResult(lead=lead, created=created, submission=submission)


@dataclass
class _Prepared:
    """A submission ready to store: normalised, attributed, and the lead it would create."""

    data: LeadData
    context: IntakeContext
    email_normalized: str
    source: Source | None
    campaign: Campaign | None
    channel: str
    touch: dict
    now: datetime
    occurred_at: datetime


def _prepare(*, data: LeadData, context: IntakeContext) -> _Prepared:
    data = lead_data_normalize(data=data)
    now = timezone.now()
    occurred_at = data.occurred_at or now
    source = context.source
    campaign = campaign_for_submission(name=data.campaign, utm_campaign=data.utm_campaign, source=source)
    channel = data.channel or (source.channel if source else Channel.API)
    return _Prepared(
        data=data,
        context=context,
        email_normalized=email_normalize(data.email) if data.email else "",
        source=source,
        campaign=campaign,
        channel=channel,
        touch=touch_build(data=data, occurred_at=occurred_at, channel=channel, source=source, campaign=campaign),
        now=now,
        occurred_at=occurred_at,
    )


# The conflicting lead can vanish (merged away) between the insert and the lookup: try again.
_STORE_ATTEMPTS = 3


def _person_lead_store(*, prepared: _Prepared) -> tuple[Lead, bool]:
    """The person's new lead (True), or their existing lead, locked, with this submission's touch
    applied (False). The insert comes first and does nothing when a lead holds the email or phone
    (it waits for a concurrent capture of the same person to commit); the lookup then finds it."""
    data = prepared.data
    attribution = {
        "data": data,
        "source": prepared.source,
        "campaign": prepared.campaign,
        "channel": prepared.channel,
        "touch": prepared.touch,
        "occurred_at": prepared.occurred_at,
    }
    for _ in range(_STORE_ATTEMPTS):
        lead = lead_build_new(email_normalized=prepared.email_normalized, **attribution)
        if insert_unless_conflict(lead):
            return lead, True
        matches = leads_matching_for_update(email_normalized=prepared.email_normalized, phone_e164=data.phone_e164)
        if matches:
            lead = _person_lead(matches, email_normalized=prepared.email_normalized)
            changed = lead_touch_apply(lead=lead, **attribution)
            lead.save(update_fields=[*changed, "updated_at"])
            _contact_add(lead=lead, data=data)
            return lead, False
    raise Conflict("This person's lead is being changed right now; please retry.")


def _person_lead(matches: list[Lead], *, email_normalized: str) -> Lead:
    """Of the leads matching a person, theirs: same email beats same phone when the two point at
    different leads."""
    return next((m for m in matches if email_normalized and m.email_normalized == email_normalized), matches[0])


def _contact_add(*, lead: Lead, data: LeadData) -> None:
    """A returning person's submission adds the contact detail their lead lacks, unless another
    lead holds it already (then it stays where it is: merging is a person's decision)."""
    if data.email and not lead.email_normalized:
        updates = {"email": data.email, "email_normalized": email_normalize(data.email)}
    elif data.phone_e164 and not lead.phone_e164:
        updates = {"phone": data.phone, "phone_e164": data.phone_e164}
    else:
        return
    try:
        with transaction.atomic():
            Lead.objects.filter(pk=lead.pk).update(**updates)
    except IntegrityError:
        return
    for name, value in updates.items():
        setattr(lead, name, value)


def intake_log_rows(
    *, prepared: "_Prepared", lead: Lead, created: bool
) -> tuple[IntakeSubmission, Activity, StageChange | None]:
    """The rows every accepted submission writes: the submission (the intake log), its activity
    and, for a new lead, the first stage change. Unsaved; the activity names the submission once
    it has an id."""
    context = prepared.context
    submission = IntakeSubmission(
        received_at=prepared.now,
        source=context.source,
        api_key=context.api_key,
        submitted_by=context.submitted_by,
        payload=context.raw_payload,
        remote_addr=context.remote_addr,
        lead=lead,
        outcome=IntakeOutcome.CREATED if created else IntakeOutcome.MERGED,
        idempotency_scope=context.idempotency_scope if context.idempotency_key else "",
        idempotency_key=context.idempotency_key,
        request_fingerprint=context.fingerprint if context.idempotency_key else "",
        response_status=201 if created else 200,
    )
    payload: dict[str, Any] = {"channel": prepared.channel, **prepared.touch, **context.log_details}
    if prepared.data.message:
        payload["message"] = prepared.data.message
    activity = Activity(
        lead=lead,
        kind=context.activity_kind,
        occurred_at=prepared.occurred_at,
        actor=context.submitted_by,
        payload=payload,
    )
    first_stage = None
    if created:
        first_stage = StageChange(
            lead=lead,
            from_stage="",
            to_stage=lead.stage,
            changed_at=prepared.occurred_at,
            changed_by=context.submitted_by,
            reason=context.first_stage_reason,
        )
    return submission, activity, first_stage


def _intake_log_write(*, prepared: _Prepared, lead: Lead, created: bool) -> IntakeSubmission:
    submission, activity, first_stage = intake_log_rows(prepared=prepared, lead=lead, created=created)
    submission.save(force_insert=True)
    activity.payload["submission_id"] = submission.pk
    activity.save(force_insert=True)
    if first_stage is not None:
        first_stage.save(force_insert=True)
    return submission


def _capture_replay(*, prior: IntakeSubmission, context: IntakeContext) -> CaptureResult:
    if prior.request_fingerprint != context.fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used for a different request body.", field="idempotency_key"
        )
    lead = Lead.objects.select_related("owner", "source", "campaign").filter(pk=prior.lead_id).first()
    if lead is None and prior.response_body is None:
        # Deleted since (the log keeps the submission, SET_NULL): nothing left to answer with.
        raise Conflict("The lead this Idempotency-Key created has since been deleted.", field="idempotency_key")
    return CaptureResult(lead=lead, created=prior.outcome == IntakeOutcome.CREATED, submission=prior, replayed=True)


# --- building blocks shared with the routing dry run --------------------------------------------


def lead_data_normalize(*, data: LeadData) -> LeadData:
    """Canonical identity values; raises InvalidLeadData with the field at fault."""
    data.email = data.email.strip()
    if data.phone and not data.phone_e164:
        try:
            data.phone_e164 = phone_to_e164(data.phone, region=data.country)
        except PhoneError as exc:
            raise InvalidLeadData(str(exc), field="phone") from exc
    if not data.email and not data.phone_e164:
        raise InvalidLeadData("Provide an email address or a phone number.", field="email")
    data.country = data.country.strip().upper()
    data.company_domain = data.company_domain.strip().lower()
    return data


def touch_build(
    *, data: LeadData, occurred_at: datetime, channel: str, source: Source | None, campaign: Campaign | None
) -> dict[str, Any]:
    """The attribution of one submission (first or last touch): UTM fields, referrer, landing
    page, when, channel, source and campaign."""
    touch: dict[str, Any] = {name: getattr(data, name) for name in TOUCH_FIELDS if getattr(data, name)}
    touch.update(at=occurred_at.isoformat(), channel=channel, source=source.name if source else "")
    if campaign:
        touch["campaign"] = campaign.name
    return touch


# Campaign lookups by name / utm_campaign, per process: nearly every submission names one, and
# campaigns are rarely renamed (a rename shows within a minute).
_CAMPAIGN_CACHE_SECONDS = 60
_campaign_cache: dict[tuple[str, str], tuple[float, Campaign]] = {}
cache_register("leads.campaigns", _campaign_cache.clear)


def campaign_for_submission(*, name: str, utm_campaign: str, source: Source | None) -> Campaign | None:
    """The named campaign, else the one tagged with this utm_campaign; unknown names are created
    so attribution is never lost (ops can merge or rename them later)."""
    if not name and not utm_campaign:
        return None
    key = ("name", name) if name else ("utm", utm_campaign)
    cached = _campaign_cache.get(key)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    if name:
        campaign = Campaign.objects.filter(name=name).first()
    else:
        campaign = Campaign.objects.filter(utm_campaign=utm_campaign).order_by("pk").first()
    if campaign is None:
        campaign, _ = Campaign.objects.get_or_create(
            name=name or utm_campaign, defaults={"source": source, "utm_campaign": utm_campaign}
        )
    _campaign_cache[key] = (time.monotonic() + _CAMPAIGN_CACHE_SECONDS, campaign)
    return campaign


def intake_caches_clear() -> None:
    """Drop this process's intake lookups (campaigns, API keys): a row they point at was deleted."""
    _campaign_cache.clear()
    api_key_cache_clear()


def lead_build_new(
    *,
    data: LeadData,
    email_normalized: str,
    source: Source | None,
    campaign: Campaign | None,
    channel: str,
    touch: dict,
    occurred_at: datetime,
) -> Lead:
    """The unsaved lead a first submission makes."""
    consent = bool(data.marketing_consent)
    return Lead(
        email=data.email,
        email_normalized=email_normalized,
        phone=data.phone,
        phone_e164=data.phone_e164,
        first_name=data.first_name,
        last_name=data.last_name,
        title=data.title,
        company_name=data.company_name,
        company_domain=data.company_domain,
        industry=data.industry,
        company_size=data.company_size,
        country=data.country,
        region=data.region,
        postal_code=data.postal_code,
        custom_fields=data.custom_fields,
        channel=channel,
        source=source,
        campaign=campaign,
        first_touch=touch,
        last_channel=channel,
        last_source=source,
        last_campaign=campaign,
        last_touch=touch,
        last_touch_at=occurred_at,
        stage=data.stage or Stage.NEW,
        stage_changed_at=occurred_at,
        marketing_consent=consent,
        consent_at=occurred_at if consent else None,
        consent_method=(data.consent_method or "intake form") if consent else "",
        created_at=occurred_at,
    )


def lead_sample_build(*, fields: dict[str, Any]) -> Lead:
    """An unsaved lead holding `fields` normalised exactly as intake would store them, so a routing
    dry run sees what a real submission would (same A/B arm, same earlier-lead match). Never saved."""
    lead = Lead(**fields)
    lead.email_normalized = email_normalize(lead.email) if lead.email else ""
    lead.country = lead.country.strip().upper()
    lead.company_domain = lead.company_domain.strip().lower()
    if lead.phone and not lead.phone_e164:
        try:
            lead.phone_e164 = phone_to_e164(lead.phone, region=lead.country)
        except PhoneError:
            lead.phone_e164 = ""
    return lead


def lead_touch_apply(
    *,
    lead: Lead,
    data: LeadData,
    source: Source | None,
    campaign: Campaign | None,
    channel: str,
    touch: dict,
    occurred_at: datetime,
) -> set[str]:
    """In memory, what a later submission does to a returning person's lead: a newer last touch,
    blanks filled (never overwritten), custom fields merged, consent kept once given. Returns the
    names of the changed fields."""
    changed: set[str] = set()
    if lead.last_touch_at is None or occurred_at >= lead.last_touch_at:
        lead.last_channel, lead.last_source, lead.last_campaign = channel, source, campaign
        lead.last_touch, lead.last_touch_at = touch, occurred_at
        changed.update(("last_channel", "last_source", "last_campaign", "last_touch", "last_touch_at"))
    for name in FILLABLE_FIELDS:
        value = getattr(data, name)
        if value and not getattr(lead, name):
            setattr(lead, name, value)
            changed.add(name)
    if data.custom_fields:
        lead.custom_fields = {**lead.custom_fields, **data.custom_fields}
        changed.add("custom_fields")
    if data.marketing_consent and not lead.marketing_consent:
        lead.marketing_consent, lead.consent_at = True, occurred_at
        lead.consent_method = data.consent_method or "intake form"
        changed.update(("marketing_consent", "consent_at", "consent_method"))
    return changed


def lead_tags_add(*, lead: Lead, names: list[str]) -> None:
    names = sorted({name.strip()[:60] for name in names if name.strip()})
    if not names:
        return
    Tag.objects.bulk_create([Tag(name=name) for name in names], ignore_conflicts=True)
    lead.tags.add(*Tag.objects.filter(name__in=names))


# --- the intake log ------------------------------------------------------------------------------


def intake_submission_record_response(*, submission: IntakeSubmission, status: int, body: dict) -> None:
    """Keep the exact first response of an idempotent request, so a retry gets the same bytes."""
    IntakeSubmission.objects.filter(pk=submission.pk, response_body__isnull=True).update(
        response_status=status, response_body=body
    )


def intake_submission_replay(*, submission_id: int) -> CaptureResult:
    """Run a logged submission through capture again (e.g. after fixing a mapping)."""
    submission = IntakeSubmission.objects.select_related("source", "api_key", "submitted_by").get(pk=submission_id)
    if submission.purged_at is not None:
        raise Conflict(
            f"Its payload was deleted on {submission.purged_at:%Y-%m-%d} (DJANGO_INTAKE_LOG_RETENTION_DAYS); "
            "nothing is left to replay.",
            field="submission",
        )
    data = lead_data_from_payload(payload=submission.payload, is_internal=submission.submitted_by_id is not None)
    context = IntakeContext(
        raw_payload=submission.payload,
        source=submission.source,
        api_key=submission.api_key,
        submitted_by=submission.submitted_by,
        remote_addr=submission.remote_addr,
    )
    return lead_capture(data=data, context=context)


def intake_log_purge(*, now: datetime | None = None, batch_size: int = 5000) -> int:
    """Delete the raw payload, stored response and client IP (personal data) of every intake
    submission received more than DJANGO_INTAKE_LOG_RETENTION_DAYS ago; the rows stay, with
    source, key, outcome and lead, for counts and attribution. Returns how many were purged.
    Idempotent and safe to run twice at once: each batch is one UPDATE that re-checks
    `purged_at`, through the `received_at` index."""
    days = settings.LEADOPS_INTAKE_LOG_RETENTION_DAYS
    if days <= 0:
        return 0
    now = now or timezone.now()
    due = IntakeSubmission.objects.filter(received_at__lt=now - timedelta(days=days), purged_at__isnull=True)
    purged = 0
    while True:
        batch = list(due.order_by("received_at").values_list("pk", flat=True)[:batch_size])
        if not batch:
            return purged
        purged += due.filter(pk__in=batch).update(payload={}, response_body=None, remote_addr=None, purged_at=now)
