"""Time from an outside change in MLflow to its flag on the template page.

Run from the repository root: python -m bench.drift
Starts an `mlflow server` and the dashboard (its WSGI app on a threaded server in this
process, tasks in-process; DATABASE_URL or a temporary SQLite file). Another program (a plain
MlflowClient) edits the text of a staging version or moves the production alias of each of
BENCH_DRIFT_CHANGES (default 10) templates, twice over:
- without webhooks: one sync_registry() pass (what beat runs every SYNC_INTERVAL_SECONDS)
  is timed, and every flag is then checked on its page as a reviewer sees it; a change shows
  within one interval plus this;
- with MLflow's webhook pointed at the dashboard: for each change, the time from the
  outside write until the template page, polled as a signed-in reviewer, shows the flag;
- a production version deleted (MLflow sends no webhook for that): one holder-watch tick
  (beat runs it every HOLDER_WATCH_SECONDS) until the flag is on the page, and the cost of
  a tick that finds nothing;
- a legacy stage set by hand (no webhook either): one incremental pass (beat runs it every
  SYNC_INTERVAL_SECONDS) until the flag is on the page, and the cost of an idle pass.
Prints one JSON object last.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import requests

SECRET = "bench-drift-secret"


def main() -> None:
    changes = int(os.environ.get("BENCH_DRIFT_CHANGES", "10"))
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        from cryptography.fernet import Fernet

        from tests.support.mlflow_server import MlflowServer, free_port

        server = MlflowServer(
            root / "mlflow",
            free_port(),
            enable_jobs=False,
            extra_env={
                "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
                "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
                "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": Fernet.generate_key().decode(),
                # Each server process caches every event's webhook list for this long (60 s
                # by default): a webhook created after the sync half's tag writes would
                # otherwise start delivering only a minute later.
                "MLFLOW_WEBHOOK_CACHE_TTL": "1",
            },
        ).start()
        env = {
            **os.environ,
            # SQLite serialises the webhook's sync behind the page reads: PostgreSQL is what
            # a deployment runs (DATABASE_URL), SQLite the fallback.
            "DATABASE_URL": os.environ.get(
                "DATABASE_URL", f"sqlite:///{root / 'dashboard.sqlite3'}"
            ),
            "MLFLOW_TRACKING_URI": server.url,
            "MLFLOW_WEBHOOK_SECRET": SECRET,
            "REDIS_URL": "",
            "REGISTRY_UI_REQUIRED_METADATA": "none",
            "REGISTRY_UI_VAR_DIR": str(root / "var"),
        }
        env.pop("REDIS_URL")
        os.environ.update({k: v for k, v in env.items() if k != "PATH"})
        os.environ["DJANGO_SETTINGS_MODULE"] = "registry_ui.settings"
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        port = free_port()
        web = serve_dashboard(port)
        dashboard = f"http://127.0.0.1:{port}"
        try:
            results = run(server.url, dashboard, changes)
        except SystemExit:
            print(server.log_path.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            web.shutdown()
            server.stop()
    print(json.dumps(results))


def serve_dashboard(port: int):
    """The dashboard's WSGI app on a threaded server in this process (as the tests' live
    server runs it); tasks run in-process, so a webhook's sync is done when it answers."""
    import threading
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from django.core.wsgi import get_wsgi_application

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    class Threaded(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    httpd = make_server(
        "127.0.0.1", port, get_wsgi_application(), server_class=Threaded, handler_class=Quiet
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def run(mlflow_url: str, dashboard: str, changes: int) -> dict:
    from mlflow import MlflowClient

    from registry_ui.core.names import to_registered_model_name
    from registry_ui.prompt_model import PromptModel, configure_mlflow_with_registry, get_registry
    from registry_ui.web.models import TemplateFlag
    from registry_ui.web.prompts.mirror import sync_registry
    from tests.support.users import member

    configure_mlflow_with_registry(mlflow_url)
    client = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
    reviewer = member("bench-reviewer", "reviewers")
    reviewer.set_password("bench-password-123")
    reviewer.save()
    session = signed_in(dashboard)

    def template(name: str) -> str:
        PromptModel.register_many(
            [PromptModel(name, "Hi {x}", "1.0.0", metadata={}),
             PromptModel(name, "Hi {x}!", "1.0.1", metadata={})]
        )  # fmt: skip
        get_registry().promote(name, "1.0.0", "staging")
        get_registry().promote(name, "1.0.0", "production")
        get_registry().promote(name, "1.0.1", "staging")
        return to_registered_model_name(name)

    def outside_change(registered: str, number: int) -> None:
        if number % 2 == 0:
            client.set_model_version_tag(registered, "2", "registry_ui.template", "EDITED {x}")
        else:
            client.set_registered_model_alias(registered, "production", "2")

    # Without webhooks: the changes, seen by one sync pass.
    quiet = [f"drift/sync-{i}" for i in range(changes)]
    registered = {name: template(name) for name in quiet}
    sync_registry()
    for number, name in enumerate(quiet):
        outside_change(registered[name], number)
    started = time.monotonic()
    sync_registry()
    sync_seconds = time.monotonic() - started
    flagged = TemplateFlag.objects.filter(template__name__in=quiet).values("template").distinct()
    assert flagged.count() == changes, f"the sync flagged {flagged.count()} of {changes}"
    shown = []  # every flag on its page once the pass has ended
    for name in quiet:
        page = session.get(f"{dashboard}/templates/{urllib.parse.quote(name)}", timeout=10)
        shown.append("Needs a reviewer" in page.text)
    assert all(shown), shown
    # Made now, before the webhook exists: these library promotions are outside the
    # dashboard, and a webhook-driven sync in the middle of one would rightly flag it.
    gone, legacy = f"drift/deleted-{changes}", f"drift/legacy-{changes}"
    deleted, marked = template(gone), template(legacy)
    sync_registry()

    # With webhooks: each change, from the outside write to its flag on the page.
    client.create_webhook(
        name="registry-ui-bench",
        url=f"{dashboard}/webhooks/mlflow",
        events=[
            "model_version.created",
            "model_version_tag.set",
            "model_version_tag.deleted",
            "model_version_alias.created",
            "model_version_alias.deleted",
        ],
        secret=SECRET,
    )
    time.sleep(1.5)  # past MLFLOW_WEBHOOK_CACHE_TTL: every server process sees the webhook
    hooked = [f"drift/webhook-{i}" for i in range(changes)]
    registered = {name: template(name) for name in hooked}
    sync_registry()
    delays = []
    for number, name in enumerate(hooked):
        started = time.monotonic()
        outside_change(registered[name], number)
        page_url = f"{dashboard}/templates/{urllib.parse.quote(name)}"
        while "Needs a reviewer" not in session.get(page_url, timeout=10).text:
            if time.monotonic() - started > 30:
                raise SystemExit(f"no flag on {name}'s page 30 s after the change")
            time.sleep(0.05)
        delays.append(time.monotonic() - started)
    delays.sort()

    # Deletions (no MLflow webhook): the holder watch's tick, then the flag on the page.
    from registry_ui.web.prompts.tasks import watch_stage_holders_task

    started = time.monotonic()
    watch_stage_holders_task()
    idle_tick = time.monotonic() - started
    client.delete_model_version(deleted, "1")  # the production version
    started = time.monotonic()
    seen = watch_stage_holders_task()
    page = session.get(f"{dashboard}/templates/{urllib.parse.quote(gone)}", timeout=10)
    assert "deleted in MLflow" in page.text, f"the watch did not flag the deletion: {seen}"
    deletion_seconds = time.monotonic() - started

    # A legacy stage set by hand (no webhook either): one incremental pass, then the flag.
    from registry_ui.web.prompts.tasks import sync_changes_task

    started = time.monotonic()
    sync_changes_task()
    idle_pass = time.monotonic() - started
    client.transition_model_version_stage(marked, "2", "Production")  # 1.0.1, in staging
    started = time.monotonic()
    sync_changes_task()
    page = session.get(f"{dashboard}/templates/{urllib.parse.quote(legacy)}", timeout=10)
    assert "legacy stage Production" in page.text, "the pass did not flag the legacy stage"
    legacy_seconds = time.monotonic() - started
    return {
        "incremental_pass_seconds_nothing_changed": round(idle_pass, 3),
        "legacy_stage_pass_to_flag_seconds": round(legacy_seconds, 2),
        "sync_changes_interval_seconds": int(os.environ.get("SYNC_INTERVAL_SECONDS", "4")),
        "watch_tick_seconds_nothing_changed": round(idle_tick, 3),
        "deletion_tick_to_flag_seconds": round(deletion_seconds, 2),
        "holder_watch_interval_seconds": int(os.environ.get("HOLDER_WATCH_SECONDS", "4")),
        "changes": changes,
        "webhook_seconds_median": round(delays[len(delays) // 2], 2),
        "webhook_seconds_max": round(delays[-1], 2),
        "sync_pass_seconds": round(sync_seconds, 2),
        "full_sweep_interval_seconds": int(os.environ.get("SYNC_FULL_SWEEP_SECONDS", "600")),
        "templates_in_registry": changes,
    }


def signed_in(dashboard: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{dashboard}/accounts/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = session.post(
        f"{dashboard}/accounts/login/",
        data={
            "username": "bench-reviewer",
            "password": "bench-password-123",
            "csrfmiddlewaretoken": token,
        },
        headers={"Referer": f"{dashboard}/accounts/login/"},
        timeout=10,
    )
    if "Sign out" not in answer.text:
        raise SystemExit("could not sign in to the dashboard")
    return session


if __name__ == "__main__":
    main()
