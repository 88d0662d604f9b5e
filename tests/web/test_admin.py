"""The admin reads every model of the app and changes none (state changes go through the
services, which authorise, audit and re-check them)."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.admin.sites import site as admin_site
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db

# ServiceToken is the one exception: an administrator creates a calling service's token in
# the admin (shown once) and revokes it there; both go through registry_ui.web.experiments,
# which audits them (tests/web/experiments/test_experiments.py tests that admin).
CREATED_IN_THE_ADMIN = {"ServiceToken"}
MODELS = [
    m
    for m in apps.get_app_config("registry_web").get_models()
    if m.__name__ not in CREATED_IN_THE_ADMIN
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_each_model_is_listed_read_only(model, admin_client):
    model_admin = admin_site.get_model_admin(model)
    request = type("Request", (), {"user": User.objects.get(username="admin")})()
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    url = f"/admin/registry_web/{model._meta.model_name}/"
    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url + "add/").status_code == 403
