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
        cached = cache.get(type(self))
        if cached is None:
            fields = super().get_fields()
            # `source` as each field had it before any bind (SerializerMethodField sets "*" itself).
            cached = cache[type(self)] = (fields, {name: field.source for name, field in fields.items()})
        fields, unbound_sources = cached
        for name, field in fields.items():
            # bind() fills `source` from the field name and refuses to be told it twice.
            field.source = unbound_sources[name]
        return dict(fields)
