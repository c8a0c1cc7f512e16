"""What central lets one request, and one client, ask of it: body sizes and request rates.

Central faces networks it does not own, so nothing in front of the routes
trusts a sender:

``BodyLimit``
    ASGI middleware. A request body over the limit (64 KB unless a path
    prefix says otherwise) is answered 413 ``{"status": "error", "reason":
    "body_too_large"}`` before the application sees the request: from
    Content-Length when the sender declares one (not a byte of the body is
    read), else by counting the bytes as they stream in (chunked), stopping
    at the limit. The answer closes the connection, so the rest of a body is
    never read either.
``RateLimiter``
    A token bucket per key (a device id, a client address): ``take(key)`` is
    None when the request may go on, else the seconds until one would be
    allowed. Memory is bounded: past ``max_keys`` the key heard from least
    recently is forgotten (it comes back with a full bucket).
``rate_limited(retry_after_s)``
    The 429 answer ``{"status": "error", "reason": "rate_limited"}`` with
    ``Retry-After`` in whole seconds (at least 1).
``PublicRateLimit``
    ASGI middleware: a ``RateLimiter`` keyed by the client's address over the
    routes anyone may call without a device's credentials (``PUBLIC_PREFIXES``:
    document verification, the verification page, device enrolment). Behind
    a reverse proxy every client has the proxy's address unless the server
    is told to trust its forwarding headers (uvicorn's ``forwarded_allow_ips``).

Nothing here logs: central's own line for every answer (central/app.py),
these included, says the method, the path and the status, never the
client's address (personal data) nor a query (a payload holds a name).

Starlette has a ``RequestBodyLimitMiddleware`` of its own; it refuses only
when the application reads the body, after the routing, and answers in plain
text. Here the refusal comes first, in the JSON every central answer has.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from central import verify_page
from kiosk import wire

DEFAULT_BODY_LIMIT = 64 * 1024
# Anyone may call these without a device's credentials: verifying a printed
# document (the API and the officials' page) and a kiosk's enrolment.
PUBLIC_PREFIXES = (wire.VERIFY_DOCUMENT, verify_page.PAGE.partition("{")[0], wire.ENROL)
# One address may make 30 public requests at once, then one every 2 seconds:
# an office of officials behind one address scanning documents stays within;
# a script walking through serials does not get far.
PUBLIC_RATE_PER_S = 0.5
PUBLIC_BURST = 30
MAX_KEYS = 10_000


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length the sender declared; None when there is none (chunked) or it is not a number
    (the HTTP server refuses those itself)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyLimit:
    """Refuses a request body over its limit with 413 before anything parses it.

    `limit` is the largest body in bytes; `by_route` maps a path prefix to the
    limit of the routes under it (the longest matching prefix wins), for a
    route that needs more (or less). A body within the default limit is read
    whole here and handed on, so the application receives it in one message;
    a route allowed more than the default (a release bundle's upload) gets its
    body as it comes, counted, and nothing is held here.
    """

    def __init__(self, app: ASGIApp, *, limit: int = DEFAULT_BODY_LIMIT,
                 by_route: Mapping[str, int] | None = None) -> None:
        if limit < 0 or any(value < 0 for value in (by_route or {}).values()):
            raise ValueError("a body limit is a number of bytes, 0 or more")
        self.app = app
        self.limit = limit
        self._by_route = sorted((by_route or {}).items(), key=lambda item: len(item[0]), reverse=True)

    def limit_for(self, path: str) -> int:
        return next((limit for prefix, limit in self._by_route if path.startswith(prefix)), self.limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(send)
            return
        if limit > self.limit:
            await self._stream(scope, receive, send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return                      # the client went away while sending: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()      # after the body: the disconnect, when it comes
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _stream(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """A route allowed more than the default (a release bundle): its body handed on as it comes, counted,
        never held here. Past the limit the application is told the client went away (Starlette raises
        ClientDisconnect in its reader), and the answer is the 413, unless it had begun answering."""
        size = 0
        over = False
        answering = False

        async def counted() -> Message:
            nonlocal size, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def answer(message: Message) -> None:
            nonlocal answering
            if over and not answering:
                return                          # the 413 below is the answer
            answering = True
            await send(message)

        try:
            await self.app(scope, counted, answer)
        except Exception:
            if not over:
                raise
        if over and not answering:
            await self._refuse(send)

    @staticmethod
    async def _refuse(send: Send) -> None:
        content = json.dumps({"status": "error", "reason": "body_too_large"}, separators=(",", ":")).encode()
        # Connection: close, or the server would read the rest of the body to reach the next request.
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(content)),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": content})


class RateLimiter:
    """A token bucket per key: `burst` requests at once, then `rate_per_s` a second.

    Holds, for each of at most `max_keys` keys, the tokens left and when they
    were counted; past `max_keys` the key heard from least recently goes.
    `clock` (seconds, monotonic) is injectable for tests. Safe to share
    between threads.
    """

    def __init__(self, rate_per_s: float, burst: int, *, max_keys: int = MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not rate_per_s > 0 or burst < 1 or max_keys < 1:
            raise ValueError("a rate above 0, a burst and max_keys of at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()   # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: Hashable) -> float | None:
        """One request for `key`: None when it is allowed (a token is spent), else the seconds until
        the next request would be (nothing is spent)."""
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.rate_per_s)
            wait = None if tokens >= 1 else (1 - tokens) / self.rate_per_s
            self._buckets[key] = (tokens - 1 if wait is None else tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait

    def __len__(self) -> int:
        """The keys held now."""
        return len(self._buckets)


def rate_limited(retry_after_s: float) -> JSONResponse:
    """The 429 answer: ``Retry-After`` is `retry_after_s` rounded up to whole seconds, at least 1."""
    return JSONResponse({"status": "error", "reason": "rate_limited"}, status_code=429,
                        headers={"Retry-After": str(max(1, math.ceil(retry_after_s)))})


class PublicRateLimit:
    """A request rate per client address over the paths under `prefixes`; every other path passes.

    The limiter is built from `rate_per_s` and `burst`, or given (`limiter`,
    for tests with their own clock). A request without a client address (not
    over a socket) counts under one shared key.
    """

    def __init__(self, app: ASGIApp, *, rate_per_s: float = PUBLIC_RATE_PER_S, burst: int = PUBLIC_BURST,
                 prefixes: Iterable[str] = PUBLIC_PREFIXES, limiter: RateLimiter | None = None) -> None:
        self.app = app
        self.prefixes = tuple(prefixes)
        self.limiter = limiter if limiter is not None else RateLimiter(rate_per_s, burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.limiter.take(client[0] if client else "")
        if wait is None:
            await self.app(scope, receive, send)
            return
        await rate_limited(wait)(scope, receive, send)
