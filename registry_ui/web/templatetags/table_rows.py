"""{% template_rows rows %} and {% request_rows requests %}: the rows of the two 50-row tables,
the template list and the review inbox.

Built in Python, as Django's admin builds its change list, rather than by a template loop: the
engine spends about 0.1 ms on each of these rows (some thirty lookups, tags and filters), which
made rendering the rows cost more than the rest of the page together. Every value goes through
_e(), which escapes as {{ value }} does (django.utils.html.escape is html.escape), so the HTML is
the same as the loop's was; f-strings rather than format_html, whose lazy-string checks on every
argument cost as much again.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from django import template
from django.utils.safestring import SafeData, SafeString, mark_safe
from django.utils.text import Truncator

from registry_ui.core.names import SEPARATOR
from registry_ui.web import display
from registry_ui.web.models import PromotionRequest, TemplateVersion
from registry_ui.web.prompts import selectors as prompt_selectors

register = template.Library()

NONE = '<span class="muted">none</span>'


def _e(value) -> str:
    """``{{ value }}``: escaped unless already safe."""
    if isinstance(value, SafeData):
        return str(value)
    return escape(str(value))


# -- the template list (registry_ui/prompts/template_list.html) -------------------------------


@register.simple_tag
def template_rows(rows: list[prompt_selectors.TemplateRow]) -> SafeString:
    return mark_safe("".join(_template_row(row) for row in rows))


def _template_row(row: prompt_selectors.TemplateRow) -> str:
    name = row.template.name
    folders = "".join(
        f'<a class="folder" href="?folder={_e(quote(crumb.folder))}">{_e(crumb.label)}</a>'
        '<span class="sep" aria-hidden="true">/</span>'
        for crumb in display.crumbs(name)
    )
    tags = prompt_selectors.version_tags(row.latest)
    tag_links = (
        '<span class="tags">'
        + "".join(f'<a class="tag" href="?tag={_e(quote(t))}">#{_e(t)}</a> ' for t in tags)
        + "</span>"
        if tags
        else ""
    )
    pending = "<br>".join(
        f'<a href="{_e(display.request_url(r.pk))}">'
        f"#{r.pk} {_e(r.version.version)} to {_e(r.target_stage)}</a>"
        + (" (executing)" if r.status == PromotionRequest.Status.EXECUTING else "")
        for r in row.pending
    )
    latest = f' <span class="muted">(latest {_e(row.latest.version)})</span>' if row.latest else ""
    leaf = name.rsplit(SEPARATOR, 1)[-1]
    return (
        "\n    <tr>"
        '\n      <th scope="row">'
        f'\n        <span class="path">{folders}</span>'
        f'<a href="{_e(display.template_url(name))}">{_e(leaf)}</a>'
        f"\n        {tag_links}"
        "\n      </th>"
        f"\n      <td>{_stage_link(name, 'production', row.production)}</td>"
        f"\n      <td>{_stage_link(name, 'staging', row.staging)}</td>"
        f"\n      <td>{_stage_link(name, 'dev', row.newest_dev)}</td>"
        f"\n      <td>{pending or NONE}</td>"
        f"\n      <td>{row.version_count}{latest}</td>"
        "\n    </tr>\n  "
    )


def _stage_link(name: str, stage: str, version: TemplateVersion | None) -> str:
    if version is None:
        return NONE
    url = display.version_url(name, version.version)
    return f'<a class="stage {stage}" href="{_e(url)}">{_e(version.version)}</a>'


# -- the review inbox (registry_ui/reviews/list.html) ------------------------------------------


@register.simple_tag
def request_rows(requests: list[PromotionRequest]) -> SafeString:
    return mark_safe("".join(_request_row(r) for r in requests))


def _request_row(r: PromotionRequest) -> str:
    if r.kind == PromotionRequest.Kind.RELEASE:
        what = f"Release of {r.item_count} template{'' if r.item_count == 1 else 's'}"
    else:
        stage = _e(r.target_stage)
        what = (
            f'{_e(r.template.name)} {_e(r.version.version)} to <span class="stage {stage}">'
            f"{stage}</span>{' (rollback)' if r.kind == PromotionRequest.Kind.ROLLBACK else ''}"
        )
    gate = display.gate_words(r.gate)
    if gate is not None:
        # The verdict at a glance; the figures behind a toggle (a <details>, no script).
        verdict = f'<span class="gate {_e(gate.status)}">{_e(gate.verdict)}</span>'
        what += (
            f'<br><details class="gate-words"><summary>{verdict} <span class="muted">(figures)'
            f'</span></summary><p class="text">{_e(gate.figures)}</p></details>'
            if gate.figures
            else f"<br>{verdict}"
        )
    created_iso, created = display.moment(r.created_at)
    _, exact = display.moment(r.created_at, seconds=True)
    url = _e(display.request_url(r.pk))
    return (
        f'\n    <tr data-href="{url}">'
        f'\n      <th scope="row"><a href="{url}">#{r.pk}</a></th>'
        f"\n      <td>{what}</td>"
        f"\n      <td>{_e(Truncator(r.justification).chars(80))}</td>"
        f"\n      <td>{_e(r.requester.get_username())}</td>"
        f'\n      <td><span class="status {_e(r.status)}">{_e(r.get_status_display())}</span> '
        f"{_checks_badge(r.checks)}</td>"
        f"\n      <td>{r.approval_count} of {r.required_approvals}</td>"
        f'\n      <td><time datetime="{_e(created_iso)}" title="{_e(exact)}" data-local="minutes">'
        f"{_e(created)}</time></td>"
        "\n    </tr>\n  "
    )


def _checks_badge(checks) -> str:
    """The test cases the request recorded when filed (PromotionRequest.checks)."""
    status = _key(checks, "status")
    if status == "fail":
        return (
            f'<span class="gate fail" title="{_e(_key(checks, "detail"))}">'
            f"checks fail: {_joined(_key(checks, 'failing'))}</span>"
        )
    if status == "pass":
        return '<span class="gate pass">checks pass</span>'
    return ""


def _key(value, key: str):
    """``{{ value.key }}`` of a JSON field: "" when it is not an object or lacks the key."""
    return value.get(key, "") if isinstance(value, dict) else ""


def _joined(values) -> str:
    """``{{ values|join:", " }}``."""
    try:
        return ", ".join(_e(v) for v in values)
    except TypeError:
        return _e(values)
