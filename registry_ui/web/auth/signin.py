"""Sign-in: failed attempts are throttled, and every sign-in, failure and sign-out is audited.

Failures are counted per username (case-folded) and per client address in Django's cache,
which is Redis when REDIS_URL is set, so every gunicorn worker sees the same counts. After
LOGIN_FAILURE_LIMIT failures within LOGIN_FAILURE_WINDOW_SECONDS of the first one, sign-in
is refused without checking the password until that window ends.
"""

from __future__ import annotations

import hashlib
import math
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest

from registry_ui.web.audit import trail


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or the header named by CLIENT_IP_HEADER that the proxy in front sets."""
    if settings.CLIENT_IP_HEADER:
        forwarded = request.headers.get(settings.CLIENT_IP_HEADER, "")
        # The last entry is the one our proxy added; earlier ones come from the client.
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return request.META.get("REMOTE_ADDR") or None


def _counter_keys(*, username: str | None, ip: str | None) -> list[str]:
    # Hashed: usernames may hold characters cache backends warn about, and any length.
    keys = []
    if username:
        keys.append("signin-failures:user:" + _digest(username.casefold()))
    if ip:
        keys.append("signin-failures:ip:" + _digest(ip))
    return keys


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def seconds_until_allowed(*, username: str | None, ip: str | None) -> int:
    """0 while sign-in is allowed; else how long until the failure window ends."""
    keys = _counter_keys(username=username, ip=ip)
    stored = cache.get_many([*keys, *(f"{key}:until" for key in keys)])
    now = time.time()
    waits = [
        stored.get(f"{key}:until", now + 1) - now
        for key in keys
        if stored.get(key, 0) >= settings.LOGIN_FAILURE_LIMIT
    ]
    return max(1, math.ceil(max(waits))) if waits else 0


def record_failure(*, username: str | None, ip: str | None) -> None:
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    for key in _counter_keys(username=username, ip=ip):
        # add() only sets a missing key (atomic in Redis), so the window runs from the first
        # failure; incr() keeps the expiry and is atomic across workers.
        cache.add(f"{key}:until", time.time() + window, window)
        if cache.add(key, 1, window):
            continue
        try:
            cache.incr(key)
        except ValueError:  # expired between add() and incr(): a new window starts
            cache.set(key, 1, window)


def clear_failures(*, username: str) -> None:
    keys = _counter_keys(username=username, ip=None)
    cache.delete_many([*keys, *(f"{key}:until" for key in keys)])


class ThrottledLoginView(auth_views.LoginView):
    """Django's LoginView, answering 429 while throttled, without checking the password."""

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        wait = seconds_until_allowed(username=username, ip=client_ip(request))
        if not wait:
            return super().post(request, *args, **kwargs)
        # An unbound form: a bound one would authenticate as soon as the page asks for errors.
        form = self.get_form_class()(request, initial={"username": username})
        context = self.get_context_data(form=form, retry_minutes=math.ceil(wait / 60))
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(wait)
        return response


class ThrottledModelBackend(ModelBackend):
    """ModelBackend refusing throttled sign-ins before the password, on every sign-in page.

    ThrottledLoginView already answers 429 first; this also covers the admin's login page.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is not None:
            if username is None:
                username = kwargs.get(get_user_model().USERNAME_FIELD)
            if seconds_until_allowed(username=username, ip=client_ip(request)):
                raise PermissionDenied("too many failed sign-ins")
        return super().authenticate(request, username=username, password=password, **kwargs)


def _audit_sign_in(*, actor: str, action: str, username: str, request) -> None:
    ip = client_ip(request) if request is not None else None
    with transaction.atomic():
        trail.record(
            actor=actor,
            action=action,
            object_type="user",
            object_id=username,
            source="dashboard",
            before=None,
            after={"ip": ip},
        )


def on_signed_in(sender, request, user, **kwargs) -> None:
    username = user.get_username()
    clear_failures(username=username)
    _audit_sign_in(actor=username, action="auth.signed_in", username=username, request=request)


def on_sign_in_failed(sender, credentials, request=None, **kwargs) -> None:
    # Only the username: Django has already masked the password, and its length says too much.
    username = str(credentials.get(get_user_model().USERNAME_FIELD) or "")[:150]
    record_failure(username=username, ip=client_ip(request) if request is not None else None)
    # Anyone can type any username: the attempt is not that user's action.
    _audit_sign_in(
        actor="anonymous", action="auth.sign_in_failed", username=username, request=request
    )


def on_signed_out(sender, request, user, **kwargs) -> None:
    if user is None:  # signing out without a session changes nothing
        return
    username = user.get_username()
    _audit_sign_in(actor=username, action="auth.signed_out", username=username, request=request)


def connect_signals() -> None:
    user_logged_in.connect(on_signed_in, dispatch_uid="registry_ui.auth.signed_in")
    user_login_failed.connect(on_sign_in_failed, dispatch_uid="registry_ui.auth.sign_in_failed")
    user_logged_out.connect(on_signed_out, dispatch_uid="registry_ui.auth.signed_out")
