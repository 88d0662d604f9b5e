"""A fault-injecting HTTP proxy between MLflow's client and a real `mlflow server`.

Tests point MLflow at the proxy instead of the server, then hold, delay or fail chosen
calls; nothing in the client is mocked::

    with FaultProxy(mlflow_server.url) as proxy:
        client = MlflowClient(tracking_uri=proxy.url, registry_uri=proxy.url)
        proxy.fail("model-versions/create", status=503, times=1)  # the next create only
        hold = proxy.hold("registered-models/alias", method="POST")
        ...                                 # start the call in a thread (or a worker)
        assert hold.wait_until_held(5)      # it reached the proxy, not the server
        hold.release()                      # now it goes on to the server
        assert proxy.count("model-versions/create") == 2

Celery workers started by a test (subprocesses) use it through
``MLFLOW_TRACKING_URI=proxy.url``; the proxy itself runs in threads of the test process.

Rules (``fail``, ``delay``, ``answer_late``, ``drop``, ``hold``) are tried in the order they
were added; the first that matches a request applies to it, and only that one. A rule
matches on the method (optional, any case) and on the request target as sent (the path,
with the query string of GETs): a ``str`` must occur in it, a compiled ``re.Pattern`` is
searched in it. A rule applies to the next ``times`` matching calls (all of them when
``times`` is None) and, with ``for_seconds``, only for that long; ``rule.remove()`` or
``proxy.clear()`` end it earlier.

Every call is recorded in ``proxy.calls`` as ``Call(method, path, outcome, at)``, from the
moment it arrives: ``outcome`` is the status sent to the client (an int: forwarded from the
server, or injected by ``fail``), or while the call is in flight "pending" / "held", or
"dropped" (closed without an answer, not forwarded), "dropped-after-forward" (the server
got it, the client got nothing), "hold-expired" (held past its limit, then dropped),
"rejected" (a request this proxy cannot parse or forward, answered 400/501 and closed).
A late answer is recorded with its status even if the client had hung up by then.

The proxy speaks HTTP/1.1 with keep-alive to the client (MLflow pools its connections) and
replays each request to the server over http.client, reusing an upstream connection only
while it is fresh. It never sends a request upstream twice: if the server cannot be
reached, the client gets a 502. Chunked request bodies (MLflow's client never sends them)
are refused with a 501.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

# Headers that belong to one connection, not to the request or response (RFC 9110 7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# An upstream connection idle longer than this is not reused: uvicorn closes idle
# keep-alive connections after 5 s, and a request sent into that close would be lost.
UPSTREAM_IDLE_REUSE_SECONDS = 1.0
MAX_LINE = 65536

PENDING = "pending"
HELD = "held"
DROPPED = "dropped"
DROPPED_AFTER_FORWARD = "dropped-after-forward"
HOLD_EXPIRED = "hold-expired"
REJECTED = "rejected"


class Call(NamedTuple):
    method: str
    path: str  # the request target as sent: path and, for GETs, the query string
    outcome: int | str  # the status sent to the client, or what happened instead
    at: float  # time.time() when the request arrived


@dataclass(eq=False)
class Rule:
    """One fault: made by FaultProxy.fail/delay/answer_late/drop/hold, not directly."""

    proxy: FaultProxy = field(repr=False)
    action: str  # "fail", "delay", "answer_late", "drop", "hold"
    path: str | re.Pattern
    method: str | None = None
    times: int | None = None  # calls left; None for every matching call
    expires_at: float | None = None  # time.monotonic() deadline
    seconds: float = 0.0  # delay / answer_late
    status: int = 503  # fail
    body: bytes = b""  # fail
    headers: dict[str, str] = field(default_factory=dict)  # fail
    after_forward: bool = False  # drop / hold
    hold_timeout: float = 60.0  # hold: a call held this long is dropped
    hits: int = 0  # calls this rule applied to
    _released: threading.Event = field(default_factory=threading.Event, repr=False)
    _arrivals: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def matches(self, method: str, target: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if isinstance(self.path, re.Pattern):
            return self.path.search(target) is not None
        return self.path in target

    def expired(self, now: float) -> bool:
        return (self.times is not None and self.times <= 0) or (
            self.expires_at is not None and now >= self.expires_at
        )

    def remove(self) -> None:
        self.proxy.remove(self)

    # --- holds -------------------------------------------------------------------------

    def wait_until_held(self, timeout: float = 10.0, count: int = 1) -> bool:
        """True once ``count`` calls (in all) have been caught by this hold rule."""
        with self._arrivals:
            return self._arrivals.wait_for(lambda: self.hits >= count, timeout)

    def release(self) -> None:
        """Let every call held by this rule go on, and stop holding later ones."""
        self._released.set()

    @property
    def released(self) -> bool:
        return self._released.is_set()

    def _arrived(self) -> None:
        with self._arrivals:
            self._arrivals.notify_all()


@dataclass(eq=False)
class _Record:
    method: str
    path: str
    at: float
    outcome: int | str = PENDING

    def snapshot(self) -> Call:
        return Call(self.method, self.path, self.outcome, self.at)


class _Request(NamedTuple):
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    keep_alive: bool


class _Response(NamedTuple):
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    close_upstream: bool


class _BadRequest(Exception):
    def __init__(self, status: int, message: str, method: str = "?", target: str = "?"):
        super().__init__(message)
        self.status = status
        self.method = method
        self.target = target


class _Gone(Exception):
    """The client connection is closed or being closed: stop serving it."""


class FaultProxy:
    """An HTTP/1.1 proxy on 127.0.0.1 that forwards to ``upstream_url`` and injects faults."""

    def __init__(self, upstream_url: str, *, upstream_timeout: float = 60.0):
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"FaultProxy forwards to http:// URLs only, not {upstream_url!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.upstream_netloc = parts.netloc
        self.upstream_timeout = upstream_timeout
        self._lock = threading.Lock()
        self._calls_changed = threading.Condition(self._lock)
        self._rules: list[Rule] = []
        self._records: list[_Record] = []
        self._clients: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self.port: int | None = None
        self.connections = 0  # client connections accepted (keep-alive keeps this low)

    # --- life cycle --------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("FaultProxy not started")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        if self._listener is not None:
            raise RuntimeError("FaultProxy already started")
        self._stopping.clear()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"fault-proxy-{self.port}", daemon=True
        )
        self._accept_thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and every client connection; held calls are dropped."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        self._stopping.set()
        _shutdown(listener)
        listener.close()
        with self._lock:
            clients = list(self._clients)
            threads = list(self._threads)
            rules = list(self._rules)
        for rule in rules:
            rule._released.set()  # wake held calls; they see the proxy stopping and drop
        for sock in clients:
            _shutdown(sock)
        if self._accept_thread is not None:
            self._accept_thread.join(timeout)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- rules -------------------------------------------------------------------------

    def fail(
        self,
        path: str | re.Pattern,
        status: int = 503,
        body: str | bytes | dict | None = None,
        *,
        method: str | None = None,
        times: int | None = None,
        for_seconds: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> Rule:
        """Answer matching calls with ``status`` and ``body`` without forwarding them.

        The default body is an MLflow-style JSON error; a dict is sent as JSON.
        """
        if body is None:
            body = {
                "error_code": "TEMPORARILY_UNAVAILABLE",
                "message": f"fault_proxy: injected {status}",
            }
        content_type = "application/json"
        if isinstance(body, dict):
            payload = json.dumps(body).encode()
        elif isinstance(body, str):
            payload = body.encode()
            content_type = "text/plain; charset=utf-8"
        else:
            payload = bytes(body)
            content_type = "application/octet-stream"
        all_headers = {"Content-Type": content_type, **(headers or {})}
        return self._add(
            "fail",
            path,
            method,
            times,
            for_seconds,
            status=status,
            body=payload,
            headers=all_headers,
        )

    def delay(
        self,
        path: str | re.Pattern,
        seconds: float,
        *,
        method: str | None = None,
        times: int | None = None,
        for_seconds: float | None = None,
    ) -> Rule:
        """Wait ``seconds``, then forward (the server sees the call late)."""
        return self._add("delay", path, method, times, for_seconds, seconds=seconds)

    def answer_late(
        self,
        path: str | re.Pattern,
        seconds: float,
        *,
        method: str | None = None,
        times: int | None = None,
        for_seconds: float | None = None,
    ) -> Rule:
        """Forward at once (the write takes effect), then wait ``seconds`` before answering:
        an answer that arrives after the client's timeout."""
        return self._add("answer_late", path, method, times, for_seconds, seconds=seconds)

    def drop(
        self,
        path: str | re.Pattern,
        *,
        after_forward: bool = False,
        method: str | None = None,
        times: int | None = None,
        for_seconds: float | None = None,
    ) -> Rule:
        """Close the client's connection without an answer; with ``after_forward`` the call
        reaches the server first (its effect happens, its answer is lost)."""
        return self._add("drop", path, method, times, for_seconds, after_forward=after_forward)

    def hold(
        self,
        path: str | re.Pattern,
        *,
        after_forward: bool = False,
        method: str | None = None,
        times: int | None = None,
        for_seconds: float | None = None,
        timeout: float = 60.0,
    ) -> Rule:
        """Block matching calls until ``release()`` on the returned rule: before forwarding,
        or with ``after_forward`` after the server answered (the answer is held back).

        ``rule.wait_until_held(timeout)`` tells that a call got there. A call still held
        after ``timeout`` seconds is dropped, so a test that forgets to release fails
        instead of hanging.
        """
        return self._add(
            "hold",
            path,
            method,
            times,
            for_seconds,
            after_forward=after_forward,
            hold_timeout=timeout,
        )

    def remove(self, rule: Rule) -> None:
        with self._lock:
            if rule in self._rules:
                self._rules.remove(rule)
        if rule.action == "hold":
            rule._released.set()

    def clear(self) -> None:
        """Remove every rule (held calls are released)."""
        with self._lock:
            rules, self._rules = self._rules, []
        for rule in rules:
            if rule.action == "hold":
                rule._released.set()

    @property
    def rules(self) -> list[Rule]:
        with self._lock:
            return list(self._rules)

    def _add(self, action, path, method, times, for_seconds, **params) -> Rule:
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for every call)")
        expires_at = None if for_seconds is None else time.monotonic() + for_seconds
        rule = Rule(self, action, path, method=method, times=times, expires_at=expires_at, **params)
        with self._lock:
            self._rules.append(rule)
        return rule

    def _take_rule(self, method: str, target: str) -> Rule | None:
        now = time.monotonic()
        with self._lock:
            self._rules = [rule for rule in self._rules if not rule.expired(now)]
            for rule in self._rules:
                if rule.matches(method, target):
                    rule.hits += 1
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times <= 0:
                            self._rules.remove(rule)
                    return rule
        return None

    # --- calls -------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return [record.snapshot() for record in self._records]

    def count(self, path_substring: str = "", method: str | None = None) -> int:
        """Calls (in flight included) whose path contains ``path_substring``."""
        with self._lock:
            return sum(1 for record in self._records if _counts(record, path_substring, method))

    def wait_for_count(
        self, path_substring: str, count: int, *, method: str | None = None, timeout: float = 10
    ) -> bool:
        """True once at least ``count`` matching calls have arrived (see ``count``)."""
        with self._calls_changed:
            return self._calls_changed.wait_for(
                lambda: (
                    sum(1 for r in self._records if _counts(r, path_substring, method)) >= count
                ),
                timeout,
            )

    def reset_calls(self) -> None:
        with self._lock:
            self._records = []

    def _record(self, method: str, target: str) -> _Record:
        record = _Record(method, target, time.time())
        with self._calls_changed:
            self._records.append(record)
            self._calls_changed.notify_all()
        return record

    def _set_outcome(self, record: _Record, outcome: int | str) -> None:
        with self._calls_changed:
            record.outcome = outcome
            self._calls_changed.notify_all()

    # --- serving -----------------------------------------------------------------------

    def _accept_loop(self) -> None:
        listener = self._listener
        while listener is not None and not self._stopping.is_set():
            try:
                sock, _ = listener.accept()
            except OSError:
                return  # the listener was closed by stop()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            thread = threading.Thread(
                target=self._serve_client, args=(sock,), name="fault-proxy-client", daemon=True
            )
            with self._lock:
                if self._stopping.is_set():
                    sock.close()
                    return
                self._clients.add(sock)
                self._threads.add(thread)
                self.connections += 1
            thread.start()

    def _serve_client(self, sock: socket.socket) -> None:
        upstream = _Upstream(self)
        rfile = sock.makefile("rb")
        try:
            while not self._stopping.is_set():
                try:
                    request = _read_request(rfile)
                except _BadRequest as error:
                    self._reject(sock, error)
                    return
                if request is None:
                    return  # the client closed its keep-alive connection
                if not self._handle(sock, request, upstream):
                    return
        except (_Gone, OSError):
            return
        finally:
            upstream.close()
            rfile.close()
            _shutdown(sock)
            sock.close()
            with self._lock:
                self._clients.discard(sock)
                self._threads.discard(threading.current_thread())

    def _handle(self, sock: socket.socket, request: _Request, upstream: _Upstream) -> bool:
        """Serve one request; False when the client connection is to be closed."""
        record = self._record(request.method, request.target)
        rule = self._take_rule(request.method, request.target)
        action = rule.action if rule else None
        logger.debug("fault_proxy %s %s -> %s", request.method, request.target, action)

        if action == "fail":
            self._send(sock, record, rule.status, rule.body, rule.headers, request.keep_alive)
            return request.keep_alive
        if action == "drop" and not rule.after_forward:
            self._set_outcome(record, DROPPED)
            return False
        if action == "delay" and self._stopping.wait(rule.seconds):
            raise _Gone
        if action == "hold" and not rule.after_forward and not self._wait_held(rule, record):
            return False

        try:
            response = upstream.forward(request)
        except (OSError, http.client.HTTPException) as error:
            logger.warning("fault_proxy: upstream failed for %s: %r", request.target, error)
            body = json.dumps(
                {
                    "error_code": "BAD_GATEWAY",
                    "message": f"fault_proxy: upstream failed: {error!r}",
                }
            ).encode()
            headers = {"Content-Type": "application/json"}
            self._send(sock, record, 502, body, headers, request.keep_alive)
            return request.keep_alive

        if action == "drop":
            self._set_outcome(record, DROPPED_AFTER_FORWARD)
            return False
        if action == "answer_late" and self._stopping.wait(rule.seconds):
            raise _Gone
        if action == "hold" and not self._wait_held(rule, record):
            return False

        headers = [(k, v) for k, v in response.headers if k.lower() not in HOP_BY_HOP]
        no_body = request.method == "HEAD" or response.status in (204, 304)
        if not no_body:
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        self._send(
            sock,
            record,
            response.status,
            response.body,
            headers,
            request.keep_alive,
            reason=response.reason,
            content_length=not no_body,
        )
        return request.keep_alive

    def _wait_held(self, rule: Rule, record: _Record) -> bool:
        """Hold until released; False if the call is to be dropped instead."""
        self._set_outcome(record, HELD)
        rule._arrived()
        released = rule._released.wait(rule.hold_timeout)
        if self._stopping.is_set():
            self._set_outcome(record, DROPPED)
            return False
        if not released:
            logger.warning("fault_proxy: %s held %.0fs, dropped", record.path, rule.hold_timeout)
            self._set_outcome(record, HOLD_EXPIRED)
            return False
        self._set_outcome(record, PENDING)
        return True

    def _send(
        self,
        sock: socket.socket,
        record: _Record,
        status: int,
        body: bytes,
        headers,
        keep_alive: bool,
        *,
        reason: str | None = None,
        content_length: bool = True,
        outcome: int | str | None = None,
    ) -> None:
        """Write a whole response. A client that has gone away is not an error here."""
        items = list(headers.items()) if isinstance(headers, dict) else list(headers)
        if content_length:
            items.append(("Content-Length", str(len(body))))
        items.append(("Connection", "keep-alive" if keep_alive else "close"))
        reason = reason if reason is not None else _reason(status)
        head = f"HTTP/1.1 {status} {reason}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in items) + "\r\n"
        self._set_outcome(record, status if outcome is None else outcome)
        try:
            sock.sendall(head.encode("latin-1") + (body if content_length else b""))
        except OSError as error:  # BrokenPipe, ConnectionReset: the client hung up
            logger.debug("fault_proxy: client gone before %s answer: %r", record.path, error)
            raise _Gone from error

    def _reject(self, sock: socket.socket, error: _BadRequest) -> None:
        logger.warning("fault_proxy: refused a request: %s", error)
        record = self._record(error.method, error.target)
        body = f"fault_proxy: {error}\n".encode()
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        with contextlib.suppress(_Gone):
            self._send(
                sock, record, error.status, body, headers, keep_alive=False, outcome=REJECTED
            )
        _drain(sock)


class _Upstream:
    """The upstream connection of one client connection, reused only while fresh."""

    def __init__(self, proxy: FaultProxy):
        self.proxy = proxy
        self.connection: http.client.HTTPConnection | None = None
        self.last_used = 0.0

    def forward(self, request: _Request) -> _Response:
        stale = time.monotonic() - self.last_used > UPSTREAM_IDLE_REUSE_SECONDS
        if self.connection is not None and stale:
            self.close()
        if self.connection is None:
            self.connection = http.client.HTTPConnection(
                self.proxy.upstream_host,
                self.proxy.upstream_port,
                timeout=self.proxy.upstream_timeout,
            )
        connection = self.connection
        try:
            connection.putrequest(
                request.method, request.target, skip_host=True, skip_accept_encoding=True
            )
            connection.putheader("Host", self.proxy.upstream_netloc)
            for name, value in request.headers:
                if name.lower() not in HOP_BY_HOP and name.lower() not in ("host", "expect"):
                    connection.putheader(name, value)
            if request.body and not _has(request.headers, "content-length"):
                connection.putheader("Content-Length", str(len(request.body)))
            connection.endheaders(request.body or None)
            response = connection.getresponse()
            body = response.read()  # Content-Length, chunked or close-delimited
        except BaseException:
            self.close()
            raise
        self.last_used = time.monotonic()
        result = _Response(
            response.status, response.reason, response.getheaders(), body, response.will_close
        )
        if response.will_close:
            self.close()
        return result

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def _read_request(rfile) -> _Request | None:
    """The next request on a client connection, or None if the client closed it."""
    line = rfile.readline(MAX_LINE + 1)
    while line in (b"\r\n", b"\n"):  # stray CRLF between requests (RFC 9112 2.2)
        line = rfile.readline(MAX_LINE + 1)
    if not line:
        return None
    if len(line) > MAX_LINE:
        raise _BadRequest(414, "request line too long")
    try:
        method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ")
    except ValueError:
        raise _BadRequest(400, f"malformed request line {line[:200]!r}") from None
    if not version.startswith("HTTP/1."):
        raise _BadRequest(505, f"unsupported HTTP version {version!r}")
    try:
        message = http.client.parse_headers(rfile)
    except http.client.HTTPException as error:
        raise _BadRequest(431, f"bad request headers: {error!r}") from None
    headers = list(message.items())
    if _has(headers, "transfer-encoding"):
        raise _BadRequest(
            501,
            f"{method} {target}: Transfer-Encoding request bodies (chunked) are not supported; "
            "send a Content-Length body",
            method,
            target,
        )
    length = _get(headers, "content-length")
    body = b""
    if length is not None:
        try:
            size = int(length)
        except ValueError:
            raise _BadRequest(400, f"bad Content-Length {length!r}") from None
        body = rfile.read(size)
        if len(body) < size:
            raise _Gone  # the client closed in the middle of the body
    tokens = {t.strip().lower() for t in (_get(headers, "connection") or "").split(",")}
    keep_alive = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
    return _Request(method, target, version, headers, body, keep_alive)


def _has(headers: list[tuple[str, str]], name: str) -> bool:
    return _get(headers, name) is not None


def _get(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _counts(record: _Record, path_substring: str, method: str | None) -> bool:
    if method is not None and record.method.upper() != method.upper():
        return False
    return path_substring in record.path


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Injected"


def _drain(sock: socket.socket, seconds: float = 1.0) -> None:
    """Half-close, then read what the client still sends (an unread body) until it closes:
    closing with unread data would reset the connection and lose the answer just sent."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(seconds)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and sock.recv(65536):
            pass


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
