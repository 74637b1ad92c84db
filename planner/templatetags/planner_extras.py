"""Small template helpers."""

from django import template

register = template.Library()


@register.filter
def get_item(mapping, key):
    """`values|get_item:name` — a dict lookup by a variable key."""
    return mapping.get(key, "") if hasattr(mapping, "get") else ""
