"""Merge: duplicates folded into one lead. Their history moves over, blanks are filled, they are
deleted; other apps tidy their own rows through the MERGED hook (routing recounts the owners)."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from core.exceptions import ApplicationError, NotFound
from leads import hooks
from leads.locks import leads_for_delete, leads_for_update
from leads.models import Activity, ActivityKind, IntakeSubmission, Lead, StageChange
from leads.services.intake import FILLABLE_FIELDS


@transaction.atomic
def lead_merge(*, survivor_id: int, duplicate_ids: list[int], actor: AbstractBaseUser | None) -> Lead:
    """Fold duplicates into one lead: their history moves over, blanks are filled, they are deleted."""
    duplicate_ids = sorted(set(duplicate_ids) - {survivor_id})
    if not duplicate_ids:
        raise ApplicationError("Choose at least one other lead to merge.")
    # The survivor first, then the duplicates in ascending pk (each set in pk order).
    all_ids = sorted([survivor_id, *duplicate_ids])
    locked_for_update = {lead.pk: lead for lead in leads_for_update(lead_ids=[survivor_id])}
    duplicates = list(leads_for_delete(lead_ids=duplicate_ids).prefetch_related("tags"))
    if survivor_id not in locked_for_update or len(duplicates) != len(duplicate_ids):
        raise NotFound(f"Some of the leads {all_ids} no longer exist.")
    survivor = locked_for_update[survivor_id]

    Activity.objects.filter(lead_id__in=duplicate_ids).update(lead=survivor)
    StageChange.objects.filter(lead_id__in=duplicate_ids).update(lead=survivor)
    IntakeSubmission.objects.filter(lead_id__in=duplicate_ids).update(lead=survivor)
    tag_ids = {tag.pk for duplicate in duplicates for tag in duplicate.tags.all()}

    contact_fallback: dict[str, str] = {}
    for duplicate in duplicates:
        for name in (*FILLABLE_FIELDS, "owner_id", "account_id", "campaign_id"):
            if not getattr(survivor, name) and getattr(duplicate, name):
                setattr(survivor, name, getattr(duplicate, name))
        survivor.custom_fields = {**duplicate.custom_fields, **survivor.custom_fields}
        if not survivor.email_normalized and duplicate.email_normalized and "email" not in contact_fallback:
            contact_fallback.update(email=duplicate.email, email_normalized=duplicate.email_normalized)
        if not survivor.phone_e164 and duplicate.phone_e164 and "phone" not in contact_fallback:
            contact_fallback.update(phone=duplicate.phone, phone_e164=duplicate.phone_e164)
        if duplicate.first_contacted_at and (
            not survivor.first_contacted_at or duplicate.first_contacted_at < survivor.first_contacted_at
        ):
            survivor.first_contacted_at = duplicate.first_contacted_at
        if duplicate.created_at < survivor.created_at:
            # The earliest capture is the true first touch.
            survivor.created_at = duplicate.created_at
            survivor.first_touch, survivor.source_id = duplicate.first_touch, duplicate.source_id
            survivor.channel = duplicate.channel
    summary = [{"id": d.pk, "email": d.email, "phone": d.phone_e164, "name": d.full_name} for d in duplicates]
    Lead.objects.filter(pk__in=duplicate_ids).delete()
    for name, value in contact_fallback.items():
        setattr(survivor, name, value)
    survivor.save()
    if tag_ids:
        survivor.tags.add(*tag_ids)
    hooks.hooks_run(hooks.MERGED, survivor=survivor, duplicates=duplicates)  # after the survivor's save
    Activity.objects.create(
        lead=survivor,
        kind=ActivityKind.MERGED,
        occurred_at=timezone.now(),
        actor=actor,
        payload={"merged": summary},
    )
    return survivor
