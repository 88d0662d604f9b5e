"""Accounts and grants for an `mlflow server --app-name basic-auth` that registry_ui writes to.

docs/deploy.md ("Lock MLflow down") is the operator's guide; tests/test_mlflow_auth.py runs
these functions against a real server. Run as MLflow's admin, with the admin's credentials in
MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (MLflow's own client variables):

    python setup_accounts.py service          # registry_ui's account (REGISTRY_UI_MLFLOW_*)
    python setup_accounts.py reader NAME      # a read-only runtime account; prints its password
    python setup_accounts.py check            # exit 1 if another account can write our models

The design: `default_permission = READ` (docker/mlflow-auth/basic_auth.ini), so every account
reads and none writes without a grant. MLflow gives the account that creates an experiment or
a registered model MANAGE on it (`set_can_manage_experiment_permission` and
`set_can_manage_registered_model_permission`, the after-request handlers of CreateExperiment and
CreateRegisteredModel in mlflow/server/auth/__init__.py), so registry_ui's account holds MANAGE
on everything it creates without a step here; `service` grants it MANAGE on what already
existed (a registry written before authentication was on, or by another account).

It runs where MLflow is installed (the mlflow image: /etc/mlflow-auth/setup_accounts.py), so
it imports nothing of registry_ui: the names below are registry_ui's (registry_ui/gateway.py),
kept equal by tests/test_mlflow_auth.py.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Iterator

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client
from mlflow.server.auth.client import AuthServiceClient
from mlflow.server.auth.routes import LIST_USERS
from mlflow.utils.credentials import get_default_host_creds
from mlflow.utils.rest_utils import http_request, verify_rest_response

SERVICE_ACCOUNT = "registry-ui-svc"
# The experiments registry_ui creates its runs in, and the tag on every registered model it
# manages (docs/mlflow-contract.md).
EXPERIMENTS = ("registry_ui-registrations", "registry_ui-experiments")
TAG_KIND = "registry_ui.kind"
KIND_PROMPT_TEMPLATE = "prompt_template"
# Permissions that let an account change a registered model's tags, aliases or versions.
WRITING = ("EDIT", "MANAGE")
MIN_PASSWORD_LENGTH = 12  # MLflow refuses shorter ones


def auth_client(tracking_uri: str) -> AuthServiceClient:
    return get_app_client("basic-auth", tracking_uri=tracking_uri)


def registry_ui_models(client: MlflowClient) -> Iterator[str]:
    token = None
    while True:
        page = client.search_registered_models(
            filter_string=f"tags.`{TAG_KIND}` = '{KIND_PROMPT_TEMPLATE}'",
            max_results=1000,
            page_token=token,
        )
        for model in page:
            yield model.name
        token = page.token
        if not token:
            return


def set_up_service_account(
    auth: AuthServiceClient, client: MlflowClient, *, username: str, password: str
) -> list[str]:
    """Create registry_ui's account (if missing) and give it MANAGE on what it already owns.

    MANAGE, not EDIT: moving a version from staging to production deletes the staging alias,
    and MLflow lets only MANAGE delete one. Returns what was granted. Safe to re-run; an
    existing account keeps its password (change it with update_user_password).
    """
    if not _user_exists(auth, username):
        _check_password(password, "the service account's")
        auth.create_user(username, password)
    granted = []
    for name in EXPERIMENTS:
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            _grant(auth, username, "experiment", experiment.experiment_id, "MANAGE")
            granted.append(f"experiment {name}")
    for name in registry_ui_models(client):
        _grant(auth, username, "registered_model", name, "MANAGE")
        granted.append(f"registered model {name}")
    return granted


def create_reader(auth: AuthServiceClient, *, username: str, password: str | None = None) -> str:
    """A runtime account: it reads through default_permission = READ and gets no grant.

    Returns its password (generated unless given).
    """
    password = password or secrets.token_urlsafe(24)
    _check_password(password, "the reader's")
    auth.create_user(username, password)
    return password


def writers_of_registry_ui_models(
    auth: AuthServiceClient, client: MlflowClient, *, service_account: str
) -> dict[str, list[str]]:
    """Registered model -> "account (PERMISSION)" for every account but the service account
    and the admins that can change it. Admins can change everything and are not listed."""
    users = _list_users(auth.tracking_uri)
    others = [
        u["username"] for u in users if not u["is_admin"] and u["username"] != service_account
    ]
    found: dict[str, list[str]] = {}
    for name in registry_ui_models(client):
        for username in others:
            permission = auth.get_user_permission(username, "registered_model", name).permission
            if permission in WRITING:
                found.setdefault(name, []).append(f"{username} ({permission})")
    return found


def _grant(auth: AuthServiceClient, username: str, kind: str, resource: str, level: str) -> None:
    if auth.get_user_permission(username, kind, resource).permission == level:
        return
    try:
        auth.grant_user_permission(username, kind, resource, level)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        # A grant at another level: the API has no update of a per-user grant.
        auth.revoke_user_permission(username, kind, resource)
        auth.grant_user_permission(username, kind, resource, level)


def _user_exists(auth: AuthServiceClient, username: str) -> bool:
    try:
        auth.get_user(username)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True


def _list_users(tracking_uri: str) -> list[dict]:
    # AuthServiceClient has no list_users; the admin's REST route does (GET users/list).
    response = http_request(get_default_host_creds(tracking_uri), LIST_USERS, "GET")
    return verify_rest_response(response, LIST_USERS).json()["users"]


def _check_password(password: str, whose: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValueError(f"{whose} password must have at least {MIN_PASSWORD_LENGTH} characters")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI") or "http://127.0.0.1:5000",
        help="the MLflow server (default: MLFLOW_TRACKING_URI, else http://127.0.0.1:5000)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    service = commands.add_parser(
        "service", help="registry_ui's account; password from REGISTRY_UI_MLFLOW_PASSWORD"
    )
    service.add_argument("--username", default=os.environ.get("REGISTRY_UI_MLFLOW_USERNAME"))
    reader = commands.add_parser("reader", help="a read-only runtime account")
    reader.add_argument("username")
    check = commands.add_parser("check", help="list other accounts that can write our models")
    check.add_argument("--service-account", default=os.environ.get("REGISTRY_UI_MLFLOW_USERNAME"))
    args = parser.parse_args(argv)

    try:
        return _run(args)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    auth = auth_client(args.tracking_uri)
    client = MlflowClient(tracking_uri=args.tracking_uri, registry_uri=args.tracking_uri)
    if args.command == "service":
        username = args.username or SERVICE_ACCOUNT
        granted = set_up_service_account(
            auth,
            client,
            username=username,
            password=os.environ.get("REGISTRY_UI_MLFLOW_PASSWORD", ""),
        )
        print(f"{username}: ready; MANAGE on {len(granted)} existing resource(s)")
        for line in granted:
            print(f"  {line}")
        return 0
    if args.command == "reader":
        password = create_reader(auth, username=args.username)
        print(f"{args.username}: created, read-only. Its password (shown once): {password}")
        return 0
    writers = writers_of_registry_ui_models(
        auth, client, service_account=args.service_account or SERVICE_ACCOUNT
    )
    for name, accounts in sorted(writers.items()):
        print(f"{name}: also writable by {', '.join(accounts)}")
    if writers:
        print("Revoke these grants (revoke_user_permission) unless the account is registry_ui's.")
        return 1
    print("Only registry_ui's account (and MLflow's admins) can write registry_ui's models.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
