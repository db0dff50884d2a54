from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from routing.models import RepProfile, Team


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "manager", "timezone", "rep_count")
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
    )
    list_filter = ("team", "is_active", "is_available")
    list_select_related = ("user", "team")
    search_fields = ("user__username", "user__first_name", "user__last_name", "user__email")
    autocomplete_fields = ("user", "team")
    filter_horizontal = ("territories",)
    # Router bookkeeping, kept by the routing services with conditional updates: not for hand edits.
    readonly_fields = (
        "open_leads",
        "routed_total",
        "assigned_today",
        "assigned_on",
        "last_assigned_at",
        "created_at",
        "updated_at",
    )

    @admin.display(description="Name", ordering="user__last_name")
    def full_name(self, rep: RepProfile) -> str:
        return rep.user.get_full_name()
