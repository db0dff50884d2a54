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


@register.simple_tag(takes_context=True)
def include_extension(context, shown, **extra):
    """`{% include_extension panel %}` (`{% include_extension row lead=lead %}`): another app's
    template (leads.views.Shown) with the page's context plus its own, as `{% include %}` would
    render it with those variables."""
    template = context.template.engine.get_template(shown.template)
    with context.push(**shown.context, **extra):
        return template.render(context)
