from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

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
        api_key = api_key_get_active(raw_key=raw_key) if raw_key.strip() else None
        if api_key is None:
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
