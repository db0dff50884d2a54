import json

from django import forms

from leads.models import Channel, CompanySize
from routing.models import RULE_METHODS, MatchMode, Queue, RepProfile, RoutingRule, Team
from routing.selectors import rep_assignable_list_for_user
from routing.services import ActionData

METHOD_CHOICES = [(m.value, m.label) for m in RULE_METHODS]


class JSONTextField(forms.CharField):
    def __init__(self, *, kind: type, **kwargs):
        self.kind = kind
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list | dict):
            return json.dumps(value, indent=1)
        return value

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return self.kind()
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).") from exc
        if not isinstance(parsed, self.kind):
            raise forms.ValidationError(f"Expected a JSON {'list' if self.kind is list else 'object'}.")
        return parsed


def _action_fields(prefix: str, required: bool) -> dict[str, forms.Field]:
    reps = RepProfile.objects.select_related("user")
    return {
        f"{prefix}method": forms.ChoiceField(
            choices=([] if required else [("", "— no B arm —")]) + METHOD_CHOICES, required=required, label="Method"
        ),
        f"{prefix}team": forms.ModelChoiceField(Team.objects.all(), required=False, label="Team"),
        f"{prefix}pool": forms.ModelMultipleChoiceField(reps, required=False, label="Hand-picked pool"),
        f"{prefix}rep": forms.ModelChoiceField(reps, required=False, label="Named rep"),
        f"{prefix}skills": JSONTextField(
            kind=dict, required=False, label="Required skills", help_text='e.g. {"languages": ["de"]}'
        ),
        f"{prefix}queue": forms.ModelChoiceField(Queue.objects.all(), required=False, label="Queue (queue method)"),
    }


class RuleForm(forms.Form):
    name = forms.CharField(max_length=160)
    position = forms.IntegerField(min_value=0, required=False, help_text="Lower runs first; empty: last.")
    is_active = forms.BooleanField(required=False, initial=True)
    match = forms.ChoiceField(choices=MatchMode.choices)
    conditions = JSONTextField(
        kind=list,
        required=False,
        help_text='e.g. [{"field": "country", "op": "in", "value": ["DE", "AT"]}, '
        '{"field": "score", "op": "gt", "value": 50}]'
        " — operators: equals, in, not_in, gt, lt, contains, matches, is_empty.",
    )
    queue = forms.ModelChoiceField(Queue.objects.all(), help_text="Where leads wait when nobody is eligible.")
    split_percent = forms.IntegerField(min_value=0, max_value=100, initial=0, label="A/B: % of leads to arm B")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.update(_action_fields("a_", required=True))
        self.fields.update(_action_fields("b_", required=False))

    @classmethod
    def initial_for(cls, rule: RoutingRule) -> dict:
        initial = {
            "name": rule.name,
            "position": rule.position,
            "is_active": rule.is_active,
            "match": rule.match,
            "conditions": rule.conditions,
            "queue": rule.queue_id,
            "split_percent": rule.split_percent,
        }
        for action in rule.actions.all():
            prefix = f"{action.arm.lower()}_"
            initial.update(
                {
                    f"{prefix}method": action.method,
                    f"{prefix}team": action.team_id,
                    f"{prefix}pool": [rep.pk for rep in action.pool.all()],
                    f"{prefix}rep": action.rep_id,
                    f"{prefix}skills": action.required_skills,
                    f"{prefix}queue": action.queue_id,
                }
            )
        return initial

    def action(self, arm: str) -> ActionData | None:
        prefix = f"{arm.lower()}_"
        method = self.cleaned_data.get(f"{prefix}method")
        if not method:
            return None
        return ActionData(
            method=method,
            team=self.cleaned_data.get(f"{prefix}team"),
            pool=list(self.cleaned_data.get(f"{prefix}pool") or []),
            rep=self.cleaned_data.get(f"{prefix}rep"),
            required_skills=self.cleaned_data.get(f"{prefix}skills") or {},
            queue=self.cleaned_data.get(f"{prefix}queue"),
        )


class DryRunForm(forms.Form):
    lead_id = forms.IntegerField(required=False, help_text="An existing lead, or describe a sample lead below.")
    email = forms.CharField(required=False)
    company_name = forms.CharField(required=False)
    company_domain = forms.CharField(required=False)
    title = forms.CharField(required=False)
    industry = forms.CharField(required=False)
    company_size = forms.ChoiceField(choices=[("", "—"), *CompanySize.choices], required=False)
    country = forms.CharField(max_length=2, required=False)
    region = forms.CharField(required=False)
    postal_code = forms.CharField(required=False)
    channel = forms.ChoiceField(choices=Channel.choices, initial=Channel.WEB_FORM)
    score = forms.IntegerField(required=False, initial=0)
    custom_fields = JSONTextField(kind=dict, required=False, help_text='e.g. {"language": "de", "budget": 20000}')

    def sample_fields(self) -> dict:
        data = {k: v for k, v in self.cleaned_data.items() if k != "lead_id"}
        data["score"] = data.get("score") or 0
        return data


class AvailabilityForm(forms.Form):
    is_available = forms.BooleanField(required=False, label="Available for new leads")
    out_of_office_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    out_of_office_until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    work_start = forms.TimeField(widget=forms.TimeInput(attrs={"type": "time"}))
    work_end = forms.TimeField(widget=forms.TimeInput(attrs={"type": "time"}))
    timezone = forms.CharField(max_length=64)

    def clean_timezone(self):
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        name = self.cleaned_data["timezone"].strip()
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise forms.ValidationError("Unknown time zone (use e.g. Europe/Berlin).") from exc
        return name


class ReassignForm(forms.Form):
    lead_id = forms.IntegerField(label="Lead id")
    to_rep = forms.ModelChoiceField(
        RepProfile.objects.none(), required=False, empty_label="— route through the rules —"
    )
    reason = forms.CharField(max_length=400)

    def __init__(self, *args, to_reps=None, **kwargs):
        super().__init__(*args, **kwargs)
        if to_reps is not None:
            self.fields["to_rep"].queryset = to_reps


class RepLeadsReassignForm(forms.Form):
    from_rep = forms.ModelChoiceField(RepProfile.objects.none(), label="Rep leaving")
    to_rep = forms.ModelChoiceField(
        RepProfile.objects.none(), required=False, empty_label="— route through the rules —"
    )
    reason = forms.CharField(max_length=400)

    def __init__(self, *args, reps=None, to_reps=None, **kwargs):
        super().__init__(*args, **kwargs)
        if reps is not None:
            self.fields["from_rep"].queryset = reps  # a leaving rep may be inactive already
        if to_reps is not None:
            self.fields["to_rep"].queryset = to_reps

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("to_rep") and cleaned.get("to_rep") == cleaned.get("from_rep"):
            raise forms.ValidationError("Choose someone else to take the leads.")
        return cleaned


class LeadReassignForm(forms.Form):
    """The lead page's "Owner" panel: a new owner (or the rules again) and why."""

    to_rep = forms.ModelChoiceField(
        queryset=RepProfile.objects.none(), required=False, empty_label="Route by the rules", label="New owner"
    )
    reason = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"placeholder": "Why?"}))

    def __init__(self, *args, user, **kwargs):
        """Offers the reps `user` may hand leads to."""
        super().__init__(*args, **kwargs)
        self.fields["to_rep"].queryset = rep_assignable_list_for_user(user=user)
