"""Every URL name the app had still answers at the same address: links in emails, bookmarks
and CI scripts use them, whatever package the view moved to."""

import pytest
from django.urls import resolve, reverse

ADDRESSES = [
    ("template_list", {}, "/"),
    ("healthz", {}, "/healthz"),
    ("mlflow_webhook", {}, "/webhooks/mlflow"),
    ("audit_log", {}, "/audit/"),
    ("audit_export", {}, "/audit/export.csv"),
    ("request_list", {}, "/requests/"),
    ("request_create", {}, "/requests/new"),
    ("request_detail", {"pk": 7}, "/requests/7/"),
    ("request_approve", {"pk": 7}, "/requests/7/approve"),
    ("request_reject", {"pk": 7}, "/requests/7/reject"),
    ("request_comment", {"pk": 7}, "/requests/7/comment"),
    ("request_withdraw", {"pk": 7}, "/requests/7/withdraw"),
    ("rollback_create", {}, "/rollback/new"),
    ("release_create", {}, "/releases/new"),
    ("version_run_checks", {"pk": 3}, "/versions/3/run-checks"),
    ("experiment_list", {}, "/experiments/"),
    ("experiment_create", {}, "/experiments/new"),
    ("version_compare", {}, "/experiments/compare"),
    ("version_compare_csv", {}, "/experiments/compare.csv"),
    ("experiment_detail", {"key": "hook-cta"}, "/experiments/hook-cta/"),
    ("experiment_stop", {"key": "hook-cta"}, "/experiments/hook-cta/stop"),
    ("outcomes_api", {}, "/api/v1/outcomes"),
    ("api_tokens", {}, "/api/tokens/"),
    ("api_token_revoke", {"pk": 7}, "/api/tokens/7/revoke"),
    ("template_diff", {"name": "a/b"}, "/templates/a/b/-/diff"),
    ("template_detail", {"name": "a/b"}, "/templates/a/b"),
    ("version_detail", {"name": "a/b", "version": "1.2.0"}, "/templates/a/b/-/versions/1.2.0"),
    (
        "sample_save",
        {"name": "a/b", "version": "1.2.0"},
        "/templates/a/b/-/versions/1.2.0/samples",
    ),
    ("flag_resolve", {"pk": 5}, "/flags/5/resolve"),
    ("mlflow_problems", {}, "/mlflow-problems/"),
    ("native_list", {}, "/native-prompts/"),
    ("native_detail", {"name": "greet.v2"}, "/native-prompts/greet.v2"),
    ("native_request_create", {"name": "greet.v2"}, "/native-prompts/greet.v2/requests"),
    ("native_checks_run", {"name": "greet.v2"}, "/native-prompts/greet.v2/checks"),
    ("native_request_approve", {"pk": 3}, "/native-alias-requests/3/approve"),
    ("version_create", {}, "/versions/new"),
    ("version_validate", {}, "/versions/validate"),
    ("version_filed", {"pk": 4}, "/versions/filed/4"),
    ("operation_list", {}, "/operations/"),
    ("operation_retry", {}, "/operations/retry"),
    ("batch_detail", {"pk": 4}, "/operations/batches/4"),
    ("batch_progress", {"pk": 4}, "/operations/batches/4/progress"),
    ("login", {}, "/accounts/login/"),
    ("logout", {}, "/accounts/logout/"),
    ("password_change", {}, "/accounts/password/"),
    ("password_change_done", {}, "/accounts/password/changed/"),
]


@pytest.mark.parametrize(("name", "kwargs", "address"), ADDRESSES)
def test_each_url_name_keeps_its_address(name, kwargs, address):
    assert reverse(name, kwargs=kwargs) == address
    assert resolve(address).url_name == name


def test_no_url_name_is_left_out_of_the_list():
    from registry_ui.web.urls import urlpatterns

    assert {p.name for p in urlpatterns} == {name for name, _, _ in ADDRESSES}
