"""Enrichment providers. The built-in one derives what it can offline; a real service plugs in
through `DJANGO_ENRICHMENT_PROVIDER` (a dotted path to a class with the same `enrich` method)."""

from dataclasses import dataclass, field
from functools import cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from leads.models import Lead
from leads.normalization import company_domain_from_email, country_from_e164


@dataclass
class EnrichmentResult:
    """Values found for a lead; only blank fields of the lead are filled with them."""

    company_domain: str = ""
    company_name: str = ""
    country: str = ""
    industry: str = ""
    company_size: str = ""
    extra: dict = field(default_factory=dict)


class EnrichmentProvider(Protocol):
    name: str

    def enrich(self, lead: Lead) -> EnrichmentResult: ...


class BuiltinEnrichmentProvider:
    name = "builtin"

    def enrich(self, lead: Lead) -> EnrichmentResult:
        return EnrichmentResult(
            company_domain=company_domain_from_email(lead.email_normalized),
            country=country_from_e164(lead.phone_e164),
        )


@cache
def enrichment_provider() -> EnrichmentProvider:
    return import_string(settings.LEADOPS_ENRICHMENT_PROVIDER)()
