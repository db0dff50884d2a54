from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from core.auth_limits import api_key_counters, auth_failure_record, auth_failures_retry_after
from leads.models import ApiKey
from leads.selectors import api_key_get_active


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Api-Key <key>` for external forms and systems. The key stands for its source."""

    keyword = "Api-Key"

    def authenticate(self, request: Request) -> tuple[AnonymousUser, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, raw_key = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        # Past DJANGO_API_KEY_FAILURES_PER_IP wrong keys from this address: 429 before any lookup.
        counters = api_key_counters(request)
        retry_after = auth_failures_retry_after(counters)
        if retry_after is not None:
            raise exceptions.Throttled(wait=retry_after, detail="Too many invalid API keys from this address.")
        api_key = api_key_get_active(raw_key=raw_key) if raw_key.strip() else None
        if api_key is None:
            auth_failure_record(counters)
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return AnonymousUser(), api_key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`; create keys in admin or with `manage.py create_api_key`.",
        }
