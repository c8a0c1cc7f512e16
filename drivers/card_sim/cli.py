"""`kiosk-sim card`: simulated national ID cards in pcscd's vpcd reader.

    kiosk-sim card keygen --out DIR
    kiosk-sim card serve --registry citizens.json --issuer-key DIR/issuer.key.pem
    kiosk-sim card insert 01234567890 [--profile expired|swapped-photo|...] [--pin 1234]
    kiosk-sim card remove
    kiosk-sim card status

`serve` holds the slot and answers a line protocol on the control port:
`insert NATIONAL_NUMBER [PROFILE] [PIN]`, `remove`, `status`; each answer is
one line, `ok ...` or `error ...`. The other commands are its clients.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import socketserver
import sys
import threading
from pathlib import Path
from typing import Any

from drivers.card_sim.card import CardProfile, SimulatedCard
from drivers.card_sim.issuer import IssuerKey
from drivers.card_sim.registry import RegistryError, load_citizens
from drivers.card_sim.slot import SlotBusy, VirtualCardSlot
from drivers.card_sim.vpcd import DEFAULT_PORT
from drivers.id_card.errors import PinFormatError
from drivers.id_card.pin import pin_block

log = logging.getLogger(__name__)

DEFAULT_CONTROL = "127.0.0.1:35990"
CLIENT_TIMEOUT_S = 10.0
MAX_LINE = 1024
PRIVATE_KEY_FILE = "issuer.key.pem"
PUBLIC_KEY_FILE = "issuer.pub.pem"


def register(subparsers: Any) -> None:
    """Add the `card` command to `kiosk-sim`."""
    card = subparsers.add_parser("card", help="simulated national ID cards on the vpcd reader",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = card.add_subparsers(dest="card_command", required=True)

    keygen = commands.add_parser("keygen", help="write a new issuer key pair")
    keygen.add_argument("--out", required=True, help="directory for %s and %s"
                        % (PRIVATE_KEY_FILE, PUBLIC_KEY_FILE))
    keygen.add_argument("--force", action="store_true", help="overwrite an existing key")
    keygen.set_defaults(run=run_keygen)

    serve = commands.add_parser("serve", help="hold the virtual slot and take control commands")
    serve.add_argument("--registry", required=True, help="citizens JSON of the central registry")
    serve.add_argument("--issuer-key", required=True, help="issuer private key (PEM)")
    serve.add_argument("--host", default="127.0.0.1", help="vpcd host (default %(default)s)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="vpcd port (default %(default)s)")
    serve.add_argument("--control", default=DEFAULT_CONTROL, help="control HOST:PORT (default %(default)s)")
    serve.set_defaults(run=run_serve)

    insert = commands.add_parser("insert", help="insert a citizen's card")
    insert.add_argument("national_number")
    insert.add_argument("--profile", default="valid", type=_profile_name,
                        choices=[p.value for p in CardProfile],
                        help="the card's variant; a hyphen may stand for an underscore (swapped-photo)")
    insert.add_argument("--pin", default="1234", help="the card's PIN (default %(default)s)")
    insert.add_argument("--control", default=DEFAULT_CONTROL)
    insert.set_defaults(run=lambda args: _client(
        args.control, "insert %s %s %s" % (args.national_number, args.profile, args.pin)))

    remove = commands.add_parser("remove", help="pull the card")
    remove.add_argument("--control", default=DEFAULT_CONTROL)
    remove.set_defaults(run=lambda args: _client(args.control, "remove"))

    status = commands.add_parser("status", help="what the slot holds")
    status.add_argument("--control", default=DEFAULT_CONTROL)
    status.set_defaults(run=lambda args: _client(args.control, "status"))


def _profile_name(text: str) -> str:
    return text.lower().replace("-", "_")


# --- keygen -----------------------------------------------------------------------------

def run_keygen(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    private, public = out / PRIVATE_KEY_FILE, out / PUBLIC_KEY_FILE
    if private.exists() and not args.force:
        print("error %s exists (use --force to replace it)" % private, file=sys.stderr)
        return 1
    key = IssuerKey.generate()
    key.save(private, public)
    print("ok key_id=%s private=%s public=%s" % (key.key_id.hex(), private, public))
    return 0


# --- serve --------------------------------------------------------------------------------

class ControlState:
    """What the control server needs: citizens, the issuer, the slot."""

    def __init__(self, citizens: dict[str, dict[str, Any]], issuer: IssuerKey,
                 slot: VirtualCardSlot) -> None:
        self.citizens = citizens
        self.issuer = issuer
        self.slot = slot
        self.lock = threading.Lock()

    def handle(self, line: str) -> str:
        """One control command in, one answer line out (never personal data)."""
        words = line.split()
        if not words:
            return "error empty command"
        command, arguments = words[0].lower(), words[1:]
        with self.lock:
            if command == "insert":
                return self._insert(arguments)
            if command == "remove" and not arguments:
                had_card = self.slot.card is not None
                self.slot.remove()
                return "ok removed" if had_card else "ok empty"
            if command == "status" and not arguments:
                card = self.slot.card
                return "ok empty" if card is None else "ok card profile=%s" % _profile_of(card)
        return "error unknown command (insert NATIONAL_NUMBER [PROFILE] [PIN] | remove | status)"

    def _insert(self, arguments: list[str]) -> str:
        if not 1 <= len(arguments) <= 3:
            return "error usage: insert NATIONAL_NUMBER [PROFILE] [PIN]"
        record = self.citizens.get(arguments[0])
        if record is None:
            return "error no citizen with that national number in the registry"
        try:
            profile = CardProfile(arguments[1].lower()) if len(arguments) > 1 else CardProfile.VALID
        except ValueError:
            return "error unknown profile (one of %s)" % ", ".join(p.value for p in CardProfile)
        pin = arguments[2] if len(arguments) > 2 else "1234"
        try:
            pin_block(pin)
        except PinFormatError:
            return "error a PIN is 4 to 8 digits"
        if self.slot.card is not None:
            return "error a card is already inserted: remove it first"
        try:
            card = SimulatedCard.for_citizen(record, issuer=self.issuer, profile=profile, pin=pin)
        except (KeyError, ValueError, TypeError):
            return "error the registry record cannot be put on a card"
        try:
            self.slot.insert(card)
        except SlotBusy:
            return "error a card is already inserted: remove it first"
        except OSError as exc:
            return "error vpcd is not reachable (is pcscd running?): %s" % exc.strerror
        return "ok inserted profile=%s" % profile.value


def _profile_of(card: Any) -> str:
    profile = getattr(card, "profile", None)
    return profile.value if isinstance(profile, CardProfile) else "custom"


class _ControlHandler(socketserver.StreamRequestHandler):
    server: "_ControlServer"

    def handle(self) -> None:
        while True:
            raw = self.rfile.readline(MAX_LINE)
            if not raw:
                return
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                line, answer = "", "error not UTF-8"
            else:
                answer = self.server.state.handle(line)
            command = (line.split() or ["?"])[0][:16].lower()
            log.info("card_sim.control command=%s result=%s", command, answer.split()[0])
            self.wfile.write(answer.encode("utf-8") + b"\n")
            self.wfile.flush()


class _ControlServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: ControlState) -> None:
        super().__init__(address, _ControlHandler)
        self.state = state


def run_serve(args: argparse.Namespace) -> int:
    try:
        citizens = load_citizens(args.registry)
        issuer = IssuerKey.load(args.issuer_key)
        control = _address(args.control)
    except (RegistryError, OSError, ValueError) as exc:
        print("error %s" % exc, file=sys.stderr)
        return 1
    slot = VirtualCardSlot(args.host, args.port)
    state = ControlState(citizens, issuer, slot)
    try:
        server = _ControlServer(control, state)
    except OSError as exc:
        print("error control port %s: %s" % (args.control, exc.strerror), file=sys.stderr)
        return 1
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, name="card-sim-control", daemon=True)
    thread.start()
    log.info("card_sim.serving control=%s:%d vpcd=%s:%d citizens=%d issuer=%s",
             control[0], server.server_address[1], args.host, args.port, len(citizens),
             issuer.key_id.hex())
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        slot.remove()
        log.info("card_sim.stopped")
    return 0


# --- clients --------------------------------------------------------------------------------

def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError("control address must be HOST:PORT, got %r" % text)
    return host, int(port)


def send_command(control: str, line: str, *, timeout: float = CLIENT_TIMEOUT_S) -> str:
    """Send one control line to `serve`; its one-line answer."""
    with socket.create_connection(_address(control), timeout=timeout) as sock:
        sock.sendall(line.encode("utf-8") + b"\n")
        with sock.makefile("rb") as answers:
            return answers.readline(MAX_LINE).decode("utf-8").strip()


def _client(control: str, line: str) -> int:
    try:
        answer = send_command(control, line)
    except (OSError, ValueError) as exc:
        print("error cannot reach kiosk-sim card serve at %s: %s" % (control, exc), file=sys.stderr)
        return 1
    print(answer)
    return 0 if answer.startswith("ok") else 1

