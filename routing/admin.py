from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from core.exceptions import ApplicationError
from routing.models import (
    Assignment,
    Queue,
    QueueEntry,
    RepProfile,
    ResponseClock,
    RoutingRule,
    RuleAction,
    SlaAlert,
    SlaPolicy,
    Team,
    TeamCalendar,
    Territory,
)
from routing.services import rep_open_leads_sync, routing_rule_delete


class TeamCalendarInline(admin.StackedInline):
    model = TeamCalendar
    extra = 0
    max_num = 1
    verbose_name = "business-hours calendar"


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "manager", "timezone", "rep_count")
    inlines = [TeamCalendarInline]  # business hours for SLA due times
    list_select_related = ("manager",)
    search_fields = ("name",)
    autocomplete_fields = ("manager",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return super().get_queryset(request).annotate(rep_count=Count("reps", distinct=True))

    @admin.display(description="Reps", ordering="rep_count")
    def rep_count(self, team: Team) -> int:
        return team.rep_count


@admin.register(RepProfile)
class RepProfileAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "full_name",
        "team",
        "is_active",
        "is_available",
        "open_leads",
        "capacity",
        "daily_cap",
        "weight",
        "timezone",
    )
    list_filter = ("team", "is_active", "is_available")
    list_select_related = ("user", "team")
    search_fields = ("user__username", "user__first_name", "user__last_name", "user__email")
    autocomplete_fields = ("user", "team")
    filter_horizontal = ("territories",)
    # Counters kept by the routing services; editing them by hand would break capacity checks.
    readonly_fields = (
        "open_leads",
        "routed_total",
        "assigned_today",
        "assigned_on",
        "last_assigned_at",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("user", "team", "is_active", "is_available", "weight", "capacity", "daily_cap")}),
        ("Skills and territories", {"fields": ("languages", "products", "industries", "segments", "territories")}),
        (
            "Working hours",
            {
                "fields": (
                    "timezone",
                    "work_days",
                    "work_start",
                    "work_end",
                    "out_of_office_from",
                    "out_of_office_until",
                )
            },
        ),
        ("Counters", {"fields": readonly_fields}),
    )
    actions = ["recount_open_leads"]

    @admin.display(description="Name", ordering="user__last_name")
    def full_name(self, rep: RepProfile) -> str:
        return rep.user.get_full_name()

    @admin.action(description="Recount open leads from the leads table")
    def recount_open_leads(self, request: HttpRequest, queryset: QuerySet[RepProfile]) -> None:
        for rep in queryset:
            rep_open_leads_sync(rep_id=rep.pk)
        self.message_user(request, f"Recounted {queryset.count()} rep(s).")


@admin.register(Territory)
class TerritoryAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "countries", "regions", "postal_prefixes", "industries", "company_sizes")
    list_select_related = ("team",)
    search_fields = ("name",)


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "sla_minutes", "waiting")
    list_select_related = ("team",)
    search_fields = ("name",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Queue]:
        from django.db.models import Q

        return (
            super()
            .get_queryset(request)
            .annotate(waiting_count=Count("entries", filter=Q(entries__claimed_at__isnull=True)))
        )

    @admin.display(description="Waiting", ordering="waiting_count")
    def waiting(self, queue: Queue) -> int:
        return queue.waiting_count


class RuleActionInline(admin.StackedInline):
    model = RuleAction
    extra = 0
    max_num = 2
    autocomplete_fields = ("team", "rep", "queue")
    filter_horizontal = ("pool",)


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    """Rules are data: ops edit them here or in the app (/routing/rules/). The fallback cannot go."""

    list_display = ("position", "name", "is_active", "is_fallback", "match", "queue", "split_percent")
    list_display_links = ("name",)
    list_editable = ("position", "is_active")
    list_filter = ("is_active", "is_fallback")
    list_select_related = ("queue",)
    search_fields = ("name",)
    inlines = [RuleActionInline]
    actions = ["delete_rules"]

    def has_delete_permission(self, request: HttpRequest, obj: RoutingRule | None = None) -> bool:
        return super().has_delete_permission(request, obj) and not (obj and obj.is_fallback)

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Delete selected rules (never the fallback)")
    def delete_rules(self, request: HttpRequest, queryset: QuerySet[RoutingRule]) -> None:
        for rule in queryset:
            try:
                routing_rule_delete(rule_id=rule.pk)
            except ApplicationError as exc:
                self.message_user(request, exc.message, level=messages.ERROR)


class NotificationStateFilter(admin.SimpleListFilter):
    """Owner notifications that failed (routing.services.reps records them on the assignment)."""

    title = "owner notification"
    parameter_name = "notification"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            ("failed", "Failed (any attempt)"),
            ("retrying", "Failed, retry scheduled"),
            ("given_up", "Failed, given up"),
            ("sent", "Sent"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Assignment]) -> QuerySet[Assignment]:
        unsent_failed = queryset.filter(notified_at__isnull=True, notify_attempts__gt=0)
        match self.value():
            case "failed":
                return unsent_failed
            case "retrying":
                return unsent_failed.filter(notify_retry_at__isnull=False)
            case "given_up":
                return unsent_failed.filter(notify_retry_at__isnull=True)
            case "sent":
                return queryset.filter(notified_at__isnull=False)
        return queryset


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("created_at", "lead", "rep", "queue", "method", "arm", "rule_name", "reason", "notification")
    list_filter = (NotificationStateFilter, "method", "arm")
    list_select_related = ("lead", "rep__user", "queue")
    search_fields = ("lead__email_normalized", "rule_name", "reason")
    raw_id_fields = ("lead", "rep", "rule", "actor")
    date_hierarchy = "created_at"

    def has_change_permission(self, request: HttpRequest, obj: Assignment | None = None) -> bool:
        return False  # the audit trail of routing decisions

    @admin.display(description="Owner notification", ordering="notified_at")
    def notification(self, assignment: Assignment) -> str:
        if assignment.notified_at:
            return "sent" + (f" ({assignment.notify_error})" if assignment.notify_error else "")
        if not assignment.notify_attempts:
            return "—"
        retry = (
            f"retry at {timezone.localtime(assignment.notify_retry_at):%Y-%m-%d %H:%M}"
            if assignment.notify_retry_at
            else "given up"
        )
        return f"failed {assignment.notify_attempts} time(s), {retry}: {assignment.notify_error[:160]}"


@admin.register(QueueEntry)
class QueueEntryAdmin(admin.ModelAdmin):
    list_display = ("lead", "queue", "enqueued_at", "due_at", "claimed_at", "claimed_by")
    list_filter = ("queue", ("claimed_at", admin.EmptyFieldListFilter))
    list_select_related = ("lead", "queue", "claimed_by__user")
    raw_id_fields = ("lead", "claimed_by")


# --- response SLAs (docs/sla.md) ---------------------------------------------------------------


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "position",
        "is_active",
        "is_default",
        "first_touch_seconds",
        "business_hours",
        "warn_percent",
        "escalation",
        "escalate_after_seconds",
        "rule",
    ]
    list_editable = ["position", "is_active"]
    list_filter = ["is_active", "business_hours", "escalation"]
    search_fields = ["name"]
    autocomplete_fields = ["rule"]
    ordering = ["position", "id"]


@admin.register(ResponseClock)
class ResponseClockAdmin(admin.ModelAdmin):
    """Read-only: clocks are started, stopped and escalated by the services and the sweep."""

    list_display = ["lead", "rep", "status", "started_at", "due_at", "first_touch_at", "breached_at", "escalated_at"]
    list_filter = ["status", "escalation", "team"]
    list_select_related = ["lead", "rep__user"]
    raw_id_fields = ["lead", "rep", "assignment"]
    date_hierarchy = "started_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(SlaAlert)
class SlaAlertAdmin(admin.ModelAdmin):
    list_display = ["clock", "kind", "recipient", "created_at", "email_sent_at"]
    list_filter = ["kind"]
    list_select_related = ["clock__lead", "recipient"]
    raw_id_fields = ["clock", "recipient", "notification"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
