"""Writes of the leads app. One code path each for intake, stage changes, activities and merges:
the API, the HTML views, admin and CSV import all call these."""

import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import IntegrityError, connection, router, transaction
from django.db.models import Q
from django.db.models.constants import OnConflict
from django.utils import timezone

from core.enqueue import enqueue_batched_on_commit
from core.exceptions import ApplicationError, Conflict, NotFound
from core.sql import rows_insert_together
from leads.enrichment import enrichment_provider
from leads.locks import leads_for_delete, leads_for_update, leads_matching_for_update, leads_matching_with_versions
from leads.models import (
    CLOSED_STAGES,
    CONTACT_KINDS,
    Account,
    Activity,
    ActivityKind,
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
from leads.selectors import (
    api_key_cache_clear,
    api_key_cache_forget,
    api_key_hash,
    intake_submission_get_by_idempotency_key,
    lead_ids_unenriched,
)

logger = logging.getLogger(__name__)


class InvalidLeadData(ApplicationError):
    code = "invalid_lead"


class InvalidStageTransition(ApplicationError):
    code = "invalid_transition"


class RevokedApiKey(ApplicationError):
    status_code = 401
    code = "authentication_failed"


class IdempotencyKeyReused(ApplicationError):
    status_code = 422
    code = "idempotency_key_reused"


# The lifecycle: which moves make sense. Anything else is refused.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    Stage.NEW: frozenset({Stage.WORKING, Stage.MQL, Stage.SQL, Stage.DISQUALIFIED}),
    Stage.WORKING: frozenset({Stage.MQL, Stage.SQL, Stage.OPPORTUNITY, Stage.DISQUALIFIED, Stage.RECYCLED}),
    Stage.MQL: frozenset({Stage.WORKING, Stage.SQL, Stage.DISQUALIFIED, Stage.RECYCLED}),
    Stage.SQL: frozenset({Stage.WORKING, Stage.OPPORTUNITY, Stage.LOST, Stage.DISQUALIFIED, Stage.RECYCLED}),
    Stage.OPPORTUNITY: frozenset({Stage.WON, Stage.LOST}),
    Stage.WON: frozenset(),
    Stage.LOST: frozenset({Stage.RECYCLED}),
    Stage.DISQUALIFIED: frozenset({Stage.RECYCLED}),
    Stage.RECYCLED: frozenset({Stage.WORKING, Stage.MQL, Stage.SQL, Stage.DISQUALIFIED}),
}

# Identity fields a later submission may fill when the lead has them blank (never overwrites).
_FILLABLE_FIELDS = (
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
_TOUCH_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "referrer", "landing_page")


@dataclass
class LeadData:
    """What one submission says about a person, already type-checked by the caller."""

    email: str = ""
    phone: str = ""
    phone_e164: str = ""  # set when the caller has already parsed `phone`
    first_name: str = ""
    last_name: str = ""
    title: str = ""
    company_name: str = ""
    company_domain: str = ""
    industry: str = ""
    company_size: str = ""
    country: str = ""
    region: str = ""
    postal_code: str = ""
    custom_fields: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    channel: str = ""
    campaign: str = ""
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""
    utm_term: str = ""
    utm_content: str = ""
    referrer: str = ""
    landing_page: str = ""
    stage: str = ""
    message: str = ""
    marketing_consent: bool | None = None
    consent_method: str = ""
    occurred_at: datetime | None = None  # when the touch happened (imports); default now


@dataclass
class IntakeContext:
    """Who sent a submission and how; kept in the intake log with the raw payload."""

    raw_payload: dict[str, Any]
    source: Source | None = None
    api_key: ApiKey | None = None
    submitted_by: AbstractBaseUser | None = None
    remote_addr: str | None = None
    idempotency_key: str = ""
    activity_kind: str = ActivityKind.FORM_SUBMITTED

    @property
    def idempotency_scope(self) -> str:
        if self.api_key is not None:
            return f"key:{self.api_key.pk}"
        if self.submitted_by is not None:
            return f"user:{self.submitted_by.pk}"
        return ""

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps(self.raw_payload, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class CaptureResult:
    lead: Lead | None  # None only for a replay whose lead was deleted since (its stored response is used)
    created: bool
    submission: IntakeSubmission
    replayed: bool = False


# --- intake ------------------------------------------------------------------------------------


def lead_capture(*, data: LeadData, context: IntakeContext) -> CaptureResult:
    """Store a submission: create the person's lead, or add to the lead they already have.

    Exactly one lead per person even under concurrent submissions (unique constraints on the
    normalised email and phone); a retried request with the same Idempotency-Key changes nothing.
    """
    if context.idempotency_key:
        prior = intake_submission_get_by_idempotency_key(scope=context.idempotency_scope, key=context.idempotency_key)
        if prior is not None:
            return _capture_replay(prior=prior, context=context)
    if context.api_key is not None:
        api_key_mark_used(api_key=context.api_key)
    try:
        return _lead_capture_store(data=data, context=context)
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key won the intake log insert...
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
        return _lead_capture_store(data=data, context=context)


def intake_caches_clear() -> None:
    """Drop this process's intake lookups (campaigns, API keys)."""
    _campaign_cache.clear()
    api_key_cache_clear()


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


# People (normalised email, else phone) this process captured lately; a hint, never a truth.
_people_seen: dict[str, None] = {}
_PEOPLE_SEEN_MAX = 20_000


@dataclass
class _Capture:
    """A submission ready to store: normalised, attributed, and the lead it would create."""

    data: LeadData
    email_normalized: str
    person: str  # the normalised email, else the phone
    source: Source | None
    campaign: Campaign | None
    channel: str
    touch: dict
    occurred_at: datetime
    lead: Lead
    log: "_IntakeLog"


def _capture_prepare(*, data: LeadData, context: IntakeContext) -> _Capture:
    data = lead_data_normalize(data=data)
    now = timezone.now()
    occurred_at = data.occurred_at or now
    email_normalized = email_normalize(data.email) if data.email else ""
    source = context.source
    campaign = campaign_for_submission(name=data.campaign, utm_campaign=data.utm_campaign, source=source)
    channel = data.channel or (source.channel if source else Channel.API)
    touch = touch_build(data=data, occurred_at=occurred_at, channel=channel, source=source, campaign=campaign)
    lead = lead_build_new(
        data=data,
        email_normalized=email_normalized,
        source=source,
        campaign=campaign,
        channel=channel,
        touch=touch,
        occurred_at=occurred_at,
    )
    return _Capture(
        data=data,
        email_normalized=email_normalized,
        person=email_normalized or data.phone_e164,
        source=source,
        campaign=campaign,
        channel=channel,
        touch=touch,
        occurred_at=occurred_at,
        lead=lead,
        log=_IntakeLog(context=context, now=now, occurred_at=occurred_at, channel=channel, touch=touch, data=data),
    )


def _lead_capture_store(*, data: LeadData, context: IntakeContext) -> CaptureResult:
    capture = _capture_prepare(data=data, context=context)
    # A person this process saw lately most likely has a lead: look it up first rather than
    # attempt the insert. Only the order of the two steps depends on this hint.
    look_first = capture.person in _people_seen
    result = None
    if _without_transaction(capture=capture):
        if look_first:
            result, found = _lead_capture_returning(capture=capture)
            if not found:
                result = _lead_capture_new(capture=capture)
        else:
            result = _lead_capture_new(capture=capture)
            if result is None:  # the person has a lead after all
                result, _ = _lead_capture_returning(capture=capture)
        look_first = True  # what is left (a busy lead, a race) takes the locking path
    if result is None:
        result = _lead_capture_atomic(capture=capture, look_first=look_first)
    if len(_people_seen) >= _PEOPLE_SEEN_MAX:
        _people_seen.clear()
    _people_seen[capture.person] = None
    return result


def _without_transaction(*, capture: _Capture) -> bool:
    """Whether the submission can be stored without a transaction: PostgreSQL, not inside the
    caller's transaction, no tags (tags are rows written after the lead's)."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block and not capture.data.tags


def _lead_capture_new(*, capture: _Capture) -> CaptureResult | None:
    """A new person's lead in two statements and no transaction (PostgreSQL): the push takes a
    rep's capacity (committed at once), then one statement inserts the lead with its owner and
    every row of the submission and the assignment, or nothing when the person has a lead already
    (None: the caller adds to that lead). A failed insert gives the rep the take back.

    BEGIN and COMMIT were two of five round trips of a new lead, and the rep's row lock, held
    from the take to the commit, made simultaneous pushes wait for each other at the end of each
    round-robin round. Should the process die between the two statements, the rep's counters are
    one too high until the open-leads sweep recounts them (routed_total and today's count stay one
    too high: the rep gets one lead fewer in its rotation and today)."""
    lead = capture.lead
    route = _route_before_insert(lead=lead, tags=capture.data.tags)
    try:
        inserted = _intake_rows_insert(rows=capture.log.rows(lead=lead, created=True), new_lead=lead, route=route)
    except BaseException:
        _route_cancel_after_failure(route)
        raise
    if not inserted:
        route.cancel()
        return None
    lead_enrichment_request()
    route.owner_notification_request()
    return CaptureResult(lead=lead, created=True, submission=capture.log.submission)


# A returning person's lead that changes between our read and our write this many times in a row
# is taken with a row lock instead.
_RETURNING_ATTEMPTS = 3


def _lead_capture_returning(*, capture: _Capture) -> tuple[CaptureResult | None, bool]:
    """A returning person's submission without a transaction (PostgreSQL): read the lead with its
    row version, apply the touch in memory, then one statement updates the lead, only if the row
    is still that version, and writes the intake log rows. (result, True) when stored; (None,
    False) when no lead has this email or phone; (None, True) when the lead kept changing under
    us or needs a contact detail added: the caller takes the locking path.

    The locking path is four round trips (BEGIN, find-and-lock, write, COMMIT) and holds the
    lead's row lock across them; this one is two and holds it for one statement."""
    data = capture.data
    for _ in range(_RETURNING_ATTEMPTS):
        matches = leads_matching_with_versions(email_normalized=capture.email_normalized, phone_e164=data.phone_e164)
        if not matches:
            return None, False
        lead, version = _person_lead(matches, email_normalized=capture.email_normalized)
        if _contact_updates(lead=lead, data=data):
            return None, True
        changed = _capture_touch_apply(lead=lead, capture=capture)
        rows = capture.log.rows(lead=lead, created=False)
        if _intake_rows_insert(rows=rows, update_lead_fields=[*changed, "updated_at"], lead_version=version):
            return CaptureResult(lead=lead, created=False, submission=capture.log.submission), True
    return None, True


def _route_cancel_after_failure(route) -> None:
    try:
        route.cancel()
    except Exception:  # e.g. the connection broke: the open-leads sweep recounts the rep later
        logger.warning("Could not give back the rep's take of a failed intake", exc_info=True)


@transaction.atomic(durable=True)
def _lead_capture_atomic(*, capture: _Capture, look_first: bool) -> CaptureResult:
    """Store the submission in one transaction: insert first (one round trip, no savepoint),
    and a conflict on the email or phone index means the person exists (perhaps committed a
    moment ago by a concurrent request we waited for); or, with `look_first`, the other way
    round."""
    data, lead, log = capture.data, capture.lead, capture.log
    created = False
    route = None
    for attempt in range(3):  # the matched lead can vanish (merged) between the two statements
        inserted = False
        if attempt or not look_first:
            route = _route_before_insert(lead=lead, tags=data.tags)
            inserted = _intake_rows_insert(rows=log.rows(lead=lead, created=True), new_lead=lead, route=route)
        if inserted:
            created = True
            break
        if route is not None:
            route.cancel()
            route = None
        existing = _lead_add_touch(capture=capture)
        if existing is not None:
            lead, changed = existing
            _intake_rows_insert(rows=log.rows(lead=lead, created=False), update_lead_fields=[*changed, "updated_at"])
            break
    else:
        raise Conflict("This person's lead is being changed right now; please retry.")
    if data.tags:
        _lead_add_tags(lead=lead, names=data.tags)
    if created:
        lead_enrichment_request()
        if route is None:  # SQLite: the lead is routed once it is stored
            from routing.services import lead_route

            lead_route(lead=lead)
        else:
            route.owner_notification_request()
    return CaptureResult(lead=lead, created=created, submission=log.submission)


def _route_before_insert(*, lead: Lead, tags: list[str]):
    """Routing hook (issue 4): push assignment runs inside the intake transaction, so the 201
    response already carries the owner. On PostgreSQL it is decided before the insert, which then
    writes the owner and the routing rows with the lead (routing.services.lead_route_before_insert);
    None elsewhere."""
    if connection.vendor != "postgresql":
        return None
    from routing.services import lead_route_before_insert

    lead._routing_tags = sorted({name.strip() for name in tags if name.strip()})  # stored after the insert
    return lead_route_before_insert(lead=lead)


@dataclass
class _IntakeLog:
    """The rows every accepted submission writes: the submission (the intake log), its activity
    (which names the submission) and, for a new lead, the first stage change."""

    context: IntakeContext
    now: datetime
    occurred_at: datetime
    channel: str
    touch: dict
    data: LeadData
    submission: IntakeSubmission | None = None

    def rows(self, *, lead: Lead, created: bool) -> list[Any]:
        context = self.context
        self.submission = IntakeSubmission(
            received_at=self.now,
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
        payload: dict[str, Any] = {"channel": self.channel, **self.touch}
        if self.data.message:
            payload["message"] = self.data.message
        activity = Activity(
            lead=lead,
            kind=context.activity_kind,
            occurred_at=self.occurred_at,
            actor=context.submitted_by,
            payload=payload,
        )
        if not created:
            return [self.submission, activity]
        first_stage = StageChange(
            lead=lead,
            from_stage="",
            to_stage=lead.stage,
            changed_at=self.occurred_at,
            changed_by=context.submitted_by,
            reason="captured",
        )
        return [self.submission, activity, first_stage]


def _intake_rows_insert(
    *,
    rows: list[Any],
    new_lead: Lead | None = None,
    update_lead_fields: list[str] | None = None,
    lead_version: str | None = None,
    route: Any = None,
) -> bool:
    """Write the intake log rows; with `new_lead`, insert that lead first unless a lead with its
    email or phone exists (then nothing is written and False returned), and with it the rows of
    its `route` (a routing.services.RouteBeforeInsert); with `update_lead_fields`, save those
    fields of the (returning) lead too, and with `lead_version` only if its row is still that
    version (else nothing is written and False returned). One statement on PostgreSQL:
    insert-first de-duplication, no savepoint, no extra round trip."""
    submission, activity, *rest = rows
    if connection.vendor == "postgresql":
        if new_lead is None:
            update = (submission.lead, update_lead_fields) if update_lead_fields else None
            payload = {(1, "payload"): "%s || jsonb_build_object('submission_id', {r0})"}
            if not rows_insert_together(rows, sql_for=payload, update=update, update_if_version=lead_version):
                return False
        else:
            lead_ref = {(i, "lead_id"): "{r0}" for i in range(1, len(rows) + 1)}
            sql_for = lead_ref | {(2, "payload"): "%s || jsonb_build_object('submission_id', {r1})"}
            route_rows = route.rows if route is not None else []
            if route is not None:
                sql_for |= route.sql_for(lead_row=0, first_row=len(rows) + 1)
            if not rows_insert_together([new_lead, *rows, *route_rows], sql_for=sql_for, unless_first_conflicts=True):
                return False
            for row in rows:
                row.lead = new_lead
            if route is not None:
                route.inserted()
    else:
        if new_lead is not None and not _lead_insert_unless_exists(lead=new_lead):
            return False
        if update_lead_fields:
            submission.lead.save(update_fields=update_lead_fields)
        if new_lead is not None:
            for row in rows:
                row.lead = new_lead  # sets the id it has now
        submission.save(force_insert=True)
        activity.payload["submission_id"] = submission.pk
        for row in (activity, *rest):
            row.save(force_insert=True)
    activity.payload["submission_id"] = submission.pk
    return True


# Campaign lookups by name / utm_campaign, per process: nearly every submission names one, and
# campaigns are rarely renamed (a rename shows within a minute).
_CAMPAIGN_CACHE_SECONDS = 60
_campaign_cache: dict[tuple[str, str], tuple[float, Campaign]] = {}


def touch_build(
    *, data: LeadData, occurred_at: datetime, channel: str, source: Source | None, campaign: Campaign | None
) -> dict[str, Any]:
    """The attribution of one submission (first or last touch): UTM fields, referrer, landing
    page, when, channel, source and campaign. Intake and CSV import record it the same way."""
    touch: dict[str, Any] = {name: getattr(data, name) for name in _TOUCH_FIELDS if getattr(data, name)}
    touch.update(at=occurred_at.isoformat(), channel=channel, source=source.name if source else "")
    if campaign:
        touch["campaign"] = campaign.name
    return touch


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


def _lead_insert_unless_exists(*, lead: Lead) -> bool:
    """`INSERT … ON CONFLICT DO NOTHING RETURNING id`: True if the lead was inserted, False if a
    lead with the same normalised email or phone exists. One round trip and no savepoint, which
    matters on the intake hot path. (`_insert` is the ORM's own insert entry point, used by
    bulk_create; Django has no public API for ON CONFLICT with RETURNING on partial indexes.)"""
    fields = [f for f in Lead._meta.concrete_fields if not f.primary_key]
    rows = Lead._base_manager._insert(
        [lead],
        fields=fields,
        returning_fields=Lead._meta.db_returning_fields,
        on_conflict=OnConflict.IGNORE,
        using=router.db_for_write(Lead),
    )
    if not rows or rows[0] is None:
        return False
    lead.pk = rows[0][0]
    lead._state.adding, lead._state.db = False, router.db_for_write(Lead)
    return True


def _lead_add_touch(*, capture: _Capture) -> tuple[Lead, set[str]] | None:
    """A returning person: last-touch attribution and what the lead did not know, applied in
    memory (the caller saves the changed fields with the intake log). Finds and locks the lead in
    one statement; None if no lead has this email or phone."""
    data, email_normalized = capture.data, capture.email_normalized
    matches = leads_matching_for_update(email_normalized=email_normalized, phone_e164=data.phone_e164)
    if not matches:
        return None
    lead, _ = _person_lead([(m, None) for m in matches], email_normalized=email_normalized)
    changed = _capture_touch_apply(lead=lead, capture=capture)
    # The other contact detail is added only if no other lead holds it already.
    if contact_updates := _contact_updates(lead=lead, data=data):
        try:
            with transaction.atomic():
                Lead.objects.filter(pk=lead.pk).update(**contact_updates)
            for name, value in contact_updates.items():
                setattr(lead, name, value)
        except IntegrityError:
            pass
    return lead, changed


def _capture_touch_apply(*, lead: Lead, capture: _Capture) -> set[str]:
    return lead_touch_apply(
        lead=lead,
        data=capture.data,
        source=capture.source,
        campaign=capture.campaign,
        channel=capture.channel,
        touch=capture.touch,
        occurred_at=capture.occurred_at,
    )


def _person_lead(matches: list[tuple[Lead, Any]], *, email_normalized: str) -> tuple[Lead, Any]:
    """Of the leads matching a person, theirs: same email beats same phone when the two point at
    different leads."""
    return next((m for m in matches if email_normalized and m[0].email_normalized == email_normalized), matches[0])


def _contact_updates(*, lead: Lead, data: LeadData) -> dict[str, str]:
    """The contact detail a returning person's submission adds to their lead (if no other lead
    holds it: the caller checks)."""
    if data.email and not lead.email_normalized:
        return {"email": data.email, "email_normalized": email_normalize(data.email)}
    if data.phone_e164 and not lead.phone_e164:
        return {"phone": data.phone, "phone_e164": data.phone_e164}
    return {}


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
    blanks filled (never overwritten), custom fields merged, consent kept once given. Used by the
    API (one lead) and CSV import (a batch). Returns the names of the changed fields."""
    changed: set[str] = set()
    if lead.last_touch_at is None or occurred_at >= lead.last_touch_at:
        lead.last_channel, lead.last_source, lead.last_campaign = channel, source, campaign
        lead.last_touch, lead.last_touch_at = touch, occurred_at
        changed.update(("last_channel", "last_source", "last_campaign", "last_touch", "last_touch_at"))
    for name in _FILLABLE_FIELDS:
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


def _lead_add_tags(*, lead: Lead, names: list[str]) -> None:
    names = sorted({name.strip() for name in names if name.strip()})
    if not names:
        return
    Tag.objects.bulk_create([Tag(name=name) for name in names], ignore_conflicts=True)
    lead.tags.add(*Tag.objects.filter(name__in=names))


def intake_submission_record_response(*, submission: IntakeSubmission, status: int, body: dict) -> None:
    """Keep the exact first response of an idempotent request, so a retry gets the same bytes."""
    IntakeSubmission.objects.filter(pk=submission.pk, response_body__isnull=True).update(
        response_status=status, response_body=body
    )


def intake_submission_replay(*, submission_id: int) -> CaptureResult:
    """Run a logged submission through intake again (e.g. after fixing a mapping)."""
    from leads.api.intake import lead_data_from_payload

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


# --- lifecycle -----------------------------------------------------------------------------------


@transaction.atomic
def lead_stage_change(
    *,
    lead_id: int,
    to_stage: str,
    actor: AbstractBaseUser | None,
    reason: str = "",
    at: datetime | None = None,
) -> Lead:
    if to_stage not in Stage.values:
        raise InvalidStageTransition(f"Unknown stage “{to_stage}”.", field="to_stage")
    lead = leads_for_update(lead_ids=[lead_id]).select_related("owner", "source", "campaign").first()
    if lead is None:
        raise NotFound("No lead with this id.")
    if to_stage not in ALLOWED_TRANSITIONS[lead.stage]:
        allowed = ", ".join(sorted(Stage(s).label for s in ALLOWED_TRANSITIONS[lead.stage])) or "none"
        raise InvalidStageTransition(
            f"A lead cannot move from {Stage(lead.stage).label} to {Stage(to_stage).label} (allowed: {allowed}).",
            field="to_stage",
        )
    at = at or timezone.now()
    from_stage = lead.stage
    lead.stage, lead.stage_changed_at = to_stage, at
    lead.save(update_fields=["stage", "stage_changed_at", "updated_at"])
    StageChange.objects.create(
        lead=lead, from_stage=from_stage, to_stage=to_stage, changed_at=at, changed_by=actor, reason=reason
    )
    if lead.owner_id and (from_stage in CLOSED_STAGES) != (to_stage in CLOSED_STAGES):
        # Closing a lead frees a slot of its owner's capacity; reopening takes one (lead locked
        # first, then the rep: the app-wide lock order).
        from routing.services import rep_open_leads_sync_for_user

        rep_open_leads_sync_for_user(user_id=lead.owner_id)
    Activity.objects.create(
        lead=lead,
        kind=ActivityKind.STAGE_CHANGED,
        occurred_at=at,
        actor=actor,
        payload={"from": from_stage, "to": to_stage, "reason": reason},
    )
    return lead


@transaction.atomic
def activity_log(
    *,
    lead_id: int,
    kind: str,
    actor: AbstractBaseUser | None,
    payload: dict | None = None,
    occurred_at: datetime | None = None,
) -> Activity:
    """Record something that happened to a lead. A rep's first call/email/meeting/message is the
    lead's first contact (it stops the response clock) and moves a new lead to working."""
    if kind not in ActivityKind.values:
        raise ApplicationError(f"Unknown activity kind “{kind}”.", field="kind")
    occurred_at = occurred_at or timezone.now()
    lead = Lead.objects.filter(pk=lead_id).only("id", "stage", "first_contacted_at").first()
    if lead is None:
        raise NotFound("No lead with this id.")
    activity = Activity.objects.create(
        lead=lead, kind=kind, occurred_at=occurred_at, actor=actor, payload=payload or {}
    )
    if kind in CONTACT_KINDS:
        first_touch = Lead.objects.filter(pk=lead_id, first_contacted_at__isnull=True).update(
            first_contacted_at=occurred_at
        )
        from routing.services.sla import sla_clock_stop  # the response SLA clock (issue 5)

        sla_clock_stop(lead_id=lead_id, touched_at=occurred_at)
        if first_touch and lead.stage == Stage.NEW:
            lead_stage_change(
                lead_id=lead_id, to_stage=Stage.WORKING, actor=actor, reason="first contact", at=occurred_at
            )
    return activity


# --- merge -------------------------------------------------------------------------------------


@transaction.atomic
def lead_merge(*, survivor_id: int, duplicate_ids: list[int], actor: AbstractBaseUser | None) -> Lead:
    """Fold duplicates into one lead: their history moves over, blanks are filled, they are deleted."""
    duplicate_ids = sorted(set(duplicate_ids) - {survivor_id})
    if not duplicate_ids:
        raise ApplicationError("Choose at least one other lead to merge.")
    # Lock order: ascending pk across both sets.
    all_ids = sorted([survivor_id, *duplicate_ids])
    locked_for_update = {lead.pk: lead for lead in leads_for_update(lead_ids=[survivor_id])}
    duplicates = list(leads_for_delete(lead_ids=duplicate_ids).prefetch_related("tags"))
    if survivor_id not in locked_for_update or len(duplicates) != len(duplicate_ids):
        raise NotFound(f"Some of the leads {all_ids} no longer exist.")
    survivor = locked_for_update[survivor_id]

    Activity.objects.filter(lead_id__in=duplicate_ids).update(lead=survivor)
    StageChange.objects.filter(lead_id__in=duplicate_ids).update(lead=survivor)
    IntakeSubmission.objects.filter(lead_id__in=duplicate_ids).update(lead=survivor)
    tag_ids = {tag.pk for duplicate in duplicates for tag in duplicate.tags.all()}

    contact_fallback: dict[str, str] = {}
    for duplicate in duplicates:
        for name in (*_FILLABLE_FIELDS, "owner_id", "account_id", "campaign_id"):
            if not getattr(survivor, name) and getattr(duplicate, name):
                setattr(survivor, name, getattr(duplicate, name))
        survivor.custom_fields = {**duplicate.custom_fields, **survivor.custom_fields}
        if not survivor.email_normalized and duplicate.email_normalized and "email" not in contact_fallback:
            contact_fallback.update(email=duplicate.email, email_normalized=duplicate.email_normalized)
        if not survivor.phone_e164 and duplicate.phone_e164 and "phone" not in contact_fallback:
            contact_fallback.update(phone=duplicate.phone, phone_e164=duplicate.phone_e164)
        if duplicate.first_contacted_at and (
            not survivor.first_contacted_at or duplicate.first_contacted_at < survivor.first_contacted_at
        ):
            survivor.first_contacted_at = duplicate.first_contacted_at
        if duplicate.created_at < survivor.created_at:
            # The earliest capture is the true first touch.
            survivor.created_at = duplicate.created_at
            survivor.first_touch, survivor.source_id = duplicate.first_touch, duplicate.source_id
            survivor.channel = duplicate.channel
    summary = [{"id": d.pk, "email": d.email, "phone": d.phone_e164, "name": d.full_name} for d in duplicates]
    Lead.objects.filter(pk__in=duplicate_ids).delete()
    for name, value in contact_fallback.items():
        setattr(survivor, name, value)
    survivor.save()
    if tag_ids:
        survivor.tags.add(*tag_ids)
    Activity.objects.create(
        lead=survivor,
        kind=ActivityKind.MERGED,
        occurred_at=timezone.now(),
        actor=actor,
        payload={"merged": summary},
    )
    return survivor


# --- bulk actions -------------------------------------------------------------------------------


@dataclass
class BulkResult:
    done: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # lead id -> why it was not changed


def leads_bulk_apply(
    *,
    user: AbstractBaseUser,
    action: str,
    lead_ids: list[int],
    to_stage: str = "",
    tag: str = "",
    reason: str = "",
    to_rep_id: int | None = None,
) -> BulkResult:
    """One bulk action ("stage", "tag" or "reassign") on those of `lead_ids` the user may see,
    lead by lead: each its own short transaction, so one refused lead does not undo the others.
    Reassignment goes to `to_rep_id`, or through the rules without the current owner."""
    from leads.selectors import lead_list_for_user
    from routing.selectors import rep_assignable_list_for_user
    from routing.services import lead_reassign

    visible = lead_list_for_user(user=user).filter(pk__in=lead_ids).order_by("pk").values_list("pk", flat=True)
    to_rep = None
    if action == "reassign" and to_rep_id:
        to_rep = rep_assignable_list_for_user(user=user).filter(pk=to_rep_id).first()
        if to_rep is None:
            raise ApplicationError("Choose an active rep you may assign leads to.", field="to_rep")
    result = BulkResult()
    for lead_id in list(visible):
        try:
            if action == "stage":
                lead_stage_change(lead_id=lead_id, to_stage=to_stage, actor=user, reason=reason or "bulk")
            elif action == "tag":
                lead_update(lead_id=lead_id, actor=user, add_tags=[tag])
            else:
                lead_reassign(lead_id=lead_id, actor=user, reason=reason, to_rep=to_rep)
            result.done += 1
        except ApplicationError as exc:
            result.failed[lead_id] = exc.message
    return result


# --- enrichment --------------------------------------------------------------------------------


def lead_enrich(*, lead_id: int) -> Lead | None:
    """Fill blank firmographics from the enrichment provider and match the account by domain.
    Idempotent: a lead already enriched is left alone, so a redelivered task is a no-op."""
    lead = Lead.objects.filter(pk=lead_id, enriched_at__isnull=True).first()
    if lead is None:
        return None
    provider = enrichment_provider()
    result = provider.enrich(lead)  # may be an HTTP call: done before taking any lock
    with transaction.atomic():
        lead = leads_for_update(lead_ids=[lead_id]).filter(enriched_at__isnull=True).first()
        if lead is None:
            return None
        found: dict[str, str] = {}
        for name in ("company_domain", "company_name", "country", "industry", "company_size"):
            value = getattr(result, name)
            if value and not getattr(lead, name):
                setattr(lead, name, value)
                found[name] = value
        if lead.company_domain and lead.account_id is None:
            lead.account = account_match(domain=lead.company_domain, lead=lead)
            found["account"] = lead.account.domain
        lead.enriched_at = timezone.now()
        lead.save(update_fields=[*[n for n in found if n != "account"], "account", "enriched_at", "updated_at"])
        Activity.objects.create(
            lead=lead,
            kind=ActivityKind.ENRICHED,
            occurred_at=lead.enriched_at,
            payload={"provider": provider.name, "found": found, **result.extra},
        )
    return lead


def account_match(*, domain: str, lead: Lead | None = None) -> Account:
    defaults = {}
    if lead is not None:
        defaults = {"name": lead.company_name, "industry": lead.industry, "country": lead.country}
    account, _ = Account.objects.get_or_create(domain=domain.lower(), defaults=defaults)
    return account


_ENRICHMENT_RUN_LOCK = "leadops:enrichment-run"
_ENRICHMENT_RUN_LEASE_SECONDS = 300  # longer than a run's time budget; frees a dead worker's lock
ENRICHMENT_RUN_SECONDS = 20.0


def lead_enrichment_request() -> None:
    """Ask, after commit, for an enrichment run: at most one per LEADOPS_ENRICHMENT_BATCH_SECONDS
    per process (a run per lead cost a fifth of an intake's CPU; a run also spares the provider)."""
    from leads.tasks import lead_enrichment_run_task

    enqueue_batched_on_commit(lead_enrichment_run_task, window_seconds=settings.LEADOPS_ENRICHMENT_BATCH_SECONDS)


@dataclass
class EnrichmentRun:
    handled: int = 0
    failed: int = 0
    more: bool = False  # leads remain: the caller should start another run
    skipped: bool = False  # another run was in progress (it picks up these leads)


def lead_enrichment_run(*, batch_size: int = 200, time_budget_seconds: float = ENRICHMENT_RUN_SECONDS) -> EnrichmentRun:
    """Enrich every lead not enriched yet, oldest first, one run at a time across workers.

    A run that finds another in progress leaves its leads to it: the running one looks once more
    after releasing its lock. A lead whose provider call fails is logged and left for the next
    run; the keyset walk keeps it from stalling the leads behind it."""
    run = EnrichmentRun()
    token = secrets.token_hex(8)
    if cache.add(_ENRICHMENT_RUN_LOCK, token, timeout=_ENRICHMENT_RUN_LEASE_SECONDS) is False:
        run.skipped = True
        return run
    deadline = time.monotonic() + time_budget_seconds
    after: tuple[datetime, int] | None = None
    try:
        while time.monotonic() < deadline:
            batch = lead_ids_unenriched(after=after, limit=batch_size)
            for created_at, lead_id in batch:
                try:
                    lead_enrich(lead_id=lead_id)
                    run.handled += 1
                except Exception:  # a provider outage must not stall every lead behind this one
                    logger.warning("Enrichment of lead %s failed; the next run retries it", lead_id, exc_info=True)
                    run.failed += 1
                after = (created_at, lead_id)
            if len(batch) < batch_size:
                break
        else:
            run.more = True
    finally:
        if cache.get(_ENRICHMENT_RUN_LOCK) == token:
            cache.delete(_ENRICHMENT_RUN_LOCK)
    if not run.more and not run.failed:  # (with failures, beat's next run retries them)
        # From the start: a lead committed late may sort before where the walk ended.
        run.more = bool(lead_ids_unenriched(limit=1))
    return run


# --- API keys ----------------------------------------------------------------------------------


def api_key_create(*, source: Source, name: str = "") -> tuple[ApiKey, str]:
    """A new key for a source. The raw key is returned once and never stored."""
    prefix = secrets.token_hex(4)
    raw_key = f"lo_{prefix}_{secrets.token_hex(24)}"
    api_key = ApiKey.objects.create(source=source, name=name, prefix=prefix, key_hash=api_key_hash(raw_key))
    return api_key, raw_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key_cache_forget(prefix=api_key.prefix)
    api_key.refresh_from_db()
    return api_key


def api_key_mark_used(*, api_key: ApiKey) -> None:
    # At most one write a minute per key: enough to spot unused keys, cheap on the hot path.
    now = timezone.now()
    if api_key.last_used_at and api_key.last_used_at > now - timedelta(minutes=1):
        return
    api_key.last_used_at = now  # the cached key object too: at most one write a minute per process
    ApiKey.objects.filter(pk=api_key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - timedelta(minutes=1))
    ).update(last_used_at=now)


def source_get_or_create(*, name: str) -> Source:
    source, _ = Source.objects.get_or_create(name=name.strip())
    return source


# --- edits from the lead page ------------------------------------------------------------------

LEAD_EDITABLE_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "title",
    "company_name",
    "company_domain",
    "industry",
    "company_size",
    "country",
    "region",
    "postal_code",
)


@transaction.atomic
def lead_update(
    *, lead_id: int, actor: AbstractBaseUser | None, add_tags: list[str] | None = None, **fields: Any
) -> Lead:
    """Edit a lead's identity fields (LEAD_EDITABLE_FIELDS) and/or add tags. Email and phone are
    normalised as at intake; one that already belongs to another lead is refused (merge instead)."""
    unknown = set(fields) - set(LEAD_EDITABLE_FIELDS)
    if unknown:
        raise InvalidLeadData(f"These fields cannot be edited: {', '.join(sorted(unknown))}.")
    lead = leads_for_update(lead_ids=[lead_id]).first()
    if lead is None:
        raise NotFound("No lead with this id.")
    changed = [name for name, value in fields.items() if getattr(lead, name) != value]
    for name in changed:
        setattr(lead, name, fields[name])
    if "email" in changed:
        lead.email = lead.email.strip()
        lead.email_normalized = email_normalize(lead.email) if lead.email else ""
        changed.append("email_normalized")
    if "phone" in changed:
        try:
            lead.phone_e164 = phone_to_e164(lead.phone, region=lead.country) if lead.phone.strip() else ""
        except PhoneError as exc:
            raise InvalidLeadData(str(exc), field="phone") from exc
        changed.append("phone_e164")
    if changed:
        try:
            with transaction.atomic():
                lead.save(update_fields=[*changed, "updated_at"])
        except IntegrityError as exc:
            raise InvalidLeadData("Another lead already has this email or phone: merge the two instead.") from exc
    names = sorted({name.strip()[:60] for name in add_tags or [] if name.strip()})
    if names:
        tags = [Tag.objects.get_or_create(name=name)[0] for name in names]
        lead.tags.add(*tags)
    return lead
