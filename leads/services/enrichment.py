"""Enrichment: blank firmographics filled from the provider, the account matched by domain.
Requested after a new lead's capture commits; a beat job catches up on anything missed."""

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from core.enqueue import enqueue_batched_on_commit
from leads.enrichment import enrichment_provider
from leads.locks import leads_for_update
from leads.models import Account, Activity, ActivityKind, Lead
from leads.selectors import lead_ids_unenriched

logger = logging.getLogger(__name__)


def lead_enrich(*, lead_id: int) -> Lead | None:
    """Fill blank firmographics from the enrichment provider and match the account by domain.
    Idempotent: a lead already enriched is left alone, so a redelivered task is a no-op."""
    lead = Lead.objects.filter(pk=lead_id, enriched_at__isnull=True).first()
    if lead is None:
        return None
    provider = enrichment_provider()
    result = provider.enrich(lead)  # may be an HTTP call: done before taking any lock
    with transaction.atomic():
        lead = leads_for_update(lead_ids=[lead_id]).filter(enriched_at__isnull=True).first()
        if lead is None:
            return None
        found: dict[str, str] = {}
        for name in ("company_domain", "company_name", "country", "industry", "company_size"):
            value = getattr(result, name)
            if value and not getattr(lead, name):
                setattr(lead, name, value)
                found[name] = value
        if lead.company_domain and lead.account_id is None:
            lead.account = account_match(domain=lead.company_domain, lead=lead)
            found["account"] = lead.account.domain
        lead.enriched_at = timezone.now()
        lead.save(update_fields=[*[n for n in found if n != "account"], "account", "enriched_at", "updated_at"])
        Activity.objects.create(
            lead=lead,
            kind=ActivityKind.ENRICHED,
            occurred_at=lead.enriched_at,
            payload={"provider": provider.name, "found": found, **result.extra},
        )
    return lead


def account_match(*, domain: str, lead: Lead | None = None) -> Account:
    defaults = {}
    if lead is not None:
        defaults = {"name": lead.company_name, "industry": lead.industry, "country": lead.country}
    account, _ = Account.objects.get_or_create(domain=domain.lower(), defaults=defaults)
    return account


_ENRICHMENT_RUN_LOCK = "leadops:enrichment-run"
_ENRICHMENT_RUN_LEASE_SECONDS = 300  # longer than a run's time budget; frees a dead worker's lock
ENRICHMENT_RUN_SECONDS = 20.0


def lead_enrichment_request() -> None:
    """Ask, after commit, for an enrichment run: at most one per LEADOPS_ENRICHMENT_BATCH_SECONDS
    per process (a run per lead cost a fifth of an intake's CPU; a run also spares the provider)."""
    from leads.tasks import lead_enrichment_run_task

    enqueue_batched_on_commit(lead_enrichment_run_task, window_seconds=settings.LEADOPS_ENRICHMENT_BATCH_SECONDS)


@dataclass
class EnrichmentRun:
    handled: int = 0
    failed: int = 0
    more: bool = False  # leads remain: the caller should start another run
    skipped: bool = False  # another run was in progress (it picks up these leads)


def lead_enrichment_run(*, batch_size: int = 200, time_budget_seconds: float = ENRICHMENT_RUN_SECONDS) -> EnrichmentRun:
    """Enrich every lead not enriched yet, oldest first, one run at a time across workers.

    A run that finds another in progress leaves its leads to it: the running one looks once more
    after releasing its lock. A lead whose provider call fails is logged and left for the next
    run; the keyset walk keeps it from stalling the leads behind it."""
    run = EnrichmentRun()
    token = secrets.token_hex(8)
    if cache.add(_ENRICHMENT_RUN_LOCK, token, timeout=_ENRICHMENT_RUN_LEASE_SECONDS) is False:
        run.skipped = True
        return run
    deadline = time.monotonic() + time_budget_seconds
    after: tuple[datetime, int] | None = None
    try:
        while time.monotonic() < deadline:
            batch = lead_ids_unenriched(after=after, limit=batch_size)
            for created_at, lead_id in batch:
                try:
                    lead_enrich(lead_id=lead_id)
                    run.handled += 1
                except Exception:  # a provider outage must not stall every lead behind this one
                    logger.warning("Enrichment of lead %s failed; the next run retries it", lead_id, exc_info=True)
                    run.failed += 1
                after = (created_at, lead_id)
            if len(batch) < batch_size:
                break
        else:
            run.more = True
    finally:
        if cache.get(_ENRICHMENT_RUN_LOCK) == token:
            cache.delete(_ENRICHMENT_RUN_LOCK)
    if not run.more and not run.failed:  # (with failures, beat's next run retries them)
        # From the start: a lead committed late may sort before where the walk ended.
        run.more = bool(lead_ids_unenriched(limit=1))
    return run
