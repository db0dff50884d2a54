"""Sales teams and the reps leads are routed to. Routing rules and assignments build on these."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from core.models import BaseModel


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


class RepProfile(BaseModel):
    """A sales user as the router sees them: where they sit, how much they can take."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rep")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="reps")
    is_active = models.BooleanField(default=True)
    is_available = models.BooleanField(default=True, help_text="The rep's own availability switch.")
    weight = models.PositiveSmallIntegerField(default=1)
    capacity = models.PositiveIntegerField(default=50, help_text="Maximum open leads at once.")
    open_leads = models.PositiveIntegerField(default=0)
    daily_cap = models.PositiveIntegerField(default=25)
    timezone = models.CharField(max_length=64, default="UTC")

    class Meta:
        ordering = ["user__username"]
        constraints = [
            models.CheckConstraint(condition=Q(open_leads__lte=F("capacity")), name="rep_open_within_capacity"),
        ]

    def __str__(self) -> str:
        return self.user.get_full_name() or self.user.get_username()
