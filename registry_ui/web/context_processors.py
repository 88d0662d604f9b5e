"""Template context shared by every page."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from registry_ui.web.approvals import waiting_for


def review_inbox(request) -> dict:
    """``waiting_for_me``: how many open requests need the signed-in user's review.

    Lazy, so the COUNT runs once per page that shows it and never for htmx fragments
    that do not.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"waiting_for_me": 0}
    return {"waiting_for_me": SimpleLazyObject(lambda: waiting_for(user))}
