"""Small template helpers."""

from datetime import UTC

from django import template
from django.utils.html import format_html

register = template.Library()


@register.filter
def get_item(mapping, key):
    """`values|get_item:name` — a dict lookup by a variable key."""
    return mapping.get(key, "") if hasattr(mapping, "get") else ""


@register.filter
def when(value):
    """A UTC datetime as `<time>`: readable in UTC without JavaScript; localtime.js shows it in the
    viewer's timezone and keeps the UTC text as its title."""
    if not value:
        return ""
    utc = value.astimezone(UTC)
    return format_html('<time datetime="{}" data-local>{} UTC</time>', utc.isoformat(), utc.strftime("%Y-%m-%d %H:%M"))


@register.filter
def utc_input(value):
    """The value of a datetime-local input, in UTC (localtime.js turns it into the viewer's time)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") if value else ""


@register.filter
def highlight_sql(text: str):
    """SQL as HTML with token classes (Pygments' PostgreSQL lexer); escaping is Pygments' own."""
    from django.utils.safestring import mark_safe
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PostgresLexer

    return mark_safe(highlight(text or "", PostgresLexer(), HtmlFormatter(nowrap=True)))  # noqa: S308
