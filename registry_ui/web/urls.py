from django.contrib.auth import views as auth_views
from django.urls import path

from registry_ui.web import audit_views, auth, views, webhooks

urlpatterns = [
    path("", views.template_list, name="template_list"),
    path("healthz", views.healthz, name="healthz"),
    path("webhooks/mlflow", webhooks.mlflow_webhook, name="mlflow_webhook"),
    path("audit/export.csv", audit_views.audit_export, name="audit_export"),
    path("accounts/login/", auth.ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
