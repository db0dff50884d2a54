"""Forms of the lead pages. They validate input only; the writes are leads.services."""

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from core.roles import Role
from leads.hooks import lead_bulk_actions
from leads.models import ActivityKind, Lead, Stage
from leads.services import ALLOWED_TRANSITIONS, LEAD_EDITABLE_FIELDS

LOGGABLE_KINDS = [ActivityKind.CALL, ActivityKind.EMAIL_SENT, ActivityKind.MEETING, ActivityKind.NOTE]


class ActivityLogForm(forms.Form):
    kind = forms.ChoiceField(choices=[(kind.value, kind.label) for kind in LOGGABLE_KINDS], initial="call")
    note = forms.CharField(
        max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 3, "placeholder": "What happened?"})
    )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("kind") == ActivityKind.NOTE and not data.get("note", "").strip():
            self.add_error("note", "Write the note.")
        return data


class StageChangeForm(forms.Form):
    # Every stage is accepted here; the service decides which moves are allowed and says why not.
    to_stage = forms.ChoiceField(choices=Stage.choices, label="Move to")
    reason = forms.CharField(max_length=500, required=False, widget=forms.TextInput(attrs={"placeholder": "Why?"}))


def stage_choices_for(lead: Lead) -> list[tuple[str, str]]:
    """The stages a lead can move to from where it is (what the stage picker offers)."""
    allowed = ALLOWED_TRANSITIONS[lead.stage]
    return [(value, label) for value, label in Stage.choices if value in allowed]


class LeadEditForm(forms.ModelForm):
    class Meta:
        model = Lead
        fields = list(LEAD_EDITABLE_FIELDS)


class BulkActionForm(forms.Form):
    """The leads app's own actions ("stage", "tag") and those other apps register
    (leads.hooks.LeadBulkAction), whose own fields their `prepare` validates."""

    ACTIONS = [("stage", "Change stage"), ("tag", "Add tag")]

    action = forms.ChoiceField(choices=())
    lead_ids = forms.TypedMultipleChoiceField(coerce=int, choices=(), error_messages={"required": "Select leads."})
    to_stage = forms.ChoiceField(choices=[("", "Stage…"), *Stage.choices], required=False)
    tag = forms.CharField(max_length=60, required=False)
    reason = forms.CharField(max_length=500, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [*self.ACTIONS, *((a.name, a.label) for a in lead_bulk_actions())]
        # Any ids are accepted here; the view intersects them with the leads the user may see.
        self.fields["lead_ids"].valid_value = lambda value: True

    def clean(self) -> dict:
        data = super().clean()
        action = data.get("action")
        if action == "stage" and not data.get("to_stage"):
            self.add_error("to_stage", "Choose a stage.")
        if action == "tag" and not data.get("tag", "").strip():
            self.add_error("tag", "Name the tag.")
        return data


def owner_choices() -> QuerySet:
    """People who can own leads, for the owner filter."""
    return (
        get_user_model()
        .objects.filter(groups__name__in=[Role.SALES_REP.value, Role.SALES_MANAGER.value], is_active=True)
        .distinct()
        .order_by("first_name", "last_name", "username")
    )
