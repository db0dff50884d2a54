import threading

from rest_framework import serializers

_fields_by_thread = threading.local()


class ReusedFieldsMixin:
    """DRF deep-copies every declared field each time a serializer is built, which is a fifth of
    an intake request's CPU. These serializers' fields hold no per-request state (no querysets,
    no instance-dependent validators), so each thread reuses one copy, re-bound to the new parent."""

    def get_fields(self) -> dict[str, serializers.Field]:
        cache: dict = getattr(_fields_by_thread, "cache", None) or {}
        _fields_by_thread.cache = cache
        fields = cache.get(type(self))
        if fields is None:
            fields = cache[type(self)] = super().get_fields()
        for field in fields.values():
            # bind() fills `source` from the field name and refuses to be told it twice.
            field.source = field._kwargs.get("source")
        return dict(fields)
