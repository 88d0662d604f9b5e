"""{% version_checks version %}: a version's checks on any page (the request page uses it)."""

from __future__ import annotations

from django import template

from registry_ui.web.checks.services import compare, has_cases, results_context

register = template.Library()


@register.inclusion_tag("registry_ui/checks/_results.html", takes_context=True)
def version_checks(context, version, compare_stage: str | None = None):
    """The checks partial for ``version``; ``compare_stage``: compare with its holder."""
    request = context.get("request")
    user = getattr(request, "user", None)
    return {
        **results_context(version, user=user, compare_stage=compare_stage),
        "next_url": request.get_full_path() if request else "",
    }


@register.inclusion_tag("registry_ui/checks/_regressions.html")
def check_regressions(old, new):
    """The diff's check column: cases ``new`` breaks that ``old`` passed."""
    return {
        "old": old,
        "new": new,
        "has_cases": has_cases(old) or has_cases(new),
        "regressions": compare(old, new),
    }
