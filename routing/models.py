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

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="assignments")
    rep = models.ForeignKey(RepProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="assignments")
    queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rule = models.ForeignKey(RoutingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
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

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["lead", "-created_at"], name="assignment_lead_at"),
            models.Index(fields=["rep", "-created_at"], name="assignment_rep_at"),
            models.Index(fields=["rule", "arm", "created_at"], name="assignment_rule_arm_at"),
        ]

    def __str__(self) -> str:
        return f"Lead {self.lead_id} → {self.rep or self.queue} ({self.method})"


class QueueEntry(models.Model):
    """A lead waiting in a pull queue. One row per lead; `claimed_at` set once somebody took it."""

    lead = models.OneToOneField("leads.Lead", on_delete=models.CASCADE, related_name="queue_entry")
    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="entries")
    # The lead's score when queued (kept in step by queue_entry_score_sync), so the queue is read in
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
