"""HTTP helpers shared by every domain's views."""

from __future__ import annotations

from django.http import HttpResponse, HttpResponseRedirect
from django_htmx.http import HttpResponseClientRedirect


def see_other(url: str) -> HttpResponseRedirect:
    """303: the browser follows with a GET, so a reload never re-sends the form."""
    return HttpResponseRedirect(url, status=303)


def after_form(request, url: str) -> HttpResponse:
    """Where a form that worked sends the user: htmx follows a client redirect, a plain
    form post a 303."""
    return HttpResponseClientRedirect(url) if request.htmx else see_other(url)
