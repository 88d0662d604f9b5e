"""Writes to MLflow that converge, under faults: real `celery worker` processes on Redis, a
real `mlflow server` behind a fault-injecting proxy (tests/support/fault_proxy.py), and the
tests' database (PostgreSQL in CI).

After each fault the invariants are checked (``assert_converged``): per template one
production and one staging holder at most; aliases, stage tags and legacy stages agree;
the mirror equals MLflow; no semantic version twice; no operation left pending or running;
the audit chain verifies; nothing registry_ui did is audited as an outside change.

Locally:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python -m pytest tests/web/operations/test_stage_move_faults.py
"""

from __future__ import annotations

import os
import random
import re
import time
import warnings
from collections import Counter

import mlflow
import pytest
from django.db import connection

from registry_ui.core.names import to_registered_model_name
from registry_ui.prompt_model import PromptModel, get_registry
from registry_ui.registry import NewVersion
from registry_ui.web.audit.trail import verify_chain
from registry_ui.web.models import (
    AuditEvent,
    Batch,
    Operation,
    PromotionRequest,
    TemplateFlag,
    TemplateVersion,
)
from registry_ui.web.operations import queue, sweeper
from registry_ui.web.operations import tasks as operation_tasks
from registry_ui.web.prompts.mirror import mirror_template
from registry_ui.web.reviews import releases
from registry_ui.web.reviews import services as reviews
from registry_ui.web.reviews.releases import ReleaseLine
from tests.support.batches import SEMVER_TAG
from tests.support.fault_proxy import FaultProxy
from tests.support.workers import wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL"),
        reason="needs Redis for real Celery workers: set REDIS_URL (CI does)",
    ),
]

LEASE = 3  # seconds: a killed worker's operation is taken back soon after
# The workers: a short lease, a short backoff, a short HTTP timeout.
WORKER_ENV = {
    "OPERATION_LEASE_SECONDS": str(LEASE),
    "OPERATION_RETRY_BASE_SECONDS": "1",
    "OPERATION_RETRY_MAX_SECONDS": "4",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "3",
}
ALIAS = "/registered-models/alias"
TAG = "/model-versions/set-tag"
LEGACY = "/model-versions/transition-stage"


@pytest.fixture
def proxy(mlflow_server):
    with FaultProxy(mlflow_server.url) as proxy:
        yield proxy


@pytest.fixture
def fast(settings):
    settings.OPERATION_LEASE_SECONDS = LEASE
    settings.OPERATION_RETRY_BASE_SECONDS = 1
    settings.OPERATION_RETRY_MAX_SECONDS = 4
    settings.OPERATION_SEND_GRACE_SECONDS = 1


@pytest.fixture
def users(erin, bob, carol):
    return {u.username: u for u in (erin, bob, carol)}


def plain_client(uri: str) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def template(name: str, count: int, moves=()) -> None:
    """``count`` versions registered and moved by this process (straight to the server)."""
    PromptModel.register_many(
        [PromptModel(name, f"Hi {{x}} {i}", f"1.0.{i}", metadata={"author": "a"}) for i in range(count)]  # noqa: E501
    )  # fmt: skip
    mirror_template(name, get_registry().gateway.list_versions(name), source="external")
    for version, target in moves:
        get_registry().promote(name, version, target)
        # Setting up a history, as the workers would have made it: not an outside change.
        mirror_template(name, get_registry().gateway.list_versions(name), source="worker")


def approve_all(users, request: PromotionRequest) -> None:
    for reviewer in ("bob", "carol")[: request.required_approvals]:
        reviews.approve(users[reviewer], request.pk)


def last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def sweep_until(done, *, timeout: float, what: str) -> float:
    """Run the sweeper (as beat would) until ``done()``; returns the seconds it took."""
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} within {timeout:g} s; operations: " + str(
                list(Operation.objects.values_list("kind", "status", "attempts", "last_error"))
            ))  # fmt: skip
        sweeper.sweep(send=operation_tasks.send_now)
        time.sleep(0.5)
    return time.monotonic() - started


def assert_converged(server_url: str, names: list[str], *, since: int) -> dict:
    """The invariants; returns {template: {alias: semver}} for the test's own checks."""
    client = plain_client(server_url)
    holders = {}
    for name in names:
        registered = to_registered_model_name(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            versions = client.search_model_versions(f"name = '{registered}'")
            model = client.get_registered_model(registered)
        semvers = Counter(v.tags[SEMVER_TAG] for v in versions)
        assert max(semvers.values()) == 1, f"{name}: a semantic version twice: {semvers}"
        by_number = {str(v.version): v for v in versions}
        aliases = {alias: str(n) for alias, n in model.aliases.items()}
        records = get_registry().gateway.list_versions(name)
        for record in records:
            v = by_number[record.mlflow_version]
            assert v.tags["registry_ui.stage"] == record.stage.value, (name, v.version, v.tags)
            assert v.current_stage == record.stage.legacy_name, (name, v.version, v.current_stage)
        legacy = Counter(v.current_stage for v in versions)
        assert legacy["Production"] <= 1 and legacy["Staging"] <= 1, (name, legacy)
        mirrored = dict(
            TemplateVersion.objects.filter(template__name=name).values_list("version", "stage")
        )
        assert mirrored == {r.version: r.stage.value for r in records}, name
        holders[name] = {a: by_number[n].tags[SEMVER_TAG] for a, n in aliases.items()}
        assert not AuditEvent.objects.filter(
            seq__gt=since, source="external", object_id__startswith=f"{name}@"
        ).exists(), f"{name}: registry_ui's own change audited as external"
    assert not Operation.objects.filter(status__in=["pending", "running"]).exists()
    assert verify_chain().problem is None
    return holders


# -- 1. a worker killed at every write boundary of a stage move -------------------------------

BOUNDARIES = [
    ("production alias written", ALIAS, "POST"),
    ("staging alias removed", ALIAS, "DELETE"),
    ("a stage tag written", TAG, "POST"),
    ("a legacy stage written", LEGACY, "POST"),
]


def kill_at(proxy, start_worker, path, method, after_forward):
    """Start a worker through the proxy, hold its first matching write (before or after
    the server applied it), SIGKILL the worker there, and start another one."""
    hold = proxy.hold(path, method=method, times=1, after_forward=after_forward, timeout=4)
    first = start_worker(mlflow_uri=proxy.url, extra_env=WORKER_ENV)
    return hold, first


def finish_after_kill(hold, first, start_worker, proxy) -> None:
    assert hold.wait_until_held(60), "the worker should reach the chosen write"
    first.kill()
    time.sleep(4.5)  # the held call is dropped: the killed worker never hears of it
    start_worker(mlflow_uri=proxy.url, extra_env=WORKER_ENV)


@pytest.mark.parametrize("after_forward", [False, True], ids=["before", "after"])
@pytest.mark.parametrize(("point", "path", "method"), BOUNDARIES, ids=[b[0] for b in BOUNDARIES])
def test_a_promotion_killed_at_a_write_boundary_ends_done(
    point, path, method, after_forward, start_worker, proxy, fast, users, mlflow_server,
    unique_name,
):  # fmt: skip
    name = unique_name()
    template(name, 2, [("1.0.0", "staging"), ("1.0.0", "production"), ("1.0.1", "staging")])
    since = last_seq()
    hold, first = kill_at(proxy, start_worker, path, method, after_forward)
    request = reviews.file_request(
        users["erin"], template_name=name, version="1.0.1", target="production", justification="j"
    )
    approve_all(users, request)

    finish_after_kill(hold, first, start_worker, proxy)
    sweep_until(
        lambda: PromotionRequest.objects.get(pk=request.pk).status != "executing",
        timeout=90,
        what="the request to finish after the kill",
    )

    request.refresh_from_db()
    assert (request.status, request.outcome) == ("done", "carried out")
    assert assert_converged(mlflow_server.url, [name], since=since)[name] == {"production": "1.0.1"}
    assert not TemplateFlag.objects.filter(template__name=name).exists()


def test_a_rollback_killed_at_random_write_boundaries_ends_done(
    start_worker, proxy, fast, users, mlflow_server, unique_name
):
    points = [b for b in BOUNDARIES if b[2] == "POST"]  # a rollback removes no alias
    rng = random.Random(14)
    for point, path, method in rng.sample(points, 2):
        name = unique_name()
        template(
            name,
            2,
            [
                ("1.0.0", "staging"),
                ("1.0.0", "production"),
                ("1.0.1", "staging"),
                ("1.0.1", "production"),
            ],
        )
        since = last_seq()
        hold, first = kill_at(proxy, start_worker, path, method, rng.random() < 0.5)
        request = reviews.file_rollback(
            users["bob"], template_name=name, version="1.0.0", reason="1.0.1 is broken"
        )
        if request.status == "open":
            reviews.approve(users["carol"], request.pk)

        finish_after_kill(hold, first, start_worker, proxy)
        sweep_until(
            lambda pk=request.pk: PromotionRequest.objects.get(pk=pk).status != "executing",
            timeout=90,
            what=f"the rollback killed at '{point}' to finish",
        )

        request.refresh_from_db()
        assert request.status == "done", (point, request.outcome)
        assert assert_converged(mlflow_server.url, [name], since=since)[name] == {
            "production": "1.0.0"
        }, point


def test_a_release_killed_at_random_write_boundaries_is_fully_applied(
    start_worker, proxy, fast, users, mlflow_server, unique_name
):
    rng = random.Random(1414)
    for point, path, method in rng.sample(BOUNDARIES, 2):
        a, b = unique_name("a"), unique_name("b")
        template(a, 2, [("1.0.0", "staging"), ("1.0.0", "production"), ("1.0.1", "staging")])
        template(b, 1)
        since = last_seq()
        hold, first = kill_at(proxy, start_worker, path, method, rng.random() < 0.5)
        release = releases.file_release(
            users["erin"],
            lines=[ReleaseLine(a, "1.0.1", "production"), ReleaseLine(b, "1.0.0", "staging")],
            justification="spring",
        )
        approve_all(users, release)

        finish_after_kill(hold, first, start_worker, proxy)
        sweep_until(
            lambda pk=release.pk: PromotionRequest.objects.get(pk=pk).status != "executing",
            timeout=120,
            what=f"the release killed at '{point}' to finish",
        )

        release.refresh_from_db()
        assert release.status == "done", (point, release.outcome, release.report)
        holders = assert_converged(mlflow_server.url, [a, b], since=since)
        assert holders == {a: {"production": "1.0.1"}, b: {"staging": "1.0.0"}}, point


# -- 2. a create answered after the client's timeout ------------------------------------------


def test_a_create_answered_after_the_timeout_makes_no_second_version(
    start_worker, proxy, fast, mlflow_server, unique_name
):
    names = [unique_name(f"late{i}") for i in range(2)]
    # Each create reaches the server at once; its answer comes 6 s later, after the
    # workers' 3 s timeout. MLflow's own client would send it again (4 of 6 doubled).
    proxy.answer_late("/model-versions/create", 6, method="POST", times=4)
    start_worker(mlflow_uri=proxy.url, extra_env=WORKER_ENV)
    batch = queue.batch_register(
        versions=[
            NewVersion(name, f"1.0.{i}", f"Hi {{x}} {i}", {"author": "a"})
            for name in names
            for i in range(3)
        ],
        actor="alice",
        against_mirror=True,
    )

    sweep_until(
        lambda: Batch.objects.get(pk=batch.pk).status in ("succeeded", "failed"),
        timeout=120,
        what="the batch with late answers",
    )

    batch.refresh_from_db()
    assert (batch.status, batch.succeeded) == ("succeeded", 6)
    assert Operation.objects.filter(batch=batch, attempts__gt=1).exists()
    assert_converged(mlflow_server.url, names, since=last_seq())
    # Each create went out once per attempt that needed it, never twice in one call.
    assert proxy.count("/model-versions/create") == 6


# -- 3. an alias moved by another program between approval and write --------------------------


def test_an_alias_moved_by_another_program_during_the_move_is_refused_and_flagged(
    start_worker, proxy, fast, users, mlflow_server, unique_name
):
    name = unique_name()
    template(name, 3, [("1.0.1", "staging")])
    # Hold the worker's compare-and-set read, just before its alias write.
    read = proxy.hold("/registered-models/get", method="GET", times=1, timeout=30)
    start_worker(mlflow_uri=proxy.url, extra_env=WORKER_ENV)
    request = reviews.file_request(
        users["erin"], template_name=name, version="1.0.2", target="staging", justification="j"
    )
    approve_all(users, request)
    assert read.wait_until_held(60)
    # Meanwhile another program, straight to the server, puts 1.0.0 in staging.
    plain_client(mlflow_server.url).set_registered_model_alias(
        to_registered_model_name(name), "staging", "1"
    )
    read.release()

    wait_for(
        lambda: PromotionRequest.objects.get(pk=request.pk).status != "executing",
        timeout=60,
        message=lambda: "the request to end",
    )

    request.refresh_from_db()
    assert request.status == "failed"
    assert "moved outside registry_ui" in request.outcome
    model = plain_client(mlflow_server.url).get_registered_model(to_registered_model_name(name))
    assert model.aliases == {"staging": "1"}  # not overwritten
    flag = TemplateFlag.objects.get(template__name=name, kind="write_refused")
    assert flag.version == "1.0.2"
    assert AuditEvent.objects.filter(
        action="version.stage_changed", source="external", object_id=f"{name}@1.0.0"
    ).exists()
    assert AuditEvent.objects.filter(action="template.flagged", object_id=name).exists()


# -- 4. a worker's database connection terminated mid-operation -------------------------------


def test_an_operation_whose_worker_lost_its_database_connection_is_taken_over(
    start_worker, proxy, fast, mlflow_server, unique_name
):
    if connection.vendor != "postgresql":
        pytest.skip("terminating another process's connection needs PostgreSQL (CI has it)")
    name = unique_name()
    held = proxy.hold("/model-versions/create", method="POST", times=1, timeout=60)
    start_worker(mlflow_uri=proxy.url, extra_env=WORKER_ENV)
    batch = queue.batch_register(
        versions=[NewVersion(name, "1.0.0", "Hi {x}", {"author": "a"})],
        actor="alice",
        against_mirror=True,
    )
    assert held.wait_until_held(60)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    terminated = time.monotonic()
    held.release()

    took = sweep_until(
        lambda: Batch.objects.get(pk=batch.pk).status == "succeeded",
        timeout=30,
        what="another attempt to take the operation over",
    )

    assert time.monotonic() - terminated <= 30
    operation = Operation.objects.get(batch=batch)
    assert operation.attempts >= 2, operation.last_error
    assert took <= 30
    assert_converged(mlflow_server.url, [name], since=last_seq())


# -- 5. MLflow down, then slow ----------------------------------------------------------------


def test_a_release_rides_out_a_short_mlflow_outage(
    start_worker, proxy, fast, users, mlflow_server, unique_name
):
    a, b = unique_name("a"), unique_name("b")
    template(a, 2, [("1.0.0", "staging")])
    template(b, 2, [("1.0.0", "staging")])
    since = last_seq()
    # The first alias write of the release meets MLflow answering 503 for 8 s.
    outage = proxy.hold(ALIAS, method="POST", times=1, timeout=30)
    start_worker(mlflow_uri=proxy.url, extra_env=WORKER_ENV)
    release = releases.file_release(
        users["erin"],
        lines=[ReleaseLine(a, "1.0.1", "staging"), ReleaseLine(b, "1.0.1", "staging")],
        justification="spring",
    )
    approve_all(users, release)
    assert outage.wait_until_held(60)
    proxy.fail("/api/2.0/mlflow/", 503, for_seconds=8)
    outage.release()  # goes on into the outage

    sweep_until(
        lambda: PromotionRequest.objects.get(pk=release.pk).status != "executing",
        timeout=90,
        what="the release after the outage",
    )

    release.refresh_from_db()
    assert release.status == "done", (release.outcome, release.report)
    assert Operation.objects.get(request=release).attempts >= 2
    assert assert_converged(mlflow_server.url, [a, b], since=since) == {
        a: {"staging": "1.0.1"},
        b: {"staging": "1.0.1"},
    }


def test_mlflow_down_for_a_minute_then_slow_for_two_everything_finishes_after_recovery(
    start_worker, proxy, fast, users, alice, client, mlflow_server, unique_name
):
    names = [unique_name(f"slow{i}") for i in range(3)]
    for name in names:
        template(name, 1)
    since = last_seq()
    patient = {
        **WORKER_ENV,
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
        "OPERATION_RETRY_MAX_SECONDS": "16",
        "OPERATION_MAX_RETRIES": "12",
    }
    start_worker(mlflow_uri=proxy.url, extra_env=patient)
    down = proxy.fail("/api/2.0/mlflow/", 503, for_seconds=60)
    batch = queue.batch_register(
        versions=[NewVersion(name, "1.0.1", "Hello {x}", {"author": "a"}) for name in names],
        actor="alice",
        against_mirror=True,
    )
    moves = queue.batch_transition(
        moves=[(name, "1.0.0", "staging") for name in names], actor="bob"
    )

    # While MLflow is down: pages and the editor answer, without calling MLflow.
    client.force_login(alice)
    gateway = get_registry().gateway  # this process's: what the pages would call MLflow with
    calls = gateway.calls
    for page in ["/", f"/templates/{names[0]}", f"/operations/batches/{batch.pk}", "/operations/"]:
        assert client.get(page).status_code == 200, page
    response = client.post(
        "/versions/new",
        {"name": names[1], "version": "1.1.0", "template": "Hey {x}", "metadata": "{}"},
    )
    assert response.status_code == 303
    assert gateway.calls == calls, "a page or the editor called MLflow"
    time.sleep(20)
    # Backing off (1, 2, 4, 8 s, each after ~2 s of read retries): a few attempts, not one
    # every sweep or every second.
    attempts = list(Operation.objects.filter(batch=batch).values_list("attempts", flat=True))
    assert all(2 <= n <= 6 for n in attempts), attempts

    # Then slow: every call answered 5 to 12 s late, for two minutes.
    wait_for(lambda: down.expired(time.monotonic()), timeout=60, interval=1)
    proxy.delay(re.compile("create|alias|transition"), 12, for_seconds=120)
    proxy.delay("/api/2.0/mlflow/", 5, for_seconds=120)

    sweep_until(
        lambda: (
            all(
                b.status in ("succeeded", "failed")
                for b in Batch.objects.filter(pk__in=[batch.pk, moves.pk])
            )
            and not Operation.objects.filter(status__in=["pending", "running"]).exists()
        ),
        timeout=420,
        what="every operation after MLflow recovered",
    )

    assert set(Batch.objects.values_list("status", flat=True)) == {"succeeded"}
    tried = Operation.objects.filter(batch__in=[batch, moves]).values_list("attempts", flat=True)
    assert max(tried) >= 3, list(tried)  # they retried, with backoff, and did not give up
    holders = assert_converged(mlflow_server.url, names, since=since)
    assert all(h == {"staging": "1.0.0"} for h in holders.values()), holders
