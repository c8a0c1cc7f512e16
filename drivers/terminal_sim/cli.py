"""`kiosk-sim terminal`: a nexo payment terminal on loopback, and the hand that drives it.

    kiosk-sim terminal serve [--port 7778] [--control-port 7790] [--auto-present CARD]
    kiosk-sim terminal present --card approve|refused|insufficient-funds|wrong-pin|expired|removed|no-answer
    kiosk-sim terminal pay-wallet
    kiosk-sim terminal fault busy|drop-answer|drop-link|reboot|garble|offline|online|clear
    kiosk-sim terminal cutoff
    kiosk-sim terminal statement
    kiosk-sim terminal display

`serve` runs the terminal until interrupted; the other commands are clients
of its control API (`--control URL`, by default http://127.0.0.1:7790) and
print its JSON answer.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

import requests

from drivers.terminal_sim.simulator import (
    DEFAULT_CONTROL_PORT, DEFAULT_NEXO_PORT, DEFAULT_POI_ID, TerminalSimulator,
)
from drivers.terminal_sim.terminal import Card, Fault

DEFAULT_CONTROL = "http://127.0.0.1:%d" % DEFAULT_CONTROL_PORT
CLIENT_TIMEOUT_S = 10.0
FAULTS = [f.value for f in Fault] + ["offline", "online"]


def register(subparsers: Any) -> None:
    """Add the `terminal` command to `kiosk-sim`."""
    terminal = subparsers.add_parser("terminal", help="a nexo payment terminal with its own acquirer",
                                     description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = terminal.add_subparsers(dest="terminal_command", required=True)

    serve = commands.add_parser("serve", help="run the terminal until interrupted")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    serve.add_argument("--port", type=int, default=DEFAULT_NEXO_PORT, help="nexo TCP port (default %(default)s)")
    serve.add_argument("--control-port", type=int, default=DEFAULT_CONTROL_PORT,
                       help="control and acquirer HTTP port (default %(default)s)")
    serve.add_argument("--poi-id", default=DEFAULT_POI_ID, help="the terminal's POIID (default %(default)s)")
    serve.add_argument("--auto-present", choices=[c.value for c in Card], default=None,
                       help="present this card (or pay the wallet) by itself after --auto-present-delay")
    serve.add_argument("--auto-present-delay", type=float, default=1.0, metavar="S",
                       help="seconds before the card is presented by itself (default %(default)s)")
    serve.add_argument("--card-timeout", type=float, default=60.0, metavar="S",
                       help="how long a sale waits for a card (default %(default)s)")
    serve.add_argument("--wallet-expiry", type=float, default=120.0, metavar="S",
                       help="how long a wallet payment request stays payable (default %(default)s)")
    serve.add_argument("--tls-cert", help="PEM certificate: serve nexo inside TLS")
    serve.add_argument("--tls-key", help="the certificate's PEM private key")
    serve.set_defaults(run=run_serve)

    present = commands.add_parser("present", help="present a card to the sale waiting (or the next one)")
    present.add_argument("--card", required=True, choices=[c.value for c in Card])
    _client(present, "POST", "/sim/present", lambda args: {"card": args.card})

    pay = commands.add_parser("pay-wallet", help="the wallet pays the payment request on show")
    _client(pay, "POST", "/sim/wallet/pay", lambda args: {})

    fault = commands.add_parser("fault", help="make something go wrong")
    fault.add_argument("fault", choices=FAULTS)
    _client(fault, "POST", "/sim/fault", lambda args: {"fault": args.fault})

    cutoff = commands.add_parser("cutoff", help="close the day's batch (reversals become refunds)")
    _client(cutoff, "POST", "/sim/cutoff", lambda args: {})

    statement = commands.add_parser("statement", help="every payment and give-back, as JSON")
    _client(statement, "GET", "/sim/statement", None)

    display = commands.add_parser("display", help="what the terminal's display shows")
    _client(display, "GET", "/sim/display", None)


def _client(parser: argparse.ArgumentParser, method: str, path: str, body: Any) -> None:
    parser.add_argument("--control", default=DEFAULT_CONTROL, help="the control API (default %(default)s)")
    parser.set_defaults(run=lambda args: call(args.control, method, path, None if body is None else body(args)))


def call(control: str, method: str, path: str, body: dict[str, Any] | None) -> int:
    """One request to the control API; its JSON answer on standard output."""
    try:
        response = requests.request(method, control.rstrip("/") + path, json=body, timeout=CLIENT_TIMEOUT_S)
    except requests.RequestException as exc:
        print("error cannot reach kiosk-sim terminal serve at %s: %s" % (control, type(exc).__name__),
              file=sys.stderr)
        return 1
    try:
        answer = response.json()
    except ValueError:
        print("error the control API answered HTTP %d without JSON" % response.status_code, file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2))
    return 0 if response.status_code == 200 else 1


def run_serve(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM."""
    simulator = TerminalSimulator(args.host, args.port, args.control_port, auto_present=args.auto_present,
                                  auto_present_delay_s=args.auto_present_delay, poi_id=args.poi_id,
                                  card_timeout_s=args.card_timeout, wallet_expiry_s=args.wallet_expiry,
                                  tls_cert=args.tls_cert, tls_key=args.tls_key)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        simulator.start()
    except OSError as exc:
        print("error cannot listen on %s: %s" % (args.host, exc.strerror or exc), file=sys.stderr)
        return 1
    print("terminal simulator %s: nexo on %s:%d%s, control on %s" % (
        simulator.poi_id, args.host, simulator.nexo_port, " (TLS)" if args.tls_cert else "",
        simulator.control_url), flush=True)
    try:
        stop.wait()
    finally:
        simulator.stop()
    return 0
