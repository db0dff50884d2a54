"""Validation of intake submissions: the same rules for the API, form posts and replays."""

import re
from functools import cached_property
from typing import Any

import phonenumbers
from django.core.validators import EmailValidator, MaxLengthValidator, ProhibitNullCharactersValidator
from django.http import QueryDict
from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from core.json_safety import json_storable_problem
from core.serializers import ReusedFieldsMixin
from leads.intake_data import LeadData
from leads.models import Campaign, Channel, CompanySize, Lead, Source, Stage, Tag
from leads.normalization import PhoneError, phone_to_e164

_COUNTRIES = frozenset(phonenumbers.SUPPORTED_REGIONS)
_email_validator = EmailValidator(message="Enter a valid email address.")
MAX_CUSTOM_FIELDS = 50


# What DRF's default CharField validators refuse besides length: NUL and lone surrogates.
_REFUSED_CHARACTERS = re.compile("[\x00\ud800-\udfff]")
_DEFAULT_TEXT_VALIDATORS = (MaxLengthValidator, ProhibitNullCharactersValidator, ProhibitSurrogateCharactersValidator)


class _Text(serializers.CharField):
    """DRF's CharField, its default validators checked in one pass when the value passes them all.

    DRF's surrogate check is a Python loop over every character, ~5% of an intake's CPU for the
    28 fields; a value it would refuse still goes through DRF's validators, so the errors are DRF's."""

    @cached_property
    def _default_validators_only(self) -> bool:
        return all(type(validator) in _DEFAULT_TEXT_VALIDATORS for validator in self.validators)

    def run_validators(self, value):
        if (
            type(value) is str
            and len(value) <= self.max_length
            and not _REFUSED_CHARACTERS.search(value)
            and self._default_validators_only
        ):
            return
        super().run_validators(value)


def _text(max_length: int, **kwargs) -> serializers.CharField:
    return _Text(max_length=max_length, required=False, allow_blank=True, **kwargs)


def _column(model, name: str) -> int:
    """The length of the column a field is stored in: validation refuses what would not fit."""
    return model._meta.get_field(name).max_length


def _lead_text(name: str) -> serializers.CharField:
    return _text(_column(Lead, name))


# Text kept only inside the lead's touch JSON (no column of its own).
MAX_UTM_LENGTH = 200
MAX_URL_LENGTH = 2000
MAX_MESSAGE_LENGTH = 5000
MAX_CUSTOM_FIELD_NAME_LENGTH = 64
MAX_CUSTOM_FIELD_TEXT_LENGTH = 1000


class IntakeInputSerializer(ReusedFieldsMixin, serializers.Serializer):
    email = _lead_text("email")
    phone = _lead_text("phone")
    first_name = _lead_text("first_name")
    last_name = _lead_text("last_name")
    title = _lead_text("title")
    company_name = _lead_text("company_name")
    company_domain = _lead_text("company_domain")
    industry = _lead_text("industry")
    company_size = serializers.ChoiceField(choices=CompanySize.choices, required=False, allow_blank=True)
    country = _text(
        _column(Lead, "country"), help_text="ISO 3166-1 alpha-2; also the default region for a phone without +code."
    )
    region = _lead_text("region")
    postal_code = _lead_text("postal_code")
    channel = serializers.ChoiceField(choices=Channel.choices, required=False, allow_blank=True)
    campaign = _text(_column(Campaign, "name"))
    utm_source = _text(MAX_UTM_LENGTH)
    utm_medium = _text(MAX_UTM_LENGTH)
    # Names the campaign, and is the name of one it creates: it must fit both columns.
    utm_campaign = _text(min(_column(Campaign, "utm_campaign"), _column(Campaign, "name")))
    utm_term = _text(MAX_UTM_LENGTH)
    utm_content = _text(MAX_UTM_LENGTH)
    referrer = _text(MAX_URL_LENGTH)
    landing_page = _text(MAX_URL_LENGTH)
    stage = serializers.ChoiceField(choices=Stage.choices, required=False, allow_blank=True)
    message = _text(MAX_MESSAGE_LENGTH)
    marketing_consent = serializers.BooleanField(required=False, allow_null=True, default=None)
    consent_method = _lead_text("consent_method")
    tags = serializers.ListField(
        child=serializers.CharField(max_length=_column(Tag, "name")), required=False, max_length=20
    )
    custom_fields = serializers.DictField(required=False)

    def validate_email(self, value: str) -> str:
        value = value.strip()
        if value:
            _email_validator(value)
        return value

    def validate_country(self, value: str) -> str:
        value = value.strip().upper()
        if value and value not in _COUNTRIES:
            raise serializers.ValidationError("Unknown country code; use ISO 3166-1 alpha-2 (e.g. DE).")
        return value

    def validate_custom_fields(self, value: dict) -> dict:
        if len(value) > MAX_CUSTOM_FIELDS:
            raise serializers.ValidationError(f"At most {MAX_CUSTOM_FIELDS} custom fields.")
        for key, item in value.items():
            if not isinstance(key, str) or not 0 < len(key) <= MAX_CUSTOM_FIELD_NAME_LENGTH:
                raise serializers.ValidationError(
                    f"Custom field names are 1 to {MAX_CUSTOM_FIELD_NAME_LENGTH} characters."
                )
            if not (item is None or isinstance(item, bool | int | float | str)):
                raise serializers.ValidationError(f"“{key}” must be text, a number, true/false or null.")
            if isinstance(item, str) and len(item) > MAX_CUSTOM_FIELD_TEXT_LENGTH:
                raise serializers.ValidationError(f"“{key}” is longer than {MAX_CUSTOM_FIELD_TEXT_LENGTH} characters.")
        # PostgreSQL's jsonb refuses NUL, lone surrogates and non-finite numbers (1e999).
        problem = json_storable_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        phone = attrs.get("phone", "").strip()
        if phone:
            try:
                attrs["phone_e164"] = phone_to_e164(phone, region=attrs.get("country", ""))
            except PhoneError as exc:
                raise serializers.ValidationError({"phone": [str(exc)]}) from exc
        if not attrs.get("email") and not phone:
            raise serializers.ValidationError({"email": ["Provide an email address or a phone number."]})
        return attrs


class InternalIntakeInputSerializer(IntakeInputSerializer):
    """Signed-in users may also name the source (API keys always speak for their own source)."""

    source = _text(_column(Source, "name"))


def intake_payload_from_request_data(data: Any) -> Any:
    """Form posts arrive flat: `tags` may repeat or be comma-separated, `custom.<name>` are custom fields."""
    if not isinstance(data, QueryDict):
        return data
    payload: dict[str, Any] = {}
    custom: dict[str, str] = {}
    for key in data:
        if key.startswith("custom."):
            custom[key.removeprefix("custom.")] = data[key]
        elif key == "tags":
            payload["tags"] = [t.strip() for v in data.getlist("tags") for t in v.split(",") if t.strip()]
        else:
            payload[key] = data[key]
    if custom:
        payload["custom_fields"] = custom
    return payload


def lead_data_from_validated(validated: dict[str, Any]) -> LeadData:
    values = {k: v for k, v in validated.items() if k != "source" and v is not None}
    if "marketing_consent" in validated:
        values["marketing_consent"] = validated["marketing_consent"]
    return LeadData(**values)


def lead_data_from_payload(*, payload: dict[str, Any], is_internal: bool) -> LeadData:
    serializer_class = InternalIntakeInputSerializer if is_internal else IntakeInputSerializer
    serializer = serializer_class(data=payload)
    serializer.is_valid(raise_exception=True)
    return lead_data_from_validated(serializer.validated_data)
