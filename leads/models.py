"""Leads, where they came from, and everything that happens to them. Data and constraints only."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from core.models import BaseModel


class Channel(models.TextChoices):
    WEB_FORM = "web_form", "Web form"
    PAID_ADS = "paid_ads", "Paid ads"
    ORGANIC = "organic", "Organic search"
    EMAIL = "email", "Email"
    SOCIAL = "social", "Social"
    EVENT = "event", "Event"
    REFERRAL = "referral", "Referral"
    PARTNER = "partner", "Partner"
    THIRD_PARTY = "third_party", "Third party"
    IMPORT = "import", "Import"
    API = "api", "API"
    CHAT = "chat", "Chat"
    OTHER = "other", "Other"


class Stage(models.TextChoices):
    NEW = "new", "New"
    WORKING = "working", "Working"
    MQL = "mql", "MQL"
    SQL = "sql", "SQL"
    OPPORTUNITY = "opportunity", "Opportunity"
    WON = "won", "Won"
    LOST = "lost", "Lost"
    DISQUALIFIED = "disqualified", "Disqualified"
    RECYCLED = "recycled", "Recycled"


# A lead in one of these stages is closed: it no longer takes a slot of its owner's capacity.
CLOSED_STAGES = frozenset({Stage.WON, Stage.LOST, Stage.DISQUALIFIED})


class CompanySize(models.TextChoices):
    S1_10 = "1-10", "1-10"
    S11_50 = "11-50", "11-50"
    S51_200 = "51-200", "51-200"
    S201_1000 = "201-1000", "201-1000"
    S1001_5000 = "1001-5000", "1001-5000"
    S5000_PLUS = "5000+", "5000+"


class Source(BaseModel):
    """Where leads come from (a form, a list vendor, an event); API keys belong to a source."""

    name = models.CharField(max_length=120, unique=True)
    channel = models.CharField(max_length=20, choices=Channel.choices, default=Channel.WEB_FORM)
    cost_per_month = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    is_active = models.BooleanField(default=True)
    # Remembered CSV column mapping for imports from this source.
    import_mapping = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Campaign(BaseModel):
    name = models.CharField(max_length=160)
    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="campaigns")
    utm_campaign = models.CharField(max_length=160, blank=True, db_index=True)
    budget = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    starts_on = models.DateField(null=True, blank=True)
    ends_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["name"], name="campaign_unique_name")]

    def __str__(self) -> str:
        return self.name


class ApiKey(BaseModel):
    """A key for external forms and systems. Only a hash of the secret is stored."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=120, blank=True)
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.source})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Account(BaseModel):
    """A company, matched by its web domain, so its leads can be grouped and routed together."""

    name = models.CharField(max_length=200, blank=True)
    domain = models.CharField(max_length=253, unique=True)
    industry = models.CharField(max_length=120, blank=True)
    company_size = models.CharField(max_length=12, choices=CompanySize.choices, blank=True)
    country = models.CharField(max_length=2, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="accounts"
    )

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.name or self.domain


class Tag(models.Model):
    name = models.CharField(max_length=60, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Lead(BaseModel):
    # Not auto_now_add: historical imports keep the time the lead really came in.
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    # Identity. `email`/`phone` are kept as given; the normalised forms identify the person.
    email = models.CharField(max_length=254, blank=True)
    email_normalized = models.CharField(max_length=254, blank=True, editable=False)
    phone = models.CharField(max_length=40, blank=True)
    phone_e164 = models.CharField(max_length=20, blank=True, editable=False)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    title = models.CharField(max_length=150, blank=True)
    company_name = models.CharField(max_length=200, blank=True)
    company_domain = models.CharField(max_length=253, blank=True)  # indexed in Meta (no LIKE index)
    industry = models.CharField(max_length=120, blank=True)
    company_size = models.CharField(max_length=12, choices=CompanySize.choices, blank=True)
    country = models.CharField(max_length=2, blank=True)
    region = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="leads")
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads")

    # Attribution. The first touch is what the lead is credited to (source, campaign, channel);
    # the last touch is updated by every later submission of the same person.
    channel = models.CharField(max_length=20, choices=Channel.choices, default=Channel.WEB_FORM)
    # Every index is paid on each intake: these foreign keys are served by the composite indexes
    # below (source/campaign + created_at, owner + stage), not by single-column ones of their own.
    source = models.ForeignKey(
        Source, null=True, blank=True, on_delete=models.PROTECT, related_name="leads", db_index=False
    )
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads", db_index=False
    )
    first_touch = models.JSONField(default=dict, blank=True)
    last_channel = models.CharField(max_length=20, choices=Channel.choices, blank=True)
    # Rewritten on every return visit: with no index on any last-touch column that update can be
    # HOT (no new entries in the lead table's ~17 indexes). Deleting a source or campaign, a rare
    # admin act, scans the table instead.
    last_source = models.ForeignKey(
        Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="last_touch_leads", db_index=False
    )
    last_campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="last_touch_leads", db_index=False
    )
    last_touch = models.JSONField(default=dict, blank=True)
    last_touch_at = models.DateTimeField(null=True, blank=True)

    # Lifecycle and ownership.
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.NEW)
    stage_changed_at = models.DateTimeField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_leads",
        db_index=False,  # served by lead_owner_stage
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    first_contacted_at = models.DateTimeField(null=True, blank=True)
    score = models.IntegerField(default=0)

    # Consent to marketing email, and how it was given.
    marketing_consent = models.BooleanField(default=False)
    consent_at = models.DateTimeField(null=True, blank=True)
    consent_method = models.CharField(max_length=120, blank=True)

    # Set by the enrichment task; NULL means "still to enrich" (the sweep finds these through an index).
    enriched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("view_all_leads", "Can see every lead, not only their own"),
            ("change_lead_stage", "Can move a lead through the lifecycle"),
            ("reassign_lead", "Can reassign leads to another owner"),
            ("export_leads", "Can export leads"),
            ("import_leads", "Can import leads from CSV"),
        ]
        constraints = [
            # One lead per person: the database, not the application, guarantees it.
            models.UniqueConstraint(
                fields=["email_normalized"], condition=~Q(email_normalized=""), name="lead_unique_email"
            ),
            models.UniqueConstraint(fields=["phone_e164"], condition=~Q(phone_e164=""), name="lead_unique_phone"),
            models.CheckConstraint(condition=Q(stage__in=Stage.values), name="lead_stage_valid"),
        ]
        indexes = [
            models.Index(fields=["stage", "-created_at"], name="lead_stage_created"),
            models.Index(fields=["source", "-created_at"], name="lead_source_created"),
            models.Index(fields=["campaign", "-created_at"], name="lead_campaign_created"),
            models.Index(fields=["owner", "stage"], name="lead_owner_stage"),
            models.Index(fields=["channel", "-created_at"], name="lead_channel_created"),
            models.Index(fields=["-score"], name="lead_score"),
            models.Index(fields=["created_at"], condition=Q(enriched_at__isnull=True), name="lead_unenriched"),
            models.Index(fields=["company_domain"], name="lead_company_domain"),
        ]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email or self.phone or f"Lead {self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class StageChange(models.Model):
    """One row per lifecycle move, so conversion and velocity can be measured."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.CharField(max_length=20, choices=Stage.choices, blank=True)
    to_stage = models.CharField(max_length=20, choices=Stage.choices)
    changed_at = models.DateTimeField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["changed_at", "id"]
        indexes = [
            models.Index(fields=["lead", "changed_at"], name="stagechange_lead_at"),
            models.Index(fields=["to_stage", "changed_at"], name="stagechange_to_at"),
        ]

    def __str__(self) -> str:
        return f"{self.lead_id}: {self.from_stage or '∅'} → {self.to_stage}"


class ActivityKind(models.TextChoices):
    FORM_SUBMITTED = "form_submitted", "Form submitted"
    IMPORTED = "imported", "Imported"
    PAGE_VIEW = "page_view", "Page view"
    EMAIL_SENT = "email_sent", "Email sent"
    EMAIL_OPENED = "email_opened", "Email opened"
    EMAIL_CLICKED = "email_clicked", "Email clicked"
    CALL = "call", "Call"
    MEETING = "meeting", "Meeting"
    MESSAGE = "message", "Message"
    NOTE = "note", "Note"
    ASSIGNED = "assigned", "Assigned"
    CLAIMED = "claimed", "Claimed"
    STAGE_CHANGED = "stage_changed", "Stage changed"
    MERGED = "merged", "Merged"
    ENRICHED = "enriched", "Enriched"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"


# Activities a person logs when they reach out: these count as a first touch (SLA clock).
CONTACT_KINDS = frozenset({ActivityKind.CALL, ActivityKind.EMAIL_SENT, ActivityKind.MEETING, ActivityKind.MESSAGE})


class Activity(models.Model):
    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="activities", db_index=False
    )  # activity_lead_at
    kind = models.CharField(max_length=20, choices=ActivityKind.choices)
    occurred_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payload = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name_plural = "activities"
        indexes = [
            models.Index(fields=["lead", "-occurred_at"], name="activity_lead_at"),
            models.Index(fields=["kind", "occurred_at"], name="activity_kind_at"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on lead {self.lead_id}"


class IntakeOutcome(models.TextChoices):
    CREATED = "created", "Created a lead"
    MERGED = "merged", "Matched an existing lead"


class IntakeSubmission(models.Model):
    """The intake log: every accepted submission's raw payload, so nothing is lost and any can be replayed."""

    received_at = models.DateTimeField(db_index=True)
    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payload = models.JSONField(encoder=DjangoJSONEncoder)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    lead = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.SET_NULL, related_name="submissions")
    outcome = models.CharField(max_length=10, choices=IntakeOutcome.choices)
    # Idempotency: who sent it ("key:12", "user:3") and their key; the first response is replayed.
    idempotency_scope = models.CharField(max_length=40, blank=True)
    idempotency_key = models.CharField(max_length=255, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    # When DJANGO_INTAKE_LOG_RETENTION_DAYS deleted the payload, response body and client IP.
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_scope", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="intake_unique_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return f"Submission {self.pk} ({self.outcome})"


# --- CSV import ------------------------------------------------------------------------------------


class ImportStatus(models.TextChoices):
    DRAFT = "draft", "Mapping columns"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


class ImportJob(BaseModel):
    """One CSV upload: its file under MEDIA_ROOT, the column mapping, and live progress counters."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    file = models.FileField(upload_to="imports/%Y/%m/")
    original_name = models.CharField(max_length=255)
    encoding = models.CharField(max_length=20)
    delimiter = models.CharField(max_length=1)
    headers = models.JSONField(default=list)
    # CSV header -> target: a lead field ("email"), "custom:<name>", "outcome", "created_at", or "" (ignored).
    mapping = models.JSONField(default=dict, blank=True)
    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.PROTECT, related_name="import_jobs")
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.DRAFT)
    cancel_requested = models.BooleanField(default=False)
    total_rows = models.PositiveIntegerField(null=True, blank=True)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    merged_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    purged_at = models.DateTimeField(
        null=True, blank=True, help_text="When the file and the rejected rows were deleted (retention)."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ImportStatus.values), name="importjob_status_valid"),
            models.CheckConstraint(
                condition=Q(processed_rows__gte=F("created_count") + F("merged_count") + F("rejected_count")),
                name="importjob_counts_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.original_name})"

    @property
    def is_finished(self) -> bool:
        return self.status in (ImportStatus.COMPLETED, ImportStatus.CANCELLED, ImportStatus.FAILED)

    @property
    def percent(self) -> int:
        if self.status == ImportStatus.COMPLETED:
            return 100
        if not self.total_rows:
            return 0
        return min(100, self.processed_rows * 100 // self.total_rows)


class ImportRowError(models.Model):
    """A rejected row of an import, with the reason: downloadable as CSV."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    row_number = models.PositiveIntegerField(help_text="1-based data row number (the header is row 0).")
    reason = models.TextField()
    values = models.JSONField(default=list, help_text="The row's cells as read from the file.")

    class Meta:
        ordering = ["job", "row_number"]
        constraints = [models.UniqueConstraint(fields=["job", "row_number"], name="importrowerror_unique_row")]

    def __str__(self) -> str:
        return f"Import {self.job_id} row {self.row_number}: {self.reason}"


# --- Privacy requests ------------------------------------------------------------------------------


class PrivacyRequestKind(models.TextChoices):
    EXPORT = "export", "Data export"
    ERASE = "erase", "Erasure"


class PrivacyRequest(models.Model):
    """Audit log of privacy requests carried out: who, when, which lead. Holds no personal data.

    A lead with an `erase` row is erased (its row stays, without personal data, for analytics).
    """

    kind = models.CharField(max_length=10, choices=PrivacyRequestKind.choices)
    lead = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.SET_NULL, related_name="privacy_requests")
    lead_ref = models.PositiveBigIntegerField(help_text="The lead's id, kept if the lead row is ever deleted.")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    performed_at = models.DateTimeField(default=timezone.now, db_index=True)
    reference = models.CharField(max_length=64, blank=True, help_text="Ticket number of the request; no personal data.")
    summary = models.JSONField(default=dict, blank=True, help_text="Counts of what was exported or erased.")

    class Meta:
        ordering = ["-performed_at", "-id"]
        permissions = [
            ("export_lead_data", "Can export everything stored about a lead (privacy request)"),
            ("erase_lead", "Can erase a lead's personal data (privacy request)"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=PrivacyRequestKind.values), name="privacyrequest_kind_valid"),
            models.UniqueConstraint(
                fields=["lead_ref"], condition=Q(kind="erase"), name="privacyrequest_one_erasure_per_lead"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of lead {self.lead_ref}"
