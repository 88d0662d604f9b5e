from django.contrib.auth import views as auth_views
from django.urls import path

from registry_ui.web import health
from registry_ui.web.api import api as web_api
from registry_ui.web.api import views as api_views
from registry_ui.web.audit import views as audit_views
from registry_ui.web.auth import signin
from registry_ui.web.checks import views as check_views
from registry_ui.web.experiments import views as experiment_views
from registry_ui.web.operations import views as operation_views
from registry_ui.web.prompts import draft_views, native_views, webhooks
from registry_ui.web.prompts import views as prompt_views
from registry_ui.web.reviews import views as review_views

urlpatterns = [
    path("", prompt_views.template_list, name="template_list"),
    path("healthz", health.healthz, name="healthz"),
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
    path(
        "experiments/compare.csv",
        experiment_views.version_compare_csv,
        name="version_compare_csv",
    ),
    path("experiments/<slug:key>/", experiment_views.experiment_detail, name="experiment_detail"),
    path("experiments/<slug:key>/stop", experiment_views.experiment_stop, name="experiment_stop"),
    # The outcomes endpoint of the API (registry_ui/urls.py includes the rest under api/v1/),
    # named as before it moved onto the API.
    path("api/v1/outcomes", web_api.outcomes_view(), name="outcomes_api"),
    path("api/tokens/", api_views.token_list, name="api_tokens"),
    path("api/tokens/<int:pk>/revoke", api_views.token_revoke, name="api_token_revoke"),
    # Dashboard pages. "-" cannot be a segment of a template name, so "/-/" ends the name.
    path("templates/<path:name>/-/diff", prompt_views.template_diff, name="template_diff"),
    path(
        "templates/<path:name>/-/versions/<str:version>/samples",
        prompt_views.sample_save,
        name="sample_save",
    ),
    path(
        "templates/<path:name>/-/versions/<str:version>",
        prompt_views.version_detail,
        name="version_detail",
    ),
    path("templates/<path:name>", prompt_views.template_detail, name="template_detail"),
    path("flags/<int:pk>/resolve", prompt_views.flag_resolve, name="flag_resolve"),
    path("mlflow-problems/", prompt_views.mlflow_problems, name="mlflow_problems"),
    path("native-prompts/", native_views.native_list, name="native_list"),
    path("native-prompts/<str:name>", native_views.native_detail, name="native_detail"),
    path(
        "native-prompts/<str:name>/checks",
        native_views.native_checks_run,
        name="native_checks_run",
    ),
    path(
        "native-prompts/<str:name>/requests",
        native_views.native_request_create,
        name="native_request_create",
    ),
    path(
        "native-alias-requests/<int:pk>/approve",
        native_views.native_request_approve,
        name="native_request_approve",
    ),
    path("versions/new", draft_views.version_create, name="version_create"),
    path("versions/validate", draft_views.version_validate, name="version_validate"),
    path("versions/filed/<int:pk>", draft_views.version_filed, name="version_filed"),
    path("operations/", operation_views.operation_list, name="operation_list"),
    path("operations/retry", operation_views.operation_retry, name="operation_retry"),
    path("operations/batches/<int:pk>", operation_views.batch_detail, name="batch_detail"),
    path(
        "operations/batches/<int:pk>/progress",
        operation_views.batch_progress,
        name="batch_progress",
    ),
    path("audit/", audit_views.audit_log, name="audit_log"),
    path("accounts/login/", signin.ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(
            template_name="registry_ui/auth/password_change.html"
        ),
        name="password_change",
    ),
    path(
        "accounts/password/changed/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="registry_ui/auth/password_changed.html"
        ),
        name="password_change_done",
    ),
]
