"""What waits for a reviewer: the inbox's "waiting for me" and the header's count."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from registry_ui.web import permissions
from registry_ui.web.models import PromotionRequest
from registry_ui.web.prompts import native

Status = PromotionRequest.Status


def waiting_for_me(user, requests=None):
    """Requests that need this user's review: open, not filed or written by them, not yet
    approved by them (the inbox's "waiting for me" and the header's count)."""
    if requests is None:
        requests = PromotionRequest.objects.all()
    if not permissions.may_review(user):
        return requests.none()
    return (
        requests.filter(status=Status.OPEN, release__isnull=True)
        .exclude(requester=user)
        .exclude(version_authors__contains=f",{user.get_username()},")
        .exclude(approvals__reviewer=user)
    )


def waiting_for(user) -> int:
    """In-app count: templates' requests and native prompts' alias moves that need this
    user's review, in one query."""
    templates = waiting_for_me(user).order_by().values("pk")
    natives = native.alias_requests_waiting_for(user).order_by().values("pk")
    return templates.union(natives, all=True).count()


def review_inbox(request) -> dict:
    """``waiting_for_me``: how many open requests (templates' requests and native prompts'
    alias moves) need the signed-in user's review.

    Lazy, so the COUNT runs once per page that shows it and never for htmx fragments
    that do not.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"waiting_for_me": 0}
    return {"waiting_for_me": SimpleLazyObject(lambda: waiting_for(user))}
