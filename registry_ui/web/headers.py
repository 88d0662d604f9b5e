"""Headers every response carries, set in one place (settings.MIDDLEWARE, outermost).

- Permissions-Policy on every response: no page uses the camera, the microphone, payments
  or the like, so none may (settings.PERMISSIONS_POLICY).
- Cache-Control: no-store on every response to a signed-in user: pages show unreleased
  prompts, reviews and the audit trail, and must not be kept by the browser's cache (for
  the back button on a shared computer after sign-out) or by a proxy.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.cache import patch_cache_control


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        # Absent when a middleware answered before authentication ran (WhiteNoise's files).
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            patch_cache_control(response, no_store=True, private=True)
        return response
