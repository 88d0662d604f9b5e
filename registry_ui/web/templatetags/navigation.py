"""The main menu as each user may use it, and the page assets the pages share.

{% nav_items as items %}: the menu's links, only those the signed-in user may open (a link
that answers 403 is never offered); base.html loops over them. The rules are
permissions.py's, not this module's.

{% page_assets %}: pages.css (the pages' own layout) and pages.js (times in the viewer's
zone, whole rows as links, copy buttons), written once per response, whoever asks first
(base.html's head, or a page's content before base.html asks)."""

from __future__ import annotations

from dataclasses import dataclass

from django import template
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html

from registry_ui.web import permissions

register = template.Library()


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    current: bool = False


# (label, URL name, who may open it: None for every signed-in user)
MENU = (
    ("Templates", "template_list", None),
    ("Native prompts", "native_list", None),
    ("Requests", "request_list", permissions.may_view_requests),
    ("Experiments", "experiment_list", permissions.may_read_metrics),
    ("Operations", "operation_list", None),
    ("Audit log", "audit_log", None),
)


def nav_items_for(user, path: str = "") -> list[NavItem]:
    items = []
    for label, url_name, allowed in MENU:
        if allowed is not None and not allowed(user):
            continue
        url = reverse(url_name)
        current = path.startswith(url) if url != "/" else path in ("/", "")
        items.append(NavItem(label, url, current))
    return items


@register.simple_tag(takes_context=True)
def nav_items(context) -> list[NavItem]:
    request = context.get("request")
    user = context.get("user") or (request.user if request else None)
    if user is None or not user.is_authenticated:
        return []
    return nav_items_for(user, request.path if request else "")


@register.simple_tag(takes_context=True)
def page_assets(context) -> str:
    request = context.get("request")
    if request is not None:
        if getattr(request, "_registry_page_assets", False):
            return ""
        request._registry_page_assets = True
    return format_html(
        '<link rel="stylesheet" href="{}"><script src="{}" defer></script>',
        static("registry_ui/pages.css"),
        static("registry_ui/pages.js"),
    )
