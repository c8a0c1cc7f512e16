"""Central against a hostile network: bodies over the limit refused before anything reads them, and
the public routes rate-limited per client address (central/limits.py).

In-process through Starlette's TestClient, on the ASGI calls themselves (to count what is read),
and on a real uvicorn over loopback with raw sockets, where a sender declares a megabyte and
sends a few bytes of it: the 413 comes back without the rest ever being sent.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI, Request
from starlette.testclient import TestClient      # on httpx2 (the `dev` extra)

from central import limits
from central.app import create_app
from central.server import RunningCentral, start_in_thread
from kiosk import wire


LIMIT = limits.DEFAULT_BODY_LIMIT
TOO_LARGE = {"status": "error", "reason": "body_too_large"}
RATE_LIMITED = {"status": "error", "reason": "rate_limited"}


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- RateLimiter ----------------------------------------------------------------------------

def test_a_burst_is_allowed_then_the_next_request_waits_for_a_token() -> None:
    clock = Clock()
    limiter = limits.RateLimiter(2.0, 3, clock=clock)
    assert [limiter.take("kiosk-01") for _ in range(3)] == [None, None, None]
    assert limiter.take("kiosk-01") == pytest.approx(0.5)
    clock.now += 0.25
    assert limiter.take("kiosk-01") == pytest.approx(0.25)       # a refusal spends nothing
    clock.now += 0.25
    assert limiter.take("kiosk-01") is None
    assert limiter.take("kiosk-01") == pytest.approx(0.5)


def test_a_quiet_key_gets_its_burst_back_but_never_more() -> None:
    clock = Clock()
    limiter = limits.RateLimiter(1.0, 2, clock=clock)
    assert [limiter.take("k") for _ in range(3)][-1] is not None
    clock.now += 3600
    assert [limiter.take("k") for _ in range(3)] == [None, None, pytest.approx(1.0)]


def test_keys_have_buckets_of_their_own() -> None:
    limiter = limits.RateLimiter(1.0, 1, clock=Clock())
    assert limiter.take("kiosk-01") is None and limiter.take("kiosk-01") is not None
    assert limiter.take("kiosk-02") is None


def test_memory_is_bounded_the_key_heard_from_least_recently_goes() -> None:
    limiter = limits.RateLimiter(1.0, 1, max_keys=3, clock=Clock())
    for key in ("a", "b", "c"):
        assert limiter.take(key) is None
    assert limiter.take("a") is not None                          # "a" heard from again: "b" is now the oldest
    assert limiter.take("d") is None
    assert len(limiter) == 3
    assert limiter.take("b") is None                              # forgotten: a full bucket again
    assert limiter.take("a") is not None                          # remembered: still empty
    for key in range(10_000):
        limiter.take(key)
    assert len(limiter) == 3


@pytest.mark.parametrize("rate, burst, max_keys", [(0, 1, 1), (-1, 1, 1), (1, 0, 1), (1, 1, 0)])
def test_a_limiter_that_would_allow_nothing_is_refused(rate, burst, max_keys) -> None:
    with pytest.raises(ValueError):
        limits.RateLimiter(rate, burst, max_keys=max_keys)


@pytest.mark.parametrize("wait, header", [(0.001, "1"), (1.0, "1"), (1.2, "2"), (59.5, "60")])
def test_the_429_answer_says_when_to_come_back_in_whole_seconds(wait, header) -> None:
    answer = limits.rate_limited(wait)
    assert answer.status_code == 429 and answer.headers["retry-after"] == header
    assert json.loads(answer.body) == RATE_LIMITED


# --- BodyLimit, on the ASGI calls -----------------------------------------------------------

class Recorder:
    """An ASGI app that records what it got; it answers 200 with the body's length."""

    def __init__(self) -> None:
        self.calls = 0
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send) -> None:
        self.calls += 1
        message = await receive()
        self.bodies.append(message["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"%d" % len(message["body"])})


async def _call(app, *, path: str = "/api/v1/requests", headers: list[tuple[bytes, bytes]] = (),
                chunks: Iterator[bytes] | None = None) -> tuple[list[dict], int]:
    """`app` called on one POST whose body comes in `chunks`: the messages it sent, and how many
    chunks it asked for."""
    asked = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal asked
        asked += 1
        chunk = next(chunks, None) if chunks is not None else None
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": list(headers), "client": ("192.0.2.7", 4000)}
    await app(scope, receive, send)
    return sent, asked


def _endless(size: int) -> Iterator[bytes]:
    while True:
        yield b"x" * size


def _run(coroutine):
    return asyncio.run(coroutine)


def test_a_declared_body_over_the_limit_is_refused_without_a_byte_read() -> None:
    inner = Recorder()
    sent, asked = _run(_call(limits.BodyLimit(inner), headers=[(b"content-length", b"1048576")],
                             chunks=_endless(4096)))
    assert asked == 0 and inner.calls == 0
    assert sent[0]["status"] == 413 and (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"]) == TOO_LARGE


def test_a_streamed_body_is_read_only_up_to_the_limit() -> None:
    inner = Recorder()
    sent, asked = _run(_call(limits.BodyLimit(inner, limit=LIMIT), chunks=_endless(4096)))
    assert asked == LIMIT // 4096 + 1 and inner.calls == 0
    assert sent[0]["status"] == 413 and json.loads(sent[1]["body"]) == TOO_LARGE


def test_a_body_within_the_limit_reaches_the_application_whole() -> None:
    inner = Recorder()
    sent, _asked = _run(_call(limits.BodyLimit(inner, limit=10), chunks=iter([b"01234", b"56789"])))
    assert sent[0]["status"] == 200 and inner.bodies == [b"0123456789"]


def test_a_route_may_have_a_limit_of_its_own_the_longest_prefix_wins() -> None:
    limit = limits.BodyLimit(Recorder(), limit=10, by_route={"/api/v1/big": 100, "/api/v1/big/small": 5})
    assert (limit.limit_for("/api/v1/requests"), limit.limit_for("/api/v1/big/x"),
            limit.limit_for("/api/v1/big/small/x")) == (10, 100, 5)
    inner = Recorder()
    sent, _asked = _run(_call(limits.BodyLimit(inner, limit=10, by_route={"/api/v1/big": 100}),
                              path="/api/v1/big/upload", chunks=iter([b"x" * 60])))
    assert sent[0]["status"] == 200 and inner.bodies == [b"x" * 60]


# --- both middlewares on an application, through the TestClient -----------------------------

@pytest.fixture
def small_app() -> Iterator[tuple[TestClient, Callable[..., TestClient]]]:
    """A FastAPI app with a JSON route, a public route and the two middlewares as central has them
    (a 100-byte limit, 3 public requests at once from an address, then almost none)."""
    app = FastAPI()
    app.add_middleware(limits.BodyLimit, limit=100)
    app.add_middleware(limits.PublicRateLimit, rate_per_s=0.001, burst=3)

    @app.post("/api/v1/requests")
    async def submit(request: Request) -> dict:
        return {"got": len(await request.body())}

    @app.get(wire.VERIFY_DOCUMENT)
    def verify() -> dict:
        return {"status": "invalid"}

    @app.get(wire.HEALTH)
    def health() -> dict:
        return {"status": "ok"}

    def client(address: str = "198.51.100.1") -> TestClient:
        return TestClient(app, client=(address, 50000))

    yield client(), client


def test_testclient_declared_body_over_the_limit_is_413(small_app) -> None:
    client, _ = small_app
    answer = client.post("/api/v1/requests", content=b"x" * 101)
    assert answer.status_code == 413 and answer.json() == TOO_LARGE


def test_testclient_chunked_body_over_the_limit_is_413(small_app) -> None:
    client, _ = small_app
    answer = client.post("/api/v1/requests", content=(b"x" * 30 for _ in range(4)))
    assert answer.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in answer.request.headers
    assert answer.status_code == 413 and answer.json() == TOO_LARGE


def test_testclient_body_at_the_limit_is_accepted(small_app) -> None:
    client, _ = small_app
    assert client.post("/api/v1/requests", content=b"x" * 100).json() == {"got": 100}
    assert client.post("/api/v1/requests", content=(b"x" * 25 for _ in range(4))).json() == {"got": 100}


def test_testclient_a_burst_from_one_address_is_answered_429_with_retry_after(small_app) -> None:
    client, make_client = small_app
    assert [client.get(wire.VERIFY_DOCUMENT).status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get(wire.VERIFY_DOCUMENT)
    assert refused.status_code == 429 and refused.json() == RATE_LIMITED
    assert int(refused.headers["retry-after"]) >= 1
    assert make_client("198.51.100.2").get(wire.VERIFY_DOCUMENT).status_code == 200   # another address
    assert client.get(wire.HEALTH).status_code == 200                                 # not a public route


# --- central itself ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def central_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    app = create_app("sqlite:///%s" % (tmp_path_factory.mktemp("central") / "central.sqlite3"),
                     public_rate_per_s=0.001, public_burst=5)
    yield app
    app.state.database.dispose()


def test_central_refuses_a_megabyte_before_the_route_or_its_authentication(central_app) -> None:
    client = TestClient(central_app)
    answer = client.post(wire.REQUESTS, content=b"{" + b" " * (1 << 20) + b"}",
                         headers={"content-type": "application/json"})
    assert answer.status_code == 413 and answer.json() == TOO_LARGE


def test_central_limits_its_public_routes_per_address(central_app) -> None:
    client = TestClient(central_app, client=("203.0.113.9", 50000))
    statuses = [client.get(wire.VERIFY_DOCUMENT, params={"payload": "hello"}).status_code for _ in range(3)]
    statuses += [client.get("/verify/2026-ZZZZZZZZ").status_code for _ in range(2)]
    assert 429 not in statuses
    for path in (wire.VERIFY_DOCUMENT + "?payload=hello", "/verify/2026-ZZZZZZZZ"):
        refused = client.get(path)
        assert refused.status_code == 429 and refused.json() == RATE_LIMITED and refused.headers["retry-after"]
    assert client.get(wire.HEALTH).json() == {"status": "ok"}


def test_central_takes_its_limits_from_create_app(tmp_path) -> None:
    app = create_app("sqlite:///%s" % (tmp_path / "c.sqlite3"), body_limit=10,
                     body_limits={wire.HEALTH: 1000})
    try:
        client = TestClient(app)
        assert client.post(wire.REQUESTS, content=b"x" * 11).status_code == 413
        assert client.request("GET", wire.HEALTH, content=b"x" * 500).json() == {"status": "ok"}
    finally:
        app.state.database.dispose()


# --- a real uvicorn over loopback ----------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCentral]:
    running = start_in_thread("sqlite:///%s" % (tmp_path_factory.mktemp("served") / "central.sqlite3"))
    yield running
    running.stop()


def _connect(central: RunningCentral) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", central.port))
    sock.settimeout(10)          # a guard against a hang, not a measure
    return sock


def _head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1", *("%s: %s" % item for item in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def test_uvicorn_a_declared_megabyte_is_refused_after_a_few_bytes_of_it(served) -> None:
    """The sender declares 1 MB, sends 1 KB and stops: the 413 comes, then the connection closes,
    with the other 1,047,552 bytes never sent."""
    with _connect(served) as sock:
        sock.sendall(_head("POST", wire.REQUESTS, {"Content-Type": "application/json",
                                                   "Content-Length": str(1 << 20)}))
        sock.sendall(b"[" + b"0," * 511)
        status, headers, body = _answer(sock)
        assert (status, json.loads(body)) == (413, TOO_LARGE)
        assert headers["connection"] == "close" and _closed_by_peer(sock)


def test_uvicorn_a_chunked_body_over_the_limit_is_refused_at_the_limit(served) -> None:
    """64 KB and one byte in chunks, and no last chunk: central stops reading at the limit and answers."""
    with _connect(served) as sock:
        sock.sendall(_head("POST", wire.REQUESTS, {"Content-Type": "application/json",
                                                   "Transfer-Encoding": "chunked"}))
        for _ in range(LIMIT // 4096):
            sock.sendall(_chunk(b" " * 4096))
        sock.sendall(_chunk(b" "))
        status, headers, body = _answer(sock)
        assert (status, json.loads(body)) == (413, TOO_LARGE) and headers["connection"] == "close"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_uvicorn_a_body_at_the_limit_is_read_and_answered(served, framing) -> None:
    body = b" " * (LIMIT - 2) + b"{}"
    with _connect(served) as sock:
        if framing == "chunked":
            sock.sendall(_head("GET", wire.HEALTH, {"Transfer-Encoding": "chunked"}))
            sock.sendall(_chunk(body[:LIMIT // 2]) + _chunk(body[LIMIT // 2:]) + b"0\r\n\r\n")
        else:
            sock.sendall(_head("GET", wire.HEALTH, {"Content-Length": str(len(body))}) + body)
        status, _headers, answer = _answer(sock)
    assert (status, json.loads(answer)) == (200, {"status": "ok"})


def test_uvicorn_a_kiosk_route_takes_a_body_just_under_the_limit_to_its_own_checks(served) -> None:
    body = json.dumps({"padding": " " * (LIMIT - 20)}).encode()
    assert len(body) < LIMIT
    with _connect(served) as sock:
        sock.sendall(_head("POST", wire.REQUESTS, {"Content-Type": "application/json",
                                                   "Content-Length": str(len(body))}) + body)
        status, _headers, answer = _answer(sock)
    assert status != 413 and json.loads(answer).get("reason") != "body_too_large"


def test_uvicorn_a_burst_from_one_address_is_answered_429_with_retry_after(served) -> None:
    """The default burst, then refusals: found by asking until one comes (at most a few times the burst)."""
    with _connect(served) as sock:
        for sent in range(1, 10 * limits.PUBLIC_BURST):
            sock.sendall(_head("GET", wire.VERIFY_DOCUMENT + "?payload=hello", {}))
            status, headers, body = _answer(sock)
            if status == 429:
                break
            assert status == 422
    assert (status, json.loads(body)) == (429, RATE_LIMITED)
    assert sent > limits.PUBLIC_BURST and int(headers["retry-after"]) >= 1
    with _connect(served) as sock:                  # a kiosk's route is not the public limit's
        sock.sendall(_head("GET", wire.HEALTH, {}))
        assert _answer(sock)[0] == 200


def _health(central: RunningCentral) -> tuple[int, bytes]:
    with _connect(central) as sock:
        sock.sendall(_head("GET", wire.HEALTH, {"Connection": "close"}))
        status, _headers, body = _answer(sock)
    return status, body


def test_uvicorn_health_answers_while_an_11_mb_json_is_refused(served) -> None:
    eleven_mb = 11 * 1024 * 1024
    with _connect(served) as declared:
        declared.sendall(_head("POST", wire.REQUESTS, {"Content-Type": "application/json",
                                                       "Content-Length": str(eleven_mb)}))
        declared.sendall(b'{"padding": "' + b"x" * 65536)
        assert _health(served) == (200, b'{"status":"ok"}')
        status, _headers, body = _answer(declared)
        assert (status, json.loads(body)) == (413, TOO_LARGE)
    assert _health(served)[0] == 200


def test_uvicorn_health_answers_while_an_11_mb_chunked_json_streams_in(served) -> None:
    """A sender pushing 11 MB in chunks as fast as it can: central answers 413 at 64 KB, and
    another client's health check is answered meanwhile."""
    stopped = threading.Event()
    sent = 0

    def push(sock: socket.socket) -> None:
        nonlocal sent
        try:
            sock.sendall(_chunk(b'{"padding": "'))
            while sent < 11 * 1024 * 1024 and not stopped.is_set():
                sock.sendall(_chunk(b"x" * 16384))
                sent += 16384
        except OSError:
            pass                  # central closed the connection: the rest is never sent

    with _connect(served) as streaming:
        streaming.sendall(_head("POST", wire.REQUESTS, {"Content-Type": "application/json",
                                                        "Transfer-Encoding": "chunked"}))
        pusher = threading.Thread(target=push, args=(streaming,), daemon=True)
        pusher.start()
        try:
            assert _health(served) == (200, b'{"status":"ok"}')
            status, _headers, body = _answer(streaming)
        finally:
            stopped.set()
            pusher.join(10)
    assert (status, json.loads(body)) == (413, TOO_LARGE)
    assert sent < 11 * 1024 * 1024
