"""Reads of the core app: notifications (the top bar's unread badge and the rep's page list them)."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from core.models import Notification


def notification_unread_count(*, user: AbstractBaseUser) -> int:
    if not user.is_authenticated:
        return 0
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def notification_list_for_user(*, user: AbstractBaseUser, limit: int = 30) -> QuerySet[Notification]:
    return Notification.objects.filter(recipient=user).order_by("-created_at", "-id")[:limit]
