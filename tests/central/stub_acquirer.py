"""A stub acquirer on loopback: the payment look-up central asks before it issues,
answering from the payments a test gives it.

    GET /acquirer/v1/payments/{payment_id}  200 the payment, or 404 {"reason": "unknown_payment"}

`answer_badly(reply)` makes every look-up get the raw bytes `reply` instead
(None: the connection is closed unanswered) until `answer_well()`. `asked`
lists the payment ids looked up, in order.
"""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from urllib.parse import unquote

from kiosk import wire

_PREFIX = wire.ACQUIRER_PAYMENT.split("{", 1)[0]
_WELL = object()


class StubAcquirer:
    def __init__(self, *, terminal_id: str = "TERM-0001") -> None:
        self.terminal_id = terminal_id
        self.asked: list[str] = []
        self._payments: dict[str, dict] = {}
        self._reply: object = _WELL
        self._lock = threading.Lock()
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                payment_id = unquote(self.path[len(_PREFIX):]) if self.path.startswith(_PREFIX) else None
                with stub._lock:
                    reply = stub._reply
                    if payment_id is not None:
                        stub.asked.append(payment_id)
                    payment = stub._payments.get(payment_id or "")
                if reply is not _WELL:
                    if isinstance(reply, bytes):
                        self.wfile.write(reply)
                    self.close_connection = True
                    return
                if payment is None:
                    self._json(404, {"reason": wire.UNKNOWN_PAYMENT} if payment_id else {"reason": "not_found"})
                else:
                    self._json(200, payment)

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        self.url = "http://127.0.0.1:%d" % self._server.server_address[1]

    def pay(self, amount_minor: int, currency: str = "SYP", *, status: str = "approved",
            terminal_id: str | None = None, payment_id: str | None = None) -> str:
        """A payment the acquirer now knows (approved unless told); its id."""
        payment_id = payment_id or "pay_" + uuid.uuid4().hex[:16]
        with self._lock:
            self._payments[payment_id] = {
                "payment_id": payment_id, "status": status, "amount_minor": amount_minor, "currency": currency,
                "terminal_id": terminal_id or self.terminal_id, "sale_id": "sale-" + payment_id[4:]}
        return payment_id

    def set_status(self, payment_id: str, status: str) -> None:
        """The payment is reversed, refunded, ... since."""
        with self._lock:
            self._payments[payment_id] = {**self._payments[payment_id], "status": status}

    def answer_badly(self, reply: bytes | None) -> None:
        with self._lock:
            self._reply = reply

    def answer_well(self) -> None:
        with self._lock:
            self._reply = _WELL

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StubAcquirer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
