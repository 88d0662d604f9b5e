"""{{ when|moment }}: a time as every page shows it, naming its zone.

The server writes UTC ("2026-12-04 21:48 UTC") with the full moment in the title; the
page's script (static/registry_ui/pages.js) rewrites the text into the viewer's own
zone and keeps UTC in the title, so hovering shows it. Without the script the UTC text
stays, which is still right. ``{{ when|moment:"seconds" }}`` adds the seconds, for events
close together."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from registry_ui.web import display

register = template.Library()


@register.filter
def moment(value, precision: str = ""):
    if value is None:
        return ""
    iso, text = display.moment(value, seconds=precision == "seconds")
    _, exact = display.moment(value, seconds=True)
    return format_html(
        '<time datetime="{}" title="{}" data-local="{}">{}</time>',
        iso,
        exact,
        "seconds" if precision == "seconds" else "minutes",
        text,
    )


@register.filter
def duration(value) -> str:
    return display.duration(value)
