"""Admin for users (their roles visible and filterable on the list) and notifications.
BenchReferenceRow is benchmark scaffolding and deliberately not in admin."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from core.models import Notification

User = get_user_model()

admin.site.site_header = "LeadOps admin"
admin.site.site_title = "LeadOps admin"
admin.site.index_title = "Everything, editable"


admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "first_name", "last_name", "email", "roles", "is_staff", "is_active", "last_login")
    list_filter = ("groups", "is_staff", "is_superuser", "is_active")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="Roles")
    def roles(self, user) -> str:
        return ", ".join(sorted(group.name for group in user.groups.all()))


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "recipient", "title", "read_at")
    list_filter = (("read_at", admin.EmptyFieldListFilter),)
    list_select_related = ("recipient",)
    search_fields = ("title", "recipient__username")
    date_hierarchy = "created_at"
    raw_id_fields = ("recipient",)
    readonly_fields = ("created_at",)
