"""The simulated terminal's HTTP side: the control API a test or a technician drives it with,
and the acquirer's API that central asks before issuing a paid document.

    POST /sim/present       {"card": "approve" | "refused" | "insufficient-funds" | "wrong-pin"
                             | "expired" | "removed" | "no-answer"}   -> {"card", "presented": bool}
    POST /sim/fault         {"fault": "busy" | "drop-answer" | "drop-link" | "reboot" | "garble"
                             | "offline" | "online" | "clear"}        -> {"fault"}
    POST /sim/wallet/pay    {}        -> {"paid": true}; 409 {"error": "no_wallet_request"} when none shows
    POST /sim/cutoff        {}        -> {"batch": n}: the day's batch closes
    GET  /sim/statement               -> every payment and every reversal or refund (Acquirer.statement)
    GET  /sim/display                 -> what the terminal's display shows now

    GET  /acquirer/v1/payments/{payment_id}
         200 {"payment_id", "status": "approved" | "declined" | "reversed" | "refunded",
              "amount_minor", "currency", "terminal_id", "sale_id"}
         404 {"reason": "unknown_payment"}

Bodies are JSON; a bad one is 400 {"error": ...}; an unknown path 404 {"error": "not_found"}.
Plain `http.server` on loopback, one thread per request.
"""

from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from kiosk import wire

if TYPE_CHECKING:
    from drivers.terminal_sim.simulator import TerminalSimulator

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
ACQUIRER_PREFIX = wire.ACQUIRER_PAYMENT.split("{", 1)[0]      # "/acquirer/v1/payments/"


class _BadRequest(Exception):
    pass


class ControlServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], simulator: TerminalSimulator) -> None:
        super().__init__(address, _Handler)
        self.simulator = simulator


class _Handler(BaseHTTPRequestHandler):
    server: ControlServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:     # noqa: A002 - the base class's name
        log.debug("terminal_sim.http " + format, *args)

    def do_GET(self) -> None:   # noqa: N802 - http.server's name
        path = urlsplit(self.path).path
        simulator = self.server.simulator
        if path == "/sim/statement":
            self._reply(200, simulator.statement())
        elif path == "/sim/display":
            self._reply(200, simulator.display())
        elif path.startswith(ACQUIRER_PREFIX) and "/" not in path[len(ACQUIRER_PREFIX):]:
            payment_id = unquote(path[len(ACQUIRER_PREFIX):])
            payment = simulator.acquirer.look_up(payment_id)
            log.info("terminal_sim.acquirer_look_up payment_id=%s found=%s", payment_id[:64], payment is not None)
            if payment is None:
                self._reply(404, {"reason": wire.UNKNOWN_PAYMENT})
            else:
                self._reply(200, payment)
        else:
            self._reply(404, {"error": "not_found"})

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        path = urlsplit(self.path).path
        simulator = self.server.simulator
        try:
            body = self._body()
            if path == "/sim/present":
                card = _string(body, "card")
                self._reply(200, {"card": card, "presented": simulator.present(card)})
            elif path == "/sim/fault":
                fault = _string(body, "fault")
                simulator.fault(fault)
                self._reply(200, {"fault": fault})
            elif path == "/sim/wallet/pay":
                if simulator.pay_wallet():
                    self._reply(200, {"paid": True})
                else:
                    self._reply(409, {"error": "no_wallet_request"})
            elif path == "/sim/cutoff":
                self._reply(200, {"batch": simulator.cutoff()})
            else:
                self._reply(404, {"error": "not_found"})
        except (_BadRequest, ValueError) as exc:
            self._reply(400, {"error": str(exc)})

    def _body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _BadRequest("Content-Length is not a number") from None
        if not 0 <= length <= MAX_BODY:
            raise _BadRequest("the body is too large")
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _BadRequest("the body is not JSON") from None
        if not isinstance(body, dict):
            raise _BadRequest("the body is not a JSON object")
        return body

    def _reply(self, status: int, data: dict[str, Any]) -> None:
        payload = json.dumps(data).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _string(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise _BadRequest("`%s` must be a string" % key)
    return value
