"""Validation of intake submissions: the same rules for the API, form posts and replays."""

import re
from functools import cached_property
from typing import Any

import phonenumbers
from django.core.validators import EmailValidator, MaxLengthValidator, ProhibitNullCharactersValidator
from django.http import QueryDict
from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from core.serializers import ReusedFieldsMixin
from leads.intake_data import LeadData
from leads.models import Channel, CompanySize, Stage
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


class IntakeInputSerializer(ReusedFieldsMixin, serializers.Serializer):
    email = _text(254)
    phone = _text(40)
    first_name = _text(100)
    last_name = _text(100)
    title = _text(150)
    company_name = _text(200)
    company_domain = _text(253)
    industry = _text(120)
    company_size = serializers.ChoiceField(choices=CompanySize.choices, required=False, allow_blank=True)
    country = _text(2, help_text="ISO 3166-1 alpha-2; also the default region for a phone without +code.")
    region = _text(100)
    postal_code = _text(20)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False, allow_blank=True)
    campaign = _text(160)
    utm_source = _text(200)
    utm_medium = _text(200)
    utm_campaign = _text(200)
    utm_term = _text(200)
    utm_content = _text(200)
    referrer = _text(2000)
    landing_page = _text(2000)
    stage = serializers.ChoiceField(choices=Stage.choices, required=False, allow_blank=True)
    message = _text(5000)
    marketing_consent = serializers.BooleanField(required=False, allow_null=True, default=None)
    consent_method = _text(120)
    tags = serializers.ListField(child=serializers.CharField(max_length=60), required=False, max_length=20)
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
            if not isinstance(key, str) or not 0 < len(key) <= 64:
                raise serializers.ValidationError("Custom field names are 1 to 64 characters.")
            if not (item is None or isinstance(item, bool | int | float | str)):
                raise serializers.ValidationError(f"“{key}” must be text, a number, true/false or null.")
            if isinstance(item, str) and len(item) > 1000:
                raise serializers.ValidationError(f"“{key}” is longer than 1000 characters.")
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

    source = _text(120)


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
