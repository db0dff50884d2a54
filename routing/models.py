"""Sales teams, reps, territories, routing rules, pull queues and assignments. Data and constraints only:
the router itself lives in routing/services/."""

import datetime

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from core.models import BaseModel


def _weekdays() -> list[int]:
    return [0, 1, 2, 3, 4]


class Team(BaseModel):
    name = models.CharField(max_length=120, unique=True)
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="managed_teams"
    )
    timezone = models.CharField(max_length=64, default="UTC")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Territory(BaseModel):
    """A slice of the market. A lead matches when it satisfies every criterion that is filled in."""

    name = models.CharField(max_length=120, unique=True)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="territories")
    countries = models.JSONField(default=list, blank=True, help_text='ISO codes, e.g. ["DE", "AT"].')
    regions = models.JSONField(default=list, blank=True, help_text="Regions or states.")
    postal_prefixes = models.JSONField(default=list, blank=True, help_text='e.g. ["10", "80"].')
    industries = models.JSONField(default=list, blank=True)
    company_sizes = models.JSONField(default=list, blank=True, help_text='Size bands, e.g. ["201-1000"].')

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "territories"

    def __str__(self) -> str:
        return self.name


class RepProfile(BaseModel):
    """A sales user as the router sees them: where they sit, what they know, how much they can take."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rep")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="reps")
    is_active = models.BooleanField(default=True)
    is_available = models.BooleanField(default=True, help_text="The rep's own availability switch.")
    weight = models.PositiveSmallIntegerField(default=1)
    capacity = models.PositiveIntegerField(default=50, help_text="Maximum open leads at once.")
    open_leads = models.PositiveIntegerField(default=0)
    daily_cap = models.PositiveIntegerField(default=25)
    timezone = models.CharField(max_length=64, default="UTC")

    # Skills: the router compares these with the lead and with what a rule requires.
    languages = models.JSONField(default=list, blank=True, help_text='e.g. ["en", "de"].')
    products = models.JSONField(default=list, blank=True)
    industries = models.JSONField(default=list, blank=True)
    segments = models.JSONField(default=list, blank=True, help_text="Company size bands the rep sells to.")
    territories = models.ManyToManyField(Territory, blank=True, related_name="reps")

    # Working hours in the rep's time zone; start == end means around the clock.
    work_days = models.JSONField(default=_weekdays, blank=True, help_text="0 = Monday … 6 = Sunday.")
    work_start = models.TimeField(default=datetime.time(9, 0))
    work_end = models.TimeField(default=datetime.time(17, 0))
    out_of_office_from = models.DateField(null=True, blank=True)
    out_of_office_until = models.DateField(null=True, blank=True)

    # Router bookkeeping, only ever changed with conditional F() updates.
    routed_total = models.PositiveIntegerField(default=0, help_text="Leads pushed by balancing methods.")
    assigned_today = models.PositiveIntegerField(default=0)
    assigned_on = models.DateField(null=True, blank=True, help_text="The rep-local day assigned_today counts.")
    last_assigned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["user__username"]
        constraints = [
            models.CheckConstraint(condition=Q(open_leads__lte=F("capacity")), name="rep_open_within_capacity"),
            models.CheckConstraint(condition=Q(weight__gte=1), name="rep_weight_positive"),
        ]
        indexes = [models.Index(fields=["team", "is_active"], name="rep_team_active")]

    def __str__(self) -> str:
        return self.user.get_full_name() or self.user.get_username()


class Queue(BaseModel):
    """A pull queue. Leads wait here when a rule says so or when nobody is eligible."""

    name = models.CharField(max_length=120, unique=True)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="queues", help_text="Empty: every rep."
    )
    sla_minutes = models.PositiveIntegerField(default=60, help_text="A queued lead is due within this time.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MatchMode(models.TextChoices):
    ALL = "all", "All conditions"
    ANY = "any", "Any condition"


class Method(models.TextChoices):
    ROUND_ROBIN = "round_robin", "Round-robin"
    WEIGHTED = "weighted", "Weighted round-robin"
    LOAD_BALANCED = "load_balanced", "Load-balanced (fewest open leads)"
    TERRITORY = "territory", "Territory match"
    SKILL = "skill", "Skill match"
    ACCOUNT_OWNER = "account_owner", "Sticky account owner"
    NAMED_REP = "named_rep", "Named rep"
    QUEUE = "queue", "Pull queue"
    # Not rule methods: how a lead got its owner outside push routing.
    CLAIM = "claim", "Claimed from queue"
    REASSIGN = "reassign", "Reassigned by a manager"


RULE_METHODS = [m for m in Method if m not in (Method.CLAIM, Method.REASSIGN)]


class RoutingRule(BaseModel):
    """One line of the ordered rule list: if the lead matches the conditions, the action routes it.

    `conditions` is a list of {"field": "country" | "score" | "custom_fields.budget" | …,
    "op": "equals" | "in" | "not_in" | "gt" | "lt" | "contains" | "matches" | "is_empty", "value": …}.
    """

    name = models.CharField(max_length=160)
    position = models.PositiveIntegerField(default=100, help_text="Lower runs first.")
    is_active = models.BooleanField(default=True)
    is_fallback = models.BooleanField(default=False, editable=False, help_text="Matches everything, runs last.")
    match = models.CharField(max_length=3, choices=MatchMode.choices, default=MatchMode.ALL)
    conditions = models.JSONField(default=list, blank=True)
    queue = models.ForeignKey(
        Queue, on_delete=models.PROTECT, related_name="rules", help_text="Where leads go when nobody is eligible."
    )
    split_percent = models.PositiveSmallIntegerField(
        default=0, help_text="A/B test: share of matching leads (0-100) that take action B."
    )

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["is_fallback"], condition=Q(is_fallback=True), name="rule_one_fallback"),
            models.CheckConstraint(condition=Q(split_percent__lte=100), name="rule_split_percent_valid"),
        ]
        indexes = [models.Index(fields=["position", "id"], condition=Q(is_active=True), name="rule_active_order")]

    def __str__(self) -> str:
        return self.name


class Arm(models.TextChoices):
    A = "A", "A"
    B = "B", "B"


class RuleAction(BaseModel):
    """What a rule does: assign within a team or a hand-picked pool using one method (arm A), and,
    for an A/B test, an alternative (arm B)."""

    rule = models.ForeignKey(RoutingRule, on_delete=models.CASCADE, related_name="actions")
    arm = models.CharField(max_length=1, choices=Arm.choices, default=Arm.A)
    method = models.CharField(max_length=20, choices=[(m.value, m.label) for m in RULE_METHODS])
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    pool = models.ManyToManyField(RepProfile, blank=True, related_name="+", help_text="Hand-picked reps.")
    rep = models.ForeignKey(
        RepProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="Named rep."
    )
    required_skills = models.JSONField(
        default=dict, blank=True, help_text='e.g. {"languages": ["de"], "products": ["cloud"]}.'
    )
    queue = models.ForeignKey(
        Queue, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="For the queue method."
    )

    class Meta:
        ordering = ["rule", "arm"]
        constraints = [models.UniqueConstraint(fields=["rule", "arm"], name="ruleaction_one_per_arm")]

    def __str__(self) -> str:
        return f"{self.rule} [{self.arm}] {self.get_method_display()}"


class Assignment(models.Model):
    """Every routing decision that gave a lead an owner or put it in a queue, with its explanation."""

    # Every routing writes one: lead, rep and rule are served by the composite indexes below.
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="assignments", db_index=False)
    rep = models.ForeignKey(
        RepProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="assignments", db_index=False
    )
    queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rule = models.ForeignKey(
        RoutingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    rule_name = models.CharField(max_length=160, blank=True)
    method = models.CharField(max_length=20, choices=Method.choices)
    arm = models.CharField(max_length=1, choices=Arm.choices, blank=True)
    candidates = models.JSONField(default=list, blank=True)
    reason = models.CharField(max_length=500)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    notified_at = models.DateTimeField(null=True, blank=True)
    # Failed attempts to tell the owner (routing.services.reps): the batch records the failure here
    # and goes on with the others; the item is retried at notify_retry_at (NULL once given up).
    notify_attempts = models.PositiveSmallIntegerField(default=0)
    notify_error = models.TextField(blank=True)
    notify_retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["lead", "-created_at"], name="assignment_lead_at"),
            models.Index(fields=["rep", "-created_at"], name="assignment_rep_at"),
            models.Index(fields=["rule", "arm", "created_at"], name="assignment_rule_arm_at"),
            # Owners not told yet (routing.services.reps.assignment_notifications_send).
            models.Index(
                fields=["created_at"],
                condition=Q(notified_at__isnull=True, rep__isnull=False) & ~Q(method="claim"),
                name="assignment_unnotified",
            ),
            # Failed notifications due for another attempt (the same sender's retries).
            models.Index(
                fields=["notify_retry_at"],
                condition=Q(notify_retry_at__isnull=False, notified_at__isnull=True),
                name="assignment_notify_retry",
            ),
        ]

    def __str__(self) -> str:
        return f"Lead {self.lead_id} → {self.rep or self.queue} ({self.method})"


class QueueEntry(models.Model):
    """A lead waiting in a pull queue. One row per lead; `claimed_at` set once somebody took it."""

    lead = models.OneToOneField("leads.Lead", on_delete=models.CASCADE, related_name="queue_entry")
    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="entries")
    # The lead's score when queued, so the queue is read in
    # priority order straight from an index, without sorting every waiting lead on each claim.
    score = models.IntegerField(default=0)
    enqueued_at = models.DateTimeField()
    due_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.ForeignKey(RepProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name_plural = "queue entries"
        indexes = [
            models.Index(fields=["queue", "due_at"], condition=Q(claimed_at__isnull=True), name="queueentry_open_due"),
            models.Index(
                F("score").desc(), "due_at", "id", condition=Q(claimed_at__isnull=True), name="queueentry_open_priority"
            ),
        ]

    def __str__(self) -> str:
        return f"Lead {self.lead_id} in {self.queue_id}"


# --- Response SLAs (issue 5: the 5-minute rule) ---------------------------------------------------


class TeamCalendar(BaseModel):
    """The business hours an SLA policy counts when it counts business hours only: the team's working
    days and hours, in the team's time zone (Team.timezone), minus its holidays."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="calendar")
    work_days = models.JSONField(default=_weekdays, blank=True, help_text="0 = Monday … 6 = Sunday.")
    work_start = models.TimeField(default=datetime.time(9, 0))
    work_end = models.TimeField(default=datetime.time(17, 0), help_text="Equal to start: around the clock.")
    holidays = models.JSONField(default=list, blank=True, help_text='ISO dates, e.g. ["2026-12-25"].')

    def __str__(self) -> str:
        return f"Calendar of {self.team}"


class SlaEscalation(models.TextChoices):
    REASSIGN = "reassign", "Reassign to the next eligible rep (or the queue)"
    NOTIFY = "notify", "Notify only"


class SlaPolicy(BaseModel):
    """How fast a lead must get its first touch after assignment, and what happens when it does not.
    The first active policy (by position) whose filled-in criteria all match the lead and its
    assignment applies; none matching: the default policy (or the built-in 5 minutes)."""

    name = models.CharField(max_length=120, unique=True)
    position = models.PositiveIntegerField(default=100, help_text="Lower is tried first.")
    is_active = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False)
    # Criteria (empty = any).
    rule = models.ForeignKey(RoutingRule, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    company_sizes = models.JSONField(default=list, blank=True)
    countries = models.JSONField(default=list, blank=True)
    min_score = models.IntegerField(null=True, blank=True)
    # Clock and ladder.
    first_touch_seconds = models.PositiveIntegerField(default=300)
    business_hours = models.BooleanField(default=False, help_text="Count only the team's business hours.")
    warn_percent = models.PositiveSmallIntegerField(default=80, help_text="Warn the rep at this share of the SLA.")
    escalation = models.CharField(max_length=10, choices=SlaEscalation.choices, default=SlaEscalation.REASSIGN)
    escalate_after_seconds = models.PositiveIntegerField(default=300, help_text="After the breach.")

    class Meta:
        ordering = ["position", "pk"]
        verbose_name_plural = "SLA policies"
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="slapolicy_one_default"),
            models.CheckConstraint(condition=Q(warn_percent__lte=100), name="slapolicy_warn_percent_valid"),
            models.CheckConstraint(condition=Q(first_touch_seconds__gte=1), name="slapolicy_positive_sla"),
        ]

    def __str__(self) -> str:
        return self.name


class ClockStatus(models.TextChoices):
    OPEN = "open", "Running"
    ESCALATING = "escalating", "Being reassigned"
    TOUCHED = "touched", "First touch made"
    CLOSED = "closed", "Closed (lead moved on)"


# A clock in one of these states still needs the sweep (one per lead: clock_one_running_per_lead).
RUNNING_CLOCK_STATUSES = (ClockStatus.OPEN, ClockStatus.ESCALATING)


class ResponseClock(models.Model):
    """The response clock of one lead and one owner: started on assignment, stopped by the first touch,
    closed by a reassignment. `next_action_at` is when the sweep must look at it next (warn, breach,
    escalate); NULL once nothing is left to do."""

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="response_clocks")
    # Every push writes a clock: rep and team are served by clock_rep_started / clock_team_started,
    # and deleting a policy (rare) may scan; no single-column indexes of their own.
    rep = models.ForeignKey(RepProfile, on_delete=models.CASCADE, related_name="response_clocks", db_index=False)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    policy = models.ForeignKey(
        SlaPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    assignment = models.ForeignKey(Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    escalation = models.CharField(max_length=10, choices=SlaEscalation.choices, default=SlaEscalation.REASSIGN)
    status = models.CharField(max_length=10, choices=ClockStatus.choices, default=ClockStatus.OPEN)
    started_at = models.DateTimeField()
    warn_at = models.DateTimeField()
    due_at = models.DateTimeField()
    escalate_at = models.DateTimeField()
    next_action_at = models.DateTimeField(null=True, blank=True)
    first_touch_at = models.DateTimeField(null=True, blank=True)
    time_to_first_touch = models.DurationField(null=True, blank=True)
    warned_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["lead"], condition=Q(status__in=["open", "escalating"]), name="clock_one_running_per_lead"
            ),
        ]
        indexes = [
            # The sweep: running clocks whose next step is due, oldest first.
            models.Index(
                fields=["next_action_at", "id"],
                condition=Q(status__in=["open", "escalating"], next_action_at__isnull=False),
                name="clock_running_next_action",
            ),
            models.Index(fields=["rep", "started_at"], name="clock_rep_started"),
            models.Index(fields=["team", "started_at"], name="clock_team_started"),
            models.Index(fields=["due_at"], condition=Q(status="open"), name="clock_open_due"),
        ]

    def __str__(self) -> str:
        return f"Clock of lead {self.lead_id} for rep {self.rep_id} ({self.status})"


class SlaAlertKind(models.TextChoices):
    WARNING = "warning", "Warning to the rep"
    BREACH = "breach", "Breach, to the manager"
    ESCALATION = "escalation", "Escalation, to the manager"


class SlaAlert(models.Model):
    """A notification an SLA step owes somebody, written in the step's transaction (with its in-app
    core.Notification); the email goes out after commit. `email_sent_at` NULL = still to send: the
    sweep re-sends those whose lease (`email_claimed_at`) ran out, so a dead worker loses nothing."""

    clock = models.ForeignKey(ResponseClock, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=10, choices=SlaAlertKind.choices)
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    notification = models.ForeignKey("core.Notification", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField()
    email_claimed_at = models.DateTimeField(null=True, blank=True)
    email_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clock", "kind", "recipient"], name="slaalert_once_per_step"),
        ]
        indexes = [
            models.Index(fields=["created_at", "id"], condition=Q(email_sent_at__isnull=True), name="slaalert_unsent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for clock {self.clock_id}"
