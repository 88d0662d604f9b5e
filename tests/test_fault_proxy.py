"""tests/support/fault_proxy.py between a real MlflowClient and the session's `mlflow server`.

Each test talks to MLflow through the proxy and checks the server directly, so what the
proxy did to a call (held, failed, answered late, dropped) is seen from both ends.
"""

from __future__ import annotations

import http.client
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tests.support.fault_proxy import DROPPED, DROPPED_AFTER_FORWARD, HELD, FaultProxy

pytestmark = pytest.mark.mlflow_server

ALIAS = "/api/2.0/mlflow/registered-models/alias"
SET_MODEL_TAG = "/api/2.0/mlflow/registered-models/set-tag"
GET_MODEL = "/api/2.0/mlflow/registered-models/get"
CREATE_VERSION = "/api/2.0/mlflow/model-versions/create"


@pytest.fixture
def fail_fast(monkeypatch):
    """No HTTP retries in MLflow's client, as registry_ui runs it (gateway.HTTP_MAX_RETRIES).

    MLflow reads these variables on every call and keeps one requests.Session per retry
    policy and process (an lru_cache keyed by max_retries, backoff, ...), so changing them
    picks another session; nothing needs resetting.
    """
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


@pytest.fixture
def proxy(mlflow_server):
    with FaultProxy(mlflow_server.url) as running:
        yield running


@pytest.fixture
def client(proxy, fail_fast):
    return MlflowClient(tracking_uri=proxy.url, registry_uri=proxy.url)


@pytest.fixture
def direct(mlflow_server):
    """A client straight to the server: what really happened there."""
    return MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)


@pytest.fixture
def model(direct):
    name = f"fault-proxy-{uuid.uuid4().hex[:10]}"
    direct.create_registered_model(name)
    return name


def new_version(direct: MlflowClient, name: str) -> str:
    run = direct.create_run("0")
    source = f"runs:/{run.info.run_id}/model"
    return direct.create_model_version(name, source, run_id=run.info.run_id).version


def test_calls_pass_through_unchanged_on_one_kept_alive_connection(proxy, client, direct):
    name = f"fault-proxy-{uuid.uuid4().hex[:10]}"
    client.create_registered_model(name, tags={"team": "a"}, description="through the proxy")
    for value in ("1", "2", "3"):
        client.set_registered_model_tag(name, "round", value)

    seen = client.get_registered_model(name)
    assert seen.description == "through the proxy"
    assert seen.tags == {"team": "a", "round": "3"}
    assert direct.get_registered_model(name).tags == {"team": "a", "round": "3"}
    assert proxy.count("registered-models/create", method="POST") == 1
    assert proxy.count(SET_MODEL_TAG) == 3
    assert {call.outcome for call in proxy.calls} == {200}
    assert proxy.connections == 1  # the client's pooled connection was kept alive


def test_fail_answers_without_forwarding_and_leaves_other_paths_alone(proxy, client, direct, model):
    rule = proxy.fail(SET_MODEL_TAG, status=503, times=1)

    with pytest.raises(MlflowException, match="503"):
        client.set_registered_model_tag(model, "k", "v")
    assert direct.get_registered_model(model).tags == {}
    assert client.get_registered_model(model).name == model  # another path: forwarded
    assert [(c.method, c.outcome) for c in proxy.calls if SET_MODEL_TAG in c.path] == [
        ("POST", 503)
    ]
    assert rule.hits == 1 and rule not in proxy.rules  # times=1: used up

    client.set_registered_model_tag(model, "k", "v")
    assert direct.get_registered_model(model).tags == {"k": "v"}
    assert proxy.count(SET_MODEL_TAG) == 2


def test_hold_keeps_an_alias_from_the_server_until_released(proxy, client, direct, model):
    version = new_version(direct, model)
    hold = proxy.hold(ALIAS, method="POST")
    errors = []

    def set_alias():
        try:
            client.set_registered_model_alias(model, "champion", version)
        except Exception as error:  # reported by the assertion below
            errors.append(error)

    caller = threading.Thread(target=set_alias)
    caller.start()
    try:
        assert hold.wait_until_held(10)
        time.sleep(0.3)
        assert caller.is_alive()
        assert direct.get_registered_model(model).aliases == {}
        assert [c.outcome for c in proxy.calls if ALIAS in c.path] == [HELD]
    finally:
        hold.release()
        caller.join(10)
    assert not caller.is_alive() and errors == []
    assert direct.get_registered_model(model).aliases == {"champion": version}
    assert [c.outcome for c in proxy.calls if ALIAS in c.path] == [200]


def test_hold_after_forward_lets_the_write_land_but_keeps_its_answer(proxy, client, direct, model):
    version = new_version(direct, model)
    hold = proxy.hold(ALIAS, method="POST", after_forward=True)
    caller = threading.Thread(
        target=client.set_registered_model_alias, args=(model, "champion", version)
    )
    caller.start()
    try:
        assert hold.wait_until_held(10)
        assert direct.get_registered_model(model).aliases == {"champion": version}
        assert caller.is_alive()
    finally:
        hold.release()
        caller.join(10)
    assert not caller.is_alive()


def test_answer_late_times_the_client_out_after_the_write_took_effect(
    proxy, client, direct, model, monkeypatch
):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    proxy.answer_late(SET_MODEL_TAG, 3)

    started = time.monotonic()
    with pytest.raises(MlflowException, match="timeout"):
        client.set_registered_model_tag(model, "written", "yes")
    assert time.monotonic() - started < 2.5
    assert direct.get_registered_model(model).tags == {"written": "yes"}
    assert proxy.count(SET_MODEL_TAG) == 1  # sent once: no retry


def test_mlflow_retries_a_create_answered_late_and_creates_the_version_twice(
    proxy, direct, model, monkeypatch
):
    """Why registry_ui runs MLflow's client with no HTTP retries (gateway.HTTP_MAX_RETRIES):
    urllib3 retries a read timeout for every method, so a POST answered late is sent again."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    client = MlflowClient(tracking_uri=proxy.url, registry_uri=proxy.url)
    run = direct.create_run("0")
    proxy.answer_late(CREATE_VERSION, 2, times=1)

    created = client.create_model_version(model, f"runs:/{run.info.run_id}/m", run.info.run_id)

    assert proxy.count(CREATE_VERSION) == 2
    assert created.version == "2"
    assert sorted(v.version for v in direct.search_model_versions(f"name='{model}'")) == [
        "1",
        "2",
    ]


def test_a_rule_for_seconds_expires(proxy, client, direct, model):
    rule = proxy.fail(SET_MODEL_TAG, status=503, for_seconds=1.0)

    for _ in range(2):
        with pytest.raises(MlflowException, match="503"):
            client.set_registered_model_tag(model, "k", "v")
    time.sleep(1.1)
    client.set_registered_model_tag(model, "k", "v")

    assert direct.get_registered_model(model).tags == {"k": "v"}
    assert rule.hits == 2 and rule not in proxy.rules
    assert [c.outcome for c in proxy.calls if SET_MODEL_TAG in c.path] == [503, 503, 200]


def test_drop_closes_the_connection_before_or_after_forwarding(proxy, client, direct, model):
    proxy.drop(SET_MODEL_TAG, times=1)
    with pytest.raises(MlflowException, match="Connection aborted"):
        client.set_registered_model_tag(model, "before", "x")
    assert direct.get_registered_model(model).tags == {}

    proxy.drop(SET_MODEL_TAG, after_forward=True, times=1)
    with pytest.raises(MlflowException, match="Connection aborted"):
        client.set_registered_model_tag(model, "after", "x")
    assert direct.get_registered_model(model).tags == {"after": "x"}

    client.set_registered_model_tag(model, "then", "x")  # on a new connection
    assert direct.get_registered_model(model).tags == {"after": "x", "then": "x"}
    assert [c.outcome for c in proxy.calls if SET_MODEL_TAG in c.path] == [
        DROPPED,
        DROPPED_AFTER_FORWARD,
        200,
    ]


def test_clear_removes_every_rule_and_counts_go_on(proxy, client, model):
    proxy.fail(GET_MODEL, status=500)
    proxy.delay("experiments", 5)
    proxy.clear()

    assert proxy.rules == []
    assert client.get_registered_model(model).name == model
    assert proxy.count(GET_MODEL, method="GET") == 1
    assert proxy.count(GET_MODEL, method="POST") == 0


# --- the HTTP framing, against a small upstream of our own --------------------------------


class _Framings(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/until-close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"read until the server closes")
            self.close_connection = True
        else:
            self.send_response(204)
            self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def framing_proxy():
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Framings)
    thread = threading.Thread(target=upstream.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        with FaultProxy(f"http://127.0.0.1:{upstream.server_port}") as proxy:
            yield proxy
    finally:
        upstream.shutdown()
        upstream.server_close()


def test_chunked_and_close_delimited_answers_reach_the_client_on_a_kept_alive_connection(
    framing_proxy,
):
    connection = http.client.HTTPConnection("127.0.0.1", framing_proxy.port, timeout=5)
    try:
        for path, body in [
            ("/chunked", b"hello chunked world"),
            ("/until-close", b"read until the server closes"),
            ("/empty", b""),
            ("/chunked", b"hello chunked world"),
        ]:
            connection.request("GET", path)
            response = connection.getresponse()
            assert response.read() == body
            assert not response.will_close
    finally:
        connection.close()
    assert framing_proxy.connections == 1
    assert [call.outcome for call in framing_proxy.calls] == [200, 200, 204, 200]


def test_a_chunked_request_body_is_refused_clearly(framing_proxy):
    connection = http.client.HTTPConnection("127.0.0.1", framing_proxy.port, timeout=5)
    try:
        connection.request("POST", "/anything", body=iter([b"a", b"b"]), encode_chunked=True)
        response = connection.getresponse()
        assert response.status == 501
        assert b"chunked" in response.read()
        assert response.will_close
    finally:
        connection.close()
    assert [(c.method, c.path, c.outcome) for c in framing_proxy.calls] == [
        ("POST", "/anything", "rejected")
    ]
