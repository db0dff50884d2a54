"""Small display helpers of the lead pages. Output is escaped by the template engine as usual."""

from django import template

from leads.models import Stage

register = template.Library()

_STAGE_LABELS = dict(Stage.choices)


@register.filter
def stage_label(value: str) -> str:
    return _STAGE_LABELS.get(value, value or "—")


@register.simple_tag(takes_context=True)
def sort_param(context, key: str) -> str:
    """The ?sort= value a column header links to: the same column flips direction."""
    current = context.get("sort", "")
    if current == key:
        return f"-{key}"
    if current == f"-{key}":
        return key
    return f"-{key}" if key in {"created", "score"} else key
