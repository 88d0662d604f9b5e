"""Sign-in: failed attempts are throttled, and every sign-in, failure and sign-out is audited.

Each failure adds to three counts in Django's cache (Redis when REDIS_URL is set, so every
gunicorn worker sees the same counts), each with its own limit within
LOGIN_FAILURE_WINDOW_SECONDS of its first failure:

- one username from one address: LOGIN_FAILURE_LIMIT (5), someone guessing one password;
- one username from anywhere: LOGIN_FAILURE_USERNAME_LIMIT (20), guesses spread over many
  addresses. Higher than the first, or anyone could lock anyone out from anywhere with five
  tries (and the first count would never be the one that stops anything);
- one address, any usernames: LOGIN_FAILURE_ADDRESS_LIMIT (50), one address trying many
  usernames. Higher still: an office or a VPN puts many people behind one address, and a
  few typos among them must not lock them all out.

Past a limit, sign-in is refused for what that count covers, without checking the password,
until its window ends. A success clears the username's counts (not the address's).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

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


@dataclass(frozen=True)
class _Counter:
    key: str  # in the cache
    limit: int
    of_address: bool  # counts every username's failures from one address


def _counters(*, username: str | None, ip: str | None) -> list[_Counter]:
    """The counts a failure by ``username`` from ``ip`` adds to."""
    # Hashed: usernames may hold characters cache backends warn about, and any length.
    user = _digest(username.casefold()) if username else None
    counters = []
    if user and ip:
        key = f"signin-failures:user-ip:{_digest(f'{user} {ip}')}"
        counters.append(_Counter(key, settings.LOGIN_FAILURE_LIMIT, of_address=False))
    if user:
        key = f"signin-failures:user:{user}"
        counters.append(_Counter(key, settings.LOGIN_FAILURE_USERNAME_LIMIT, of_address=False))
    if ip:
        key = f"signin-failures:ip:{_digest(ip)}"
        counters.append(_Counter(key, settings.LOGIN_FAILURE_ADDRESS_LIMIT, of_address=True))
    return counters


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def seconds_until_allowed(*, username: str | None, ip: str | None) -> int:
    """0 while sign-in is allowed; else how long until the failure window ends."""
    counters = _counters(username=username, ip=ip)
    stored = cache.get_many([name for c in counters for name in (c.key, f"{c.key}:until")])
    now = time.time()
    waits = [
        stored.get(f"{c.key}:until", now + 1) - now
        for c in counters
        if stored.get(c.key, 0) >= c.limit
    ]
    return max(1, math.ceil(max(waits))) if waits else 0


def record_failure(*, username: str | None, ip: str | None) -> None:
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    for key in (c.key for c in _counters(username=username, ip=ip)):
        # add() only sets a missing key (atomic in Redis), so the window runs from the first
        # failure; incr() keeps the expiry and is atomic across workers.
        cache.add(f"{key}:until", time.time() + window, window)
        if cache.add(key, 1, window):
            continue
        try:
            cache.incr(key)
        except ValueError:  # expired between add() and incr(): a new window starts
            cache.set(key, 1, window)


def clear_failures(*, username: str, ip: str | None) -> None:
    """After a success: the username's counts. The address's stays, or one account of an
    attacker's own would reset the count of the usernames it tries."""
    keys = [c.key for c in _counters(username=username, ip=ip) if not c.of_address]
    cache.delete_many([name for key in keys for name in (key, f"{key}:until")])


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
    clear_failures(username=username, ip=client_ip(request) if request is not None else None)
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
