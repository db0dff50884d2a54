"""Edits from the lead page and bulk actions on the lead list."""

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from core.exceptions import ApplicationError, NotFound
from leads import hooks
from leads.locks import leads_for_update
from leads.models import Lead, Tag
from leads.normalization import PhoneError, email_normalize, phone_to_e164
from leads.selectors import lead_list_for_user
from leads.services.intake import InvalidLeadData
from leads.services.lifecycle import lead_stage_change

LEAD_EDITABLE_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "title",
    "company_name",
    "company_domain",
    "industry",
    "company_size",
    "country",
    "region",
    "postal_code",
)


@transaction.atomic
def lead_update(
    *, lead_id: int, actor: AbstractBaseUser | None, add_tags: list[str] | None = None, **fields: Any
) -> Lead:
    """Edit a lead's identity fields (LEAD_EDITABLE_FIELDS) and/or add tags. Email and phone are
    normalised as at intake; one that already belongs to another lead is refused (merge instead)."""
    unknown = set(fields) - set(LEAD_EDITABLE_FIELDS)
    if unknown:
        raise InvalidLeadData(f"These fields cannot be edited: {', '.join(sorted(unknown))}.")
    lead = leads_for_update(lead_ids=[lead_id]).first()
    if lead is None:
        raise NotFound("No lead with this id.")
    changed = [name for name, value in fields.items() if getattr(lead, name) != value]
    for name in changed:
        setattr(lead, name, fields[name])
    if "email" in changed:
        lead.email = lead.email.strip()
        lead.email_normalized = email_normalize(lead.email) if lead.email else ""
        changed.append("email_normalized")
    if "phone" in changed:
        try:
            lead.phone_e164 = phone_to_e164(lead.phone, region=lead.country) if lead.phone.strip() else ""
        except PhoneError as exc:
            raise InvalidLeadData(str(exc), field="phone") from exc
        changed.append("phone_e164")
    if changed:
        try:
            with transaction.atomic():
                lead.save(update_fields=[*changed, "updated_at"])
        except IntegrityError as exc:
            raise InvalidLeadData("Another lead already has this email or phone: merge the two instead.") from exc
    names = sorted({name.strip()[:60] for name in add_tags or [] if name.strip()})
    if names:
        tags = [Tag.objects.get_or_create(name=name)[0] for name in names]
        lead.tags.add(*tags)
    return lead


@dataclass
class BulkResult:
    done: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # lead id -> why it was not changed


def leads_bulk_apply(
    *,
    user: AbstractBaseUser,
    action: str,
    lead_ids: list[int],
    to_stage: str = "",
    tag: str = "",
    reason: str = "",
    params: dict[str, str] | None = None,
) -> BulkResult:
    """One bulk action on those of `lead_ids` the user may see, lead by lead: each its own short
    transaction, so one refused lead does not undo the others. "stage" and "tag" are the leads
    app's; other apps add theirs (routing's "reassign") through leads.hooks.lead_bulk_action_register."""
    visible = lead_list_for_user(user=user).filter(pk__in=lead_ids).order_by("pk").values_list("pk", flat=True)
    extension = None
    prepared = None
    if action not in ("stage", "tag"):
        extension = hooks.lead_bulk_action_get(action)
        if extension is None:
            raise ApplicationError("Unknown bulk action.", field="action")
        prepared = extension.prepare(user, params or {})
    result = BulkResult()
    for lead_id in list(visible):
        try:
            if action == "stage":
                lead_stage_change(lead_id=lead_id, to_stage=to_stage, actor=user, reason=reason or "bulk")
            elif action == "tag":
                lead_update(lead_id=lead_id, actor=user, add_tags=[tag])
            else:
                extension.apply(user, lead_id, prepared)
            result.done += 1
        except ApplicationError as exc:
            result.failed[lead_id] = exc.message
    return result


def lead_owner_set(*, lead: Lead, owner_id: int | None, at: Any) -> None:
    """The one writer of a lead's owner (routing's assignments call it; the caller holds the lead)."""
    Lead.objects.filter(pk=lead.pk).update(owner_id=owner_id, assigned_at=at if owner_id else None)
    lead.owner_id = owner_id
    lead.assigned_at = at if owner_id else None
