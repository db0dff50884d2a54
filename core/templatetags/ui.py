"""Display helpers of the base layout."""

from django import template

register = template.Library()


@register.filter
def initials(user) -> str:
    if user is None:
        return ""
    words = (user.get_full_name() or user.get_username()).split()
    return "".join(word[0] for word in words[:2]).upper()


@register.filter
def person(user) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()
