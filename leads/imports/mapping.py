"""Column mapping: which lead field (or custom field, outcome, date) each CSV column fills; the
suggestion for a new upload, the checks before a run, and the mapping compiled to positions."""

import re
from dataclasses import dataclass

from django.utils.text import slugify

from leads.imports.errors import InvalidImport
from leads.intake_schema import MAX_CUSTOM_FIELDS, IntakeInputSerializer
from leads.models import Source

TARGET_IGNORE = ""
TARGET_OUTCOME = "outcome"
TARGET_CREATED_AT = "created_at"
CUSTOM_PREFIX = "custom:"

# Lead fields a column can fill: the intake serializer's (custom fields have their own target).
LEAD_FIELD_TARGETS: list[tuple[str, str]] = [
    (name, name.replace("_", " ").capitalize()) for name in IntakeInputSerializer().fields if name != "custom_fields"
]
_LEAD_FIELD_NAMES = frozenset(name for name, _ in LEAD_FIELD_TARGETS)

_HEADER_ALIASES = {
    "e_mail": "email",
    "email_address": "email",
    "mail": "email",
    "mobile": "phone",
    "mobile_phone": "phone",
    "telephone": "phone",
    "tel": "phone",
    "phone_number": "phone",
    "firstname": "first_name",
    "given_name": "first_name",
    "lastname": "last_name",
    "surname": "last_name",
    "family_name": "last_name",
    "company": "company_name",
    "organisation": "company_name",
    "organization": "company_name",
    "job_title": "title",
    "website": "company_domain",
    "domain": "company_domain",
    "zip": "postal_code",
    "zip_code": "postal_code",
    "postcode": "postal_code",
    "state": "region",
    "consent": "marketing_consent",
    "y": TARGET_OUTCOME,
    "converted": TARGET_OUTCOME,
    "result": TARGET_OUTCOME,
    "won": TARGET_OUTCOME,
    "created": TARGET_CREATED_AT,
    "date": TARGET_CREATED_AT,
    "created_on": TARGET_CREATED_AT,
    "signup_date": TARGET_CREATED_AT,
}


def _header_key(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.lower()).strip("_")


def custom_target(header: str) -> str:
    return CUSTOM_PREFIX + (slugify(header).replace("-", "_")[:64] or "field")


def import_mapping_suggest(*, headers: list[str], source: Source | None) -> dict[str, str]:
    """A starting mapping: what this source's last import used, else a lead field of the same name
    (or a usual alias), else a custom field named after the column."""
    remembered = source.import_mapping if source else {}
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for header in headers:
        if header in remembered:
            target = remembered[header]
        else:
            key = _header_key(header)
            target = key if key in _LEAD_FIELD_NAMES else _HEADER_ALIASES.get(key, "")
            if target in taken:
                target = ""
            target = target or custom_target(header)
        mapping[header] = target
        if target and not target.startswith(CUSTOM_PREFIX):
            taken.add(target)
    return mapping


def import_mapping_validate(*, headers: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """The mapping restricted to the file's columns; raises InvalidImport for an unusable one."""
    clean: dict[str, str] = {}
    used: dict[str, str] = {}
    custom_count = 0
    for header in headers:
        target = (mapping.get(header) or "").strip()
        if not target:
            clean[header] = TARGET_IGNORE
            continue
        if target.startswith(CUSTOM_PREFIX):
            name = target.removeprefix(CUSTOM_PREFIX)
            if not 0 < len(name) <= 64:
                raise InvalidImport(f"Custom field names are 1 to 64 characters (column “{header}”).")
            custom_count += 1
        elif target not in _LEAD_FIELD_NAMES and target not in (TARGET_OUTCOME, TARGET_CREATED_AT):
            raise InvalidImport(f"Unknown target “{target}” for column “{header}”.")
        key = target
        if key in used:
            raise InvalidImport(f"Columns “{used[key]}” and “{header}” are both mapped to {target}.")
        used[key] = header
        clean[header] = target
    if custom_count > MAX_CUSTOM_FIELDS:
        raise InvalidImport(f"At most {MAX_CUSTOM_FIELDS} columns can become custom fields.")
    if "email" not in used and "phone" not in used:
        raise InvalidImport("Map a column to email or phone: leads are identified by one of them.")
    return clean


@dataclass(frozen=True)
class ColumnPlan:
    """A mapping compiled to column positions."""

    fields: tuple[tuple[int, str], ...]
    custom: tuple[tuple[int, str], ...]
    outcome: int | None
    created_at: int | None

    @classmethod
    def build(cls, *, headers: list[str], mapping: dict[str, str]) -> "ColumnPlan":
        fields, custom, outcome, created_at = [], [], None, None
        for index, header in enumerate(headers):
            target = mapping.get(header, "")
            if target == TARGET_OUTCOME:
                outcome = index
            elif target == TARGET_CREATED_AT:
                created_at = index
            elif target.startswith(CUSTOM_PREFIX):
                custom.append((index, target.removeprefix(CUSTOM_PREFIX)))
            elif target:
                fields.append((index, target))
        return cls(tuple(fields), tuple(custom), outcome, created_at)
