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


class PlainRepresentationMixin:
    """A faster `to_representation` for output serializers of plain attributes: each field's value
    is read along its `source` and handed to the field's own `to_representation`, or is None when
    the value (or an object on the way, e.g. a lead without a campaign) is None, which is what
    DRF's generic path gives for such fields. The plan (name, source, field) is kept per thread
    and class, so the fields are not rebuilt and re-bound for every instance. Only for fields
    that do not read the serializer's context or instance (its method fields are stateless) and
    have no defaults other than None, SkipField or `PKOnlyObject` (no related-field classes)."""

    def to_representation(self, instance) -> dict:
        plans: dict = getattr(_fields_by_thread, "plans", None) or {}
        _fields_by_thread.plans = plans
        plan = plans.get(type(self))
        if plan is None:
            plan = plans[type(self)] = [
                (field.field_name, tuple(field.source_attrs), field.to_representation)
                for field in self._readable_fields
            ]
        representation = {}
        for name, attrs, to_representation in plan:
            value = instance
            for attr in attrs:
                value = getattr(value, attr)
                if value is None:
                    break
            representation[name] = None if value is None else to_representation(value)
        return representation
