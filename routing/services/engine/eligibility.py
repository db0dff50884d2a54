"""Who may take a lead now: working hours and days on the rep's own calendar, out of office,
availability, capacity, daily cap and skills; territory and skill fit; the account owner."""

from datetime import date, datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Q

from leads.models import Account, Lead
from routing.models import RepProfile, Territory
from routing.services.engine.conditions import as_list, value_norm


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def rep_local_today(*, rep: RepProfile, now: datetime) -> date:
    return now.astimezone(_zone(rep.timezone)).date()


def _within_hours(*, start: time, end: time, at: time) -> bool:
    if start == end:
        return True
    if start < end:
        return start <= at < end
    return at >= start or at < end  # a shift over midnight


def rep_ineligibility(*, rep: RepProfile, now: datetime, required_skills: dict | None = None) -> str:
    """Why this rep cannot take a pushed lead right now ("" when they can)."""
    if not rep.is_active:
        return "inactive"
    if not rep.is_available:
        return "switched to unavailable"
    local = now.astimezone(_zone(rep.timezone))
    today = local.date()
    if rep.out_of_office_from and rep.out_of_office_from <= today <= (rep.out_of_office_until or date.max):
        return "out of office"
    if local.weekday() not in (rep.work_days or []) or not _within_hours(
        start=rep.work_start, end=rep.work_end, at=local.time()
    ):
        return f"outside working hours ({rep.work_start:%H:%M}-{rep.work_end:%H:%M} {rep.timezone})"
    if rep.open_leads >= rep.capacity:
        return f"at capacity ({rep.open_leads}/{rep.capacity})"
    if rep.assigned_on == today and rep.assigned_today >= rep.daily_cap:
        return f"daily cap reached ({rep.daily_cap})"
    for kind, wanted in (required_skills or {}).items():
        held = {value_norm(s) for s in getattr(rep, kind, None) or []}
        missing = [s for s in as_list(wanted) if value_norm(s) not in held]
        if missing:
            return f"lacks {kind}: {', '.join(map(str, missing))}"
    return ""


def territory_matches(*, territory: Territory, lead: Lead) -> bool:
    checks = (
        (territory.countries, lead.country),
        (territory.regions, lead.region),
        (territory.industries, lead.industry),
        (territory.company_sizes, lead.company_size),
    )
    for allowed, value in checks:
        if allowed and value_norm(value) not in {value_norm(a) for a in allowed}:
            return False
    if territory.postal_prefixes:
        postal = (lead.postal_code or "").replace(" ", "").upper()
        if not any(postal.startswith(str(p).replace(" ", "").upper()) for p in territory.postal_prefixes):
            return False
    return bool(
        territory.countries
        or territory.regions
        or territory.industries
        or territory.company_sizes
        or territory.postal_prefixes
    )


def territory_fit(*, reps: list[RepProfile], lead: Lead) -> dict[int, str]:
    """rep pk -> name of the territory that matches the lead (reps without one are absent)."""
    through = RepProfile.territories.through.objects.filter(repprofile_id__in=[r.pk for r in reps])
    fit: dict[int, str] = {}
    for row in through.select_related("territory"):
        if row.repprofile_id not in fit and territory_matches(territory=row.territory, lead=lead):
            fit[row.repprofile_id] = row.territory.name
    return fit


def lead_skill_wants(lead: Lead) -> dict[str, str]:
    custom = lead.custom_fields or {}
    wants = {
        "languages": custom.get("language") or custom.get("languages"),
        "products": custom.get("product") or custom.get("products"),
        "industries": lead.industry,
        "segments": lead.company_size,
    }
    return {kind: value for kind, value in wants.items() if value}


def skill_score(*, rep: RepProfile, wants: dict[str, Any]) -> int:
    score = 0
    for kind, wanted in wants.items():
        held = {value_norm(s) for s in getattr(rep, kind) or []}
        score += sum(1 for w in as_list(wanted) if value_norm(w) in held)
    return score


def account_owner_user_id(*, lead: Lead) -> tuple[int | None, str]:
    """The owner the lead should stick to: its account's owner (by account or company domain), else
    the owner of an earlier lead of the same person."""
    account = None
    if lead.account_id:
        account = Account.objects.filter(pk=lead.account_id).values("owner_id", "domain").first()
    elif lead.company_domain:
        account = Account.objects.filter(domain=lead.company_domain.lower()).values("owner_id", "domain").first()
    if account and account["owner_id"]:
        return account["owner_id"], f"owner of account {account['domain']}"
    person = Q()
    if lead.email_normalized:
        person |= Q(email_normalized=lead.email_normalized)
    if lead.phone_e164:
        person |= Q(phone_e164=lead.phone_e164)
    if person:
        earlier = (
            Lead.objects.filter(person, owner__isnull=False)
            .exclude(pk=lead.pk)
            .order_by("-created_at")
            .values("owner_id")
            .first()
        )
        if earlier:
            return earlier["owner_id"], "owner of an earlier lead of the same person"
    return None, "no account owner and no earlier lead of this person"
