from django.contrib.auth import views as auth_views
from django.urls import path

from registry_ui.web import (
    audit_views,
    auth,
    check_views,
    dashboard_views,
    experiment_views,
    outcome_api,
    review_views,
    views,
    webhooks,
)

urlpatterns = [
    path("", views.template_list, name="template_list"),
    path("healthz", views.healthz, name="healthz"),
    path("webhooks/mlflow", webhooks.mlflow_webhook, name="mlflow_webhook"),
    path("audit/export.csv", audit_views.audit_export, name="audit_export"),
    path("requests/", review_views.request_list, name="request_list"),
    path("requests/new", review_views.request_create, name="request_create"),
    path("requests/<int:pk>/", review_views.request_detail, name="request_detail"),
    path("requests/<int:pk>/approve", review_views.request_approve, name="request_approve"),
    path("requests/<int:pk>/reject", review_views.request_reject, name="request_reject"),
    path("requests/<int:pk>/comment", review_views.request_comment, name="request_comment"),
    path("requests/<int:pk>/withdraw", review_views.request_withdraw, name="request_withdraw"),
    path("rollback/new", review_views.rollback_create, name="rollback_create"),
    path("releases/new", review_views.release_create, name="release_create"),
    path(
        "versions/<int:pk>/run-checks",
        check_views.version_run_checks,
        name="version_run_checks",
    ),
    path("experiments/", experiment_views.experiment_list, name="experiment_list"),
    path("experiments/new", experiment_views.experiment_create, name="experiment_create"),
    path("experiments/compare", experiment_views.version_compare, name="version_compare"),
    path("experiments/<slug:key>/", experiment_views.experiment_detail, name="experiment_detail"),
    path("experiments/<slug:key>/stop", experiment_views.experiment_stop, name="experiment_stop"),
    path("api/v1/outcomes", outcome_api.outcomes, name="outcomes_api"),
    # Dashboard pages. "-" cannot be a segment of a template name, so "/-/" ends the name.
    path("templates/<path:name>/-/diff", dashboard_views.template_diff, name="template_diff"),
    path(
        "templates/<path:name>/-/versions/<str:version>/samples",
        dashboard_views.sample_save,
        name="sample_save",
    ),
    path(
        "templates/<path:name>/-/versions/<str:version>",
        dashboard_views.version_detail,
        name="version_detail",
    ),
    path("templates/<path:name>", dashboard_views.template_detail, name="template_detail"),
    path("versions/new", dashboard_views.version_create, name="version_create"),
    path("versions/validate", dashboard_views.version_validate, name="version_validate"),
    path("operations/", dashboard_views.operation_list, name="operation_list"),
    path("operations/retry", dashboard_views.operation_retry, name="operation_retry"),
    path("operations/batches/<int:pk>", dashboard_views.batch_detail, name="batch_detail"),
    path(
        "operations/batches/<int:pk>/progress",
        dashboard_views.batch_progress,
        name="batch_progress",
    ),
    path("audit/", dashboard_views.audit_log, name="audit_log"),
    path("accounts/login/", auth.ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
