from django.contrib import admin
from django.urls import include, path

from registry_ui.web.api.api import urlpatterns as api_urls

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("registry_ui.web.urls")),
    # The HTTP API (registry_ui/web/api, docs/api.md): token-authenticated, no sign-in.
    path("api/v1/", api_urls()),
]
