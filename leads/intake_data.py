"""What a submission says (`LeadData`) and who sent it (`IntakeContext`): the input of the capture
use case, built by the intake API, CSV import, replay and the demo seeder alike."""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from leads.models import ActivityKind, ApiKey, Source


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
    occurred_at: datetime | None = None  # when the touch happened (imports, the seeder); default now


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
    # Capture steps (LEADOPS_CAPTURE_STEPS names) this submission skips, e.g. "routing.assign" for
    # historical data whose owner the caller sets itself.
    skip_steps: frozenset[str] = frozenset()
    # Kept in the submission's activity (e.g. which import and row); the first stage change's reason.
    log_details: dict[str, Any] = field(default_factory=dict)
    first_stage_reason: str = "captured"

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
