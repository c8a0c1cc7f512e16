"""`make soak`: kill the kiosk at random moments of paid journeys on the real stack, and prove
that every charge is settled.

    python -m drivers.demo.soak --trials N [--seed S] [--out DIR]

One `DemoStack` (pcscd with the ID-card simulator on vpcd, central on
loopback, the printer simulator, the nexo terminal simulator) and one
`VirtualScreen` serve the whole run. Central is reached through
`CentralLink`, a TCP relay the harness can cut, which also tells when the
certificate request reaches central. Each trial:

1. runs the real app, `kiosk run --journey journeys/soak.json` (a citizen
   pays for one civil-status extract), the citizen at the terminal
   presenting the bank card a little later, as a person does;
2. waits for the plan's moment, observed in the world, then a random offset,
   and kills the app with SIGKILL. The moments:

   waiting   the terminal waits for the bank card (nothing approved yet)
   approved  the terminal's display says approved; a short offset (0-3 or
             0-15 ms) often lands between the approval and the journal's
             write, a longer one (up to 400 ms) after it
   issuing   the certificate request has reached central (through the relay)
   printing  the printer simulator has taken a random number of bytes of a job
   random    a plain random delay (0-4 s) from the confirm screen on

   A moment that never comes (the sale failed first) gives way to a kill
   when the app shows an end screen, or after 30 s: it counts as missed.
   About one trial in four adds a fault: the terminal off line or dropping
   the sale's answer or its link, central cut off (back a moment after the
   restart), or, as root, the disk full: the state database lives on a
   small tmpfs of its own, which a filler file fills at the moment, and
   which is emptied before the restart. Not root (or no tmpfs to be had):
   no disk faults, as the figures at the end say. The terminal's one-shot
   faults are set before the sale; the others come at the moment, and the
   kill 0-3 s later, so that the kiosk meets the fault first.
3. takes the ID card out, lets the citizen at the terminal finish a sale
   still waiting there (pay anyway, or take the card back), clears the
   faults, restarts the app (`journeys/soak-restart.json`: the attract
   screen, until stopped), and waits until the kiosk's journal holds
   nothing unfinished of the trial and its outbox nothing undelivered of
   it, and central holds the void of every request the journal voided,
   for at most 60 s; then stops the app. In some trials (REKILL_SHARE) the
   restarted app is killed too, 0.2-2 s after it started, while it
   settles, and started once more: every step of a settlement must hold
   when it is done twice;
4. judges the trial from the world (below), writes one line to standard
   error, and keeps the trial's kiosk logs, screenshots, printed pages and
   verdict under OUT/trial-NNNN only when the trial failed (or when the app
   ended by itself before the kill: a journey that no longer fits the
   screens, a kiosk that does not start).

The run ends with exactly one line on standard output,
``trials: T lost: L duplicated: D unsettled: U``, and exit status 1 when
any of the three is not 0.

The kiosk's state database is one file for the whole run, as a kiosk's disk
lives on from one citizen to the next: a trial's restart finds every earlier
trial's finished entries beside its own, and the reconciler must pick out
the one to settle. The harness reads it (journal and outbox) through its own
connection and closes that connection after each trial, once the app is
stopped; SQLite then folds the write-ahead log into the file and removes it,
as on a kiosk shut down cleanly, so each trial starts with a short log that
a full disk stops from growing.

The judgement. The trial's world: the terminal's payments taken during the
trial (its acquirer's statement), central's certificate requests and issued
documents created during the trial (its database), the printer simulator's
jobs of the trial, and the trial's journal entries and undelivered outbox
messages. A payment belongs to the request its journal entry names (by
sale_id; a payment no entry names is a request of its own). Then:

- a *kept charge* is an approved payment not given back (reversed or
  refunded); a *valid document* is an issued document not voided; a
  *printed certificate* is a complete job (ended by its cut) whose QR code
  verifies with central's key, known by the serial it signs;
- **lost**, per request: a kept charge, and no printed certificate of that
  request at all (the citizen paid and holds nothing, whether central
  issued a document or not);
- **duplicated**: each kept charge of the trial beyond the first (one
  citizen paid for one certificate), and each valid document of a request
  beyond its first;
- **unsettled**, per item: a journal entry of the trial not finished
  (printed, not charged, or settled) once the bound has passed, a dead one
  included; an outbox message of the trial still undelivered; a valid
  document whose request has no kept charge (given back or never charged,
  and the void never arrived); a kept charge whose printed certificates
  were all voided (paid, holding a void paper).

A certificate partly printed (killed mid-print), or even printed whole
before the journal heard of it, whose charge was given back and whose
document was voided, is none of these: the money and central agree.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import json
import logging
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from central import signing
from drivers.demo.stack import DemoStack, VirtualScreen
from kiosk import wire
from kiosk.ports.journal import FINISHED, JournalEntry, TxnState
from offline.database import StateDatabase
from offline.journal import SqliteJournal
from offline.outbox import Outbox

log = logging.getLogger(__name__)

JOURNEYS = Path(__file__).resolve().parents[2] / "journeys"
PAID_JOURNEY = JOURNEYS / "soak.json"
RESTART_JOURNEY = JOURNEYS / "soak-restart.json"

MOMENTS = ("waiting", "approved", "issuing", "printing", "random")
MAIN_MOMENTS = ("waiting", "approved", "issuing", "printing")
LINK_FAULTS = ("terminal-offline", "terminal-drop-answer", "terminal-drop-link", "central-cut")
DISK_FAULT = "disk-full"
FAULT_SHARE = 0.25                   # about one trial in four adds a fault to the kill
REKILL_SHARE = 0.15                  # and some kill the restarted app too, while it reconciles

SETTLE_BOUND_S = 60.0                # after the restart, how long the kiosk has to settle a trial
MOMENT_BOUND_S = 30.0                # a moment not come by then (from the start of the app) is missed
CERTIFICATE_BYTES = 35_000           # about what a certificate takes on the wire (make bench); learnt as it goes
STATE_DISK_MIB = 64
STATE_FILE = "kiosk-state.sqlite3"
END_SCREENS = frozenset({"take_card", "payment_declined", "failed", "print_waiting", "out_of_service"})
IN_FLIGHT_STATES = frozenset({"present-card", "processing", "scan-qr"})   # the terminal's display, mid-sale
REQUEST_LINE = b"POST " + wire.REQUESTS.encode("ascii") + b" HTTP/"
_SHOWN = re.compile(r"screen\.shown name=(\S+)")


# -- the plan ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """What one trial does: where the kill comes, and what goes wrong with it."""

    moment: str                  # one of MOMENTS
    offset_ms: int               # from the moment observed to the kill
    fault: str = ""              # one of LINK_FAULTS or DISK_FAULT; "" none
    present_delay_ms: int = 300  # the citizen at the terminal takes this long to present the bank card
    print_bytes: int = 0         # printing: the kill comes once a job has brought this many bytes
    card_after_kill: str = "approve"   # a sale still waiting after the kill: paid anyway, or the card taken back
    link_back_ms: int = 0        # central-cut: central is reachable again this long after the restart
    rekill_ms: int = 0           # the restarted app is killed too, this long after it started (0: not)

    def describe(self) -> str:
        """E.g. "printing@17000B+3ms disk-full rekill@900ms"."""
        words = ["%s%s+%dms" % (self.moment, "@%dB" % self.print_bytes if self.moment == "printing" else "",
                                self.offset_ms)]
        if self.fault:
            words.append(self.fault)
        if self.rekill_ms:
            words.append("rekill@%dms" % self.rekill_ms)
        return " ".join(words)


class Planner:
    """Random plans; every moment comes once in each run of len(MOMENTS) trials, in a random order,
    so a short run still covers them all."""

    def __init__(self, rng: random.Random, *, disk_faults: bool) -> None:
        self._rng = rng
        self._faults = LINK_FAULTS + ((DISK_FAULT,) if disk_faults else ())
        self._deck: list[str] = []
        self.certificate_bytes = CERTIFICATE_BYTES

    def next(self) -> Plan:
        rng = self._rng
        if not self._deck:
            self._deck = list(MOMENTS)
            rng.shuffle(self._deck)
        moment = self._deck.pop()
        fault = rng.choice(self._faults) if rng.random() < FAULT_SHARE else ""
        if fault in ("terminal-offline", "central-cut", DISK_FAULT):
            offset = rng.randint(0, 3000)                  # the kiosk lives with the fault a while first
        elif moment == "waiting":
            offset = rng.randint(0, 1500)
        elif moment == "approved":      # the journal's write follows the approval within milliseconds
            offset = rng.choice((rng.randint(0, 3), rng.randint(0, 15), rng.randint(0, 400)))
        elif moment == "issuing":
            offset = rng.randint(0, 150)
        elif moment == "printing":
            offset = rng.randint(0, 5)
        else:
            offset = rng.randint(0, 4000)
        return Plan(moment=moment, offset_ms=offset, fault=fault, present_delay_ms=rng.randint(100, 1200),
                    print_bytes=rng.randint(64, self.certificate_bytes),
                    card_after_kill=rng.choice(("approve", "removed")), link_back_ms=rng.randint(0, 3000),
                    rekill_ms=rng.randint(200, 2000) if rng.random() < REKILL_SHARE else 0)


# -- the judgement -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Document:
    """One of central's issued documents."""

    request_id: str
    serial: str
    voided: bool


@dataclass(frozen=True)
class TrialWorld:
    """What one trial left in the world, as the judge reads it."""

    payments: tuple[dict, ...]          # the acquirer's statement entries of the trial's sales
    documents: tuple[Document, ...]     # central's documents issued during the trial
    printed: tuple[str, ...]            # serials of the complete printed certificates whose QR verifies
    journal: tuple[JournalEntry, ...]   # the trial's journal entries, after reconciliation
    undelivered: tuple[str, ...]        # the trial's outbox messages not delivered yet


@dataclass
class Verdict:
    lost: list[str] = field(default_factory=list)          # one reason a line, naming ids only
    duplicated: list[str] = field(default_factory=list)
    unsettled: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.unsettled)


def kept(payment: dict) -> bool:
    """An approved payment not given back: money the kiosk keeps."""
    return payment.get("status") == "approved" and not payment.get("given_back")


def judge(world: TrialWorld) -> Verdict:
    """The trial's lost, duplicated and unsettled items, as the module docstring defines them."""
    verdict = Verdict()
    request_of_sale = {entry.sale_id: entry.request_id for entry in world.journal}
    charges: dict[str, list[dict]] = {}
    for payment in world.payments:
        if kept(payment):
            request = request_of_sale.get(payment["sale_id"], "unjournalled-sale:" + payment["sale_id"])
            charges.setdefault(request, []).append(payment)
    documents: dict[str, list[Document]] = {}
    for document in world.documents:
        documents.setdefault(document.request_id, []).append(document)
    printed = set(world.printed)

    all_kept = [p for ps in charges.values() for p in ps]
    for extra in all_kept[1:]:
        verdict.duplicated.append("charge %s kept beside %s" % (extra["payment_id"], all_kept[0]["payment_id"]))
    for request, docs in documents.items():
        valid = [d for d in docs if not d.voided]
        for extra in valid[1:]:
            verdict.duplicated.append("document %s valid beside %s for request %s"
                                      % (extra.serial, valid[0].serial, request))

    for request, paid in charges.items():
        docs = documents.get(request, [])
        in_hand = [d for d in docs if d.serial in printed]
        if any(not d.voided for d in in_hand):
            continue
        if in_hand:
            verdict.unsettled.append("charge %s kept, its printed certificate %s voided"
                                     % (paid[0]["payment_id"], in_hand[0].serial))
        else:
            valid = [d.serial for d in docs if not d.voided]
            verdict.lost.append("charge %s kept for request %s, no certificate printed%s"
                                % (paid[0]["payment_id"], request,
                                   " (valid document %s)" % valid[0] if valid else ""))
    for request, docs in documents.items():
        if request not in charges:
            for document in docs:
                if not document.voided:
                    verdict.unsettled.append("document %s valid, request %s has no kept charge"
                                             % (document.serial, request))
    for entry in world.journal:
        if entry.state not in FINISHED:
            verdict.unsettled.append("journal txn %s still %s" % (entry.txn_id, entry.state.name))
    for message_id in world.undelivered:
        verdict.unsettled.append("outbox message %s undelivered" % message_id)
    return verdict


# -- the link to central, which the harness can cut ----------------------------------------------------------

class CentralLink:
    """A TCP relay on loopback between the kiosk and central. `cut()` resets every connection
    through it and every new one until `restore()`; `requests_seen` counts the certificate
    requests that went through (the request line of `wire.REQUESTS`)."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._changed = threading.Condition()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        self.requests_seen = 0
        self._thread = threading.Thread(target=self._accept, name="central-link", daemon=True)

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self._listener.getsockname()[1]

    def start(self) -> CentralLink:
        self._thread.start()
        return self

    def close(self) -> None:
        with self._changed:
            self._closed = True
        self._listener.close()
        self._reset_all()
        self._thread.join(timeout=5)

    def cut(self) -> None:
        with self._changed:
            self._cut = True
        self._reset_all()
        log.info("soak.central_cut")

    def restore(self) -> None:
        with self._changed:
            if not self._cut:
                return
            self._cut = False
        log.info("soak.central_restored")

    def wait_for_requests(self, count: int, timeout: float) -> bool:
        """Whether `count` certificate requests have gone through within `timeout` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self.requests_seen >= count, timeout)

    def _reset_all(self) -> None:
        with self._changed:
            sockets = list(self._open)
        for sock in sockets:
            _reset(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._changed:
                if self._closed:
                    _reset(client)
                    return
                cut = self._cut
            if cut:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self._upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._changed:
                self._open.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, from_kiosk: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if from_kiosk and REQUEST_LINE in data:
                    with self._changed:
                        self.requests_seen += data.count(REQUEST_LINE)
                        self._changed.notify_all()
                target.sendall(data)
        except OSError:
            pass
        finally:
            with self._changed:
                self._open.discard(source)
                self._open.discard(target)
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()


def _reset(sock: socket.socket) -> None:
    """Close so that the peer sees a reset."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


# -- the kiosk's disk ----------------------------------------------------------------------------------------

class StateDisk:
    """The directory of the kiosk's state database. As root, a tmpfs of its own (STATE_DISK_MIB),
    which `fill()` fills up with a filler file and `empty()` frees; otherwise a plain directory
    that cannot be filled (`fillable` False)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.fillable = False
        self._filler = self.path / "filler"

    def __enter__(self) -> StateDisk:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.geteuid() == 0 and shutil.which("mount"):
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0700" % STATE_DISK_MIB, "tmpfs",
                                   str(self.path)], capture_output=True, text=True, check=False)
            self.fillable = done.returncode == 0
            if not self.fillable:
                log.warning("soak.no_tmpfs error=%s", done.stderr.strip())
        return self

    def __exit__(self, *_exc: object) -> None:
        self.empty()
        if self.fillable:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, check=False)

    def fill(self) -> None:
        """Write the filler until the disk says it is full."""
        block = b"\0" * (1 << 20)
        with open(self._filler, "ab", buffering=0) as filler:
            for size in (len(block), 4096, 512):
                while True:
                    try:
                        filler.write(block[:size])
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        log.info("soak.disk_full")

    def empty(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._filler.unlink()


# -- one run of the app --------------------------------------------------------------------------------------

class KioskRun:
    """The real app, `kiosk run --journey`, on the stack; its output read on a thread, which calls
    `on_screen[name]` when the runner announces that screen and follows the screen shown."""

    def __init__(self, config: Path, journey: Path, out_dir: Path, *, display: str, cwd: Path,
                 on_screen: dict[str, Callable[[], None]] | None = None) -> None:
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, DISPLAY=display)
        env.setdefault("SDL_AUDIODRIVER", "dummy")
        self._on_screen = on_screen or {}
        self.output: list[str] = []           # appended by the reading thread only
        self.shown = ""                       # the screen the app shows now, as it logs it
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli", "run", "--config", str(config), "--journey", str(journey),
             "--out", str(out_dir)], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, name="kiosk-output", daemon=True)
        self._reader.start()

    def alive(self) -> bool:
        return self.process.poll() is None

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            line = line.rstrip("\n")
            self.output.append(line)
            shown = _SHOWN.search(line)
            if shown:
                self.shown = shown.group(1)
            if line.startswith("JOURNEY screen "):
                action = self._on_screen.get(line.split()[2])
                if action is not None:
                    try:
                        action()
                    except Exception:          # a hook's fault must not stop the reading
                        log.exception("soak.hook_failed screen=%s", line.split()[2])

    def kill(self) -> None:
        """SIGKILL: the power cut, as the app sees it."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, as systemd stops it; SIGKILL when it lingers."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.finish()

    def finish(self) -> None:
        """Wait for the app to end and its output to be read; write `kiosk.log`."""
        self.process.wait()
        self._reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        (self.out_dir / "kiosk.log").write_text("\n".join(self.output) + "\n", encoding="utf-8")


# -- the kiosk's state, as the harness reads it --------------------------------------------------------------

class StateView:
    """The kiosk's state database through the harness's own connection: journal and outbox, read only."""

    def __init__(self, path: Path) -> None:
        self.database = StateDatabase(path)
        self.journal = SqliteJournal(self.database)      # creates its table when the kiosk has not yet
        self.outbox = Outbox(self.database)

    def txn_ids(self) -> set[str]:
        return {row[0] for row in self.database.run("SELECT txn_id FROM journal")}

    def entries(self, txn_ids: set[str]) -> list[JournalEntry]:
        found = (self.journal.get(txn_id) for txn_id in sorted(txn_ids))
        return [entry for entry in found if entry is not None]

    def undelivered(self, request_ids: set[str]) -> list[str]:
        """The outbox messages of these requests (the request itself, its void) not delivered yet."""
        return [m.message_id for m in self.outbox.pending()
                if m.message_id in request_ids or (m.payload or {}).get("request_id") in request_ids
                or getattr(m, "txn", None) in request_ids]

    def close(self) -> None:
        self.database.close()


# -- the soak ------------------------------------------------------------------------------------------------

@dataclass
class TrialReport:
    index: int
    plan: Plan
    moment_reached: str               # the plan's moment, "<moment>-missed", or "exited" (the app ended first)
    at_kill: str                      # the trial's journal state when the app was killed ("-": no entry)
    seconds: float
    verdict: Verdict
    charges: int = 0                  # approved sales of the trial
    given_back: int = 0
    documents: int = 0
    voided: int = 0
    printed: int = 0                  # complete certificates
    partial: int = 0                  # jobs cut off mid-print
    fault_bit: bool = False           # the fault showed in the kiosk's log (a journal or outbox write failed...)
    settled_in_s: float = 0.0

    def line(self) -> str:
        """One short line: the plan, where the kill found the journal, what the world holds, the verdict."""
        outcome = "ok" if self.verdict.ok else "FAILED lost %d duplicated %d unsettled %d" % (
            len(self.verdict.lost), len(self.verdict.duplicated), len(self.verdict.unsettled))
        missed = "" if self.moment_reached == self.plan.moment else " (%s)" % self.moment_reached
        return "trial %04d %s%s | killed at %s | paid %d back %d, docs %d void %d, printed %d%s | %.1fs %s" % (
            self.index, self.plan.describe(), missed, self.at_kill, self.charges, self.given_back, self.documents,
            self.voided, self.printed, " cut %d" % self.partial if self.partial else "", self.seconds, outcome)


@dataclass
class SoakReport:
    seed: int
    trials: list[TrialReport] = field(default_factory=list)
    disk_faults: bool = False

    @property
    def lost(self) -> int:
        return sum(len(t.verdict.lost) for t in self.trials)

    @property
    def duplicated(self) -> int:
        return sum(len(t.verdict.duplicated) for t in self.trials)

    @property
    def unsettled(self) -> int:
        return sum(len(t.verdict.unsettled) for t in self.trials)

    def summary_line(self) -> str:
        return "trials: %d lost: %d duplicated: %d unsettled: %d" % (
            len(self.trials), self.lost, self.duplicated, self.unsettled)

    def moments_reached(self) -> Counter:
        return Counter(t.moment_reached for t in self.trials)

    def figures(self) -> str:
        """The distribution of the kills and what the kiosk was doing, for standard error."""
        if not self.trials:
            return "no trials"
        seconds = [t.seconds for t in self.trials]
        lines = [
            "seed %d; disk faults %s" % (self.seed, "on (tmpfs)" if self.disk_faults
                                         else "off (no tmpfs of its own: not root?)"),
            "seconds a trial: median %.1f, mean %.1f, max %.1f" % (
                statistics.median(seconds), statistics.mean(seconds), max(seconds)),
            "seconds from the restart to settled: median %.1f, max %.1f" % (
                statistics.median(t.settled_in_s for t in self.trials), max(t.settled_in_s for t in self.trials)),
            "moments reached: " + _counts(self.moments_reached()),
            "journal state at the kill: " + _counts(Counter(t.at_kill for t in self.trials)),
        ] + [
            "  after %s: %s" % (moment, _counts(Counter(t.at_kill for t in self.trials if t.moment_reached == moment)))
            for moment in MOMENTS if any(t.moment_reached == moment for t in self.trials)
        ] + [
            "faults: " + _counts(Counter(t.plan.fault or "-" for t in self.trials)),
            "faults that showed in the kiosk's log: %d" % sum(t.fault_bit for t in self.trials),
            "restarted apps killed again while settling: %d" % sum(bool(t.plan.rekill_ms) for t in self.trials),
            "charges %d, given back %d; documents %d, voided %d; certificates printed %d, cut off mid-print %d" % (
                sum(t.charges for t in self.trials), sum(t.given_back for t in self.trials),
                sum(t.documents for t in self.trials), sum(t.voided for t in self.trials),
                sum(t.printed for t in self.trials), sum(t.partial for t in self.trials)),
        ]
        return "\n".join(lines)


def _counts(counter: Counter) -> str:
    return ", ".join("%s %d" % (name, n) for name, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass
class _Before:
    """The world before a trial, to tell the trial's part of it."""

    payment_ids: set[str]
    request_ids: set[str]
    last_job: int
    txn_ids: set[str]
    requests_seen: int


class Soak:
    """The stack, the screen and the harness's parts, shared by every trial."""

    def __init__(self, stack: DemoStack, display: str, workdir: Path, out: Path, disk: StateDisk,
                 link: CentralLink, rng: random.Random, *, keep_all: bool = False) -> None:
        self.stack = stack
        self.keep_all = keep_all          # every trial's evidence, not only the failed ones'
        self.display = display
        self.workdir = workdir
        self.out = out
        self.disk = disk
        self.link = link
        self.rng = rng
        self.state_path = disk.path / STATE_FILE
        self.config = write_config(stack, stack.workdir / "soak.toml", central_url=link.url,
                                   state_path=self.state_path)
        self.planner = Planner(rng, disk_faults=disk.fillable)
        self.citizen = stack.citizen_numbers()[1]
        self.public_key = signing.load_public_key_pem(stack.document_key_pem)

    # -- one trial ----------------------------------------------------------------------------------

    def trial(self, index: int) -> TrialReport:
        plan = self.planner.next()
        started = time.monotonic()
        trial_dir = self.out / ("trial-%04d" % index)
        state = StateView(self.state_path)
        try:
            before = self._before(state)
            reached, at_kill, first = self._run_and_kill(plan, trial_dir / "first", state, before)
            self._after_kill(plan, self._sale_may_be_in_flight(state, before))
            link_back = threading.Timer(plan.link_back_ms / 1000, self.link.restore)
            link_back.start()
            try:
                if plan.rekill_ms:
                    self._restart_and_kill(plan, trial_dir / "restart-killed")
                restart = KioskRun(self.config, RESTART_JOURNEY, trial_dir / "restart", display=self.display,
                                   cwd=self.stack.workdir)
                try:
                    settled_in = self._wait_settled(state, before, restart)
                finally:
                    restart.stop()
            finally:
                link_back.cancel()
                self.link.restore()
            world = self._world(state, before)
            verdict = judge(world)
        finally:
            state.close()           # the last connection: SQLite folds the write-ahead log in
        report = TrialReport(
            index=index, plan=plan, moment_reached=reached, at_kill=at_kill,
            seconds=time.monotonic() - started, verdict=verdict, settled_in_s=settled_in,
            charges=sum(p["status"] == "approved" for p in world.payments),
            given_back=sum(bool(p["given_back"]) for p in world.payments),
            documents=len(world.documents), voided=sum(d.voided for d in world.documents),
            printed=len(world.printed), partial=self._partial_jobs(before),
            fault_bit=_fault_showed(plan.fault, first.output))
        self._learn_certificate_size(before)
        if verdict.ok and reached != "exited" and not self.keep_all:
            shutil.rmtree(trial_dir, ignore_errors=True)
        else:
            self._keep_evidence(trial_dir, report, world, before)
        return report

    def _before(self, state: StateView) -> _Before:
        jobs = self.stack.printer.jobs
        return _Before(payment_ids={p["payment_id"] for p in self.stack.terminal.statement()["payments"]},
                       request_ids=self._central_request_ids(), last_job=jobs[-1].number if jobs else 0,
                       txn_ids=state.txn_ids(), requests_seen=self.link.requests_seen)

    def _run_and_kill(self, plan: Plan, out_dir: Path, state: StateView,
                      before: _Before) -> tuple[str, str, KioskRun]:
        terminal = self.stack.terminal
        if plan.fault == "terminal-drop-answer":
            terminal.fault("drop-answer")
        elif plan.fault == "terminal-drop-link":
            terminal.fault("drop-link")
        paid_part = threading.Event()
        run = KioskRun(self.config, PAID_JOURNEY, out_dir, display=self.display, cwd=self.stack.workdir,
                       on_screen={"insert_card": lambda: self.stack.insert(self.citizen),
                                  "confirm": paid_part.set, "take_card": self.stack.remove})
        done = threading.Event()
        citizen = threading.Thread(target=self._citizen_at_terminal, args=(plan, run, done), daemon=True)
        citizen.start()
        try:
            reached = self._await_moment(plan, run, before, paid_part)
            if reached != "exited":
                self._apply_fault(plan)
                time.sleep(plan.offset_ms / 1000)
                run.kill()
        finally:
            done.set()
            run.kill()
            run.finish()
            citizen.join(timeout=5)
        entries = state.entries(state.txn_ids() - before.txn_ids)
        at_kill = "+".join(entry.state.name for entry in entries) or "-"
        return reached, at_kill, run

    def _citizen_at_terminal(self, plan: Plan, run: KioskRun, done: threading.Event) -> None:
        """The citizen at the payment terminal: presents the bank card a little after the terminal
        asks for it; in a `waiting` trial, the kill comes first."""
        terminal = self.stack.terminal
        while not done.is_set() and run.alive():
            if terminal.wait_until_waiting(0.1):
                break
        else:
            return
        if plan.moment == "waiting" or done.wait(plan.present_delay_ms / 1000):
            return
        terminal.present("approve")

    def _await_moment(self, plan: Plan, run: KioskRun, before: _Before, paid_part: threading.Event) -> str:
        """Wait until the plan's moment is seen in the world: the moment's name; "<moment>-missed" when an
        end screen or the bound came first; "exited" when the app ended by itself."""
        deadline = run.started + MOMENT_BOUND_S
        terminal, printer = self.stack.terminal, self.stack.printer
        waited_for_sale = False

        def seen() -> bool:
            nonlocal waited_for_sale
            match plan.moment:
                case "waiting":
                    return terminal.wait_until_waiting(0.05)
                case "approved":
                    if not waited_for_sale:
                        waited_for_sale = terminal.wait_until_waiting(0.05)
                        return False
                    return terminal.display()["state"] not in IN_FLIGHT_STATES
                case "issuing":
                    return self.link.wait_for_requests(before.requests_seen + 1, 0.05)
                case "printing":
                    return printer.wait_until_receiving(plan.print_bytes, 0.05)
                case _:
                    return paid_part.wait(0.05)

        while True:
            if seen():
                return plan.moment
            if not run.alive():
                return "exited"
            if time.monotonic() > deadline or (paid_part.is_set() and run.shown in END_SCREENS
                                               and plan.moment != "random"):
                return plan.moment + "-missed"
            if plan.moment == "approved" and waited_for_sale:
                time.sleep(0.001)

    def _apply_fault(self, plan: Plan) -> None:
        match plan.fault:
            case "terminal-offline":
                self.stack.terminal.set_offline(True)
            case "central-cut":
                self.link.cut()
            case "disk-full":
                self.disk.fill()

    def _sale_may_be_in_flight(self, state: StateView, before: _Before) -> bool:
        """Whether the terminal runs a sale of the trial, or may be about to (its request on the way):
        a sale whose outcome neither the journal nor the acquirer's statement holds."""
        if self.stack.terminal.display()["state"] in IN_FLIGHT_STATES:
            return True
        done = {p["sale_id"] for p in self.stack.terminal.statement()["payments"]}
        return any(e.payment_id is None and e.sale_id not in done and e.state in (TxnState.OPENED, TxnState.SETTLING)
                   for e in state.entries(state.txn_ids() - before.txn_ids))

    def _after_kill(self, plan: Plan, sale_in_flight: bool) -> None:
        """The world goes on: the ID card comes out, the citizen at the terminal finishes a sale still
        waiting there (pays anyway, or takes the card back), the faults clear (central may stay cut
        until after the restart). The terminal is idle when the app starts again."""
        terminal = self.stack.terminal
        self.stack.remove()
        self.disk.empty()
        terminal.set_offline(False)
        terminal.fault("clear")
        if sale_in_flight and terminal.wait_until_waiting(2.0):
            terminal.present(plan.card_after_kill)
        deadline = time.monotonic() + 10
        while terminal.display()["state"] in IN_FLIGHT_STATES and time.monotonic() < deadline:
            time.sleep(0.02)
        if plan.fault != "central-cut":
            self.link.restore()

    def _restart_and_kill(self, plan: Plan, out_dir: Path) -> None:
        """A second power cut, while the restarted app settles what the first one left: every step of
        the settlement must hold when it is done again."""
        again = KioskRun(self.config, RESTART_JOURNEY, out_dir, display=self.display, cwd=self.stack.workdir)
        try:
            time.sleep(plan.rekill_ms / 1000)
        finally:
            again.kill()
            again.finish()

    def _wait_settled(self, state: StateView, before: _Before, restart: KioskRun) -> float:
        """Wait until the trial's journal entries are finished (or dead) and its outbox messages
        delivered, for at most SETTLE_BOUND_S; the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < SETTLE_BOUND_S:
            entries = state.entries(state.txn_ids() - before.txn_ids)
            open_entries = [e for e in entries if e.state not in FINISHED and e.state is not TxnState.DEAD]
            requests = {e.request_id for e in entries} | (self._central_request_ids() - before.request_ids)
            voids = {e.request_id for e in entries if e.requested and e.voided}
            if not open_entries and not state.undelivered(requests) and voids <= self._voided_at_central():
                return time.monotonic() - started
            if not restart.alive():
                log.warning("soak.restart_ended code=%s", restart.process.returncode)
                break
            time.sleep(0.1)
        return time.monotonic() - started

    # -- the world ------------------------------------------------------------------------------------

    def _central_request_ids(self) -> set[str]:
        with contextlib.closing(self._central()) as db:
            return {row[0] for row in db.execute("SELECT request_id FROM certificate_requests")}

    def _voided_at_central(self) -> set[str]:
        """The requests central holds as voided (a voided document, or a void that came first)."""
        with contextlib.closing(self._central()) as db:
            return {row[0] for row in db.execute(
                "SELECT request_id FROM certificate_requests WHERE voided_at IS NOT NULL")}

    def _central(self) -> sqlite3.Connection:
        return sqlite3.connect("file:%s?mode=ro" % (self.stack.workdir / "central.sqlite3"), uri=True, timeout=10)

    def _world(self, state: StateView, before: _Before) -> TrialWorld:
        entries = state.entries(state.txn_ids() - before.txn_ids)
        sale_ids = {entry.sale_id for entry in entries}
        payments = [p for p in self.stack.terminal.statement()["payments"]
                    if p["payment_id"] not in before.payment_ids or p["sale_id"] in sale_ids]
        new_requests = self._central_request_ids() - before.request_ids
        requests = new_requests | {entry.request_id for entry in entries}
        with contextlib.closing(self._central()) as db:
            rows = db.execute("SELECT request_id, serial, voided_at FROM issued_documents").fetchall()
        documents = tuple(Document(r[0], r[1], r[2] is not None) for r in rows if r[0] in requests)
        return TrialWorld(payments=tuple(payments), documents=documents, printed=tuple(self._printed(before)),
                          journal=tuple(entries), undelivered=tuple(state.undelivered(requests)))

    def _printed(self, before: _Before) -> list[str]:
        """The serials of the trial's complete certificates, read off their QR codes and verified."""
        serials = []
        for job in self.stack.printer.jobs:
            if job.number <= before.last_job or not job.complete:
                continue
            for code in job.qr_codes:
                try:
                    serials.append(signing.verify(code.text, [self.public_key]).serial)
                except signing.InvalidPayload as exc:
                    log.warning("soak.qr_not_genuine job=%d problem=%s", job.number, exc)
        return serials

    def _partial_jobs(self, before: _Before) -> int:
        return sum(1 for job in self.stack.printer.jobs if job.number > before.last_job and not job.complete)

    def _learn_certificate_size(self, before: _Before) -> None:
        """The printing moment draws its byte count up to the size of a whole certificate."""
        for job in self.stack.printer.jobs:
            if job.number > before.last_job and job.complete and job.qr_codes:
                self.planner.certificate_bytes = len(job.raw)

    def _keep_evidence(self, trial_dir: Path, report: TrialReport, world: TrialWorld, before: _Before) -> None:
        trial_dir.mkdir(parents=True, exist_ok=True)
        for job in self.stack.printer.jobs:
            if job.number > before.last_job:
                for path in (job.png_path, job.bin_path):
                    with contextlib.suppress(OSError):
                        shutil.copy2(path, trial_dir / path.name)
        (trial_dir / "verdict.json").write_text(json.dumps({
            "plan": dataclasses.asdict(report.plan), "moment_reached": report.moment_reached,
            "at_kill": report.at_kill, "verdict": dataclasses.asdict(report.verdict),
            "payments": list(world.payments),
            "documents": [dataclasses.asdict(d) for d in world.documents], "printed": list(world.printed),
            "journal": [_entry_json(e) for e in world.journal], "undelivered": list(world.undelivered),
        }, indent=2), encoding="utf-8")


def _entry_json(entry: JournalEntry) -> dict:
    data = dataclasses.asdict(entry)
    data.update(amount=str(entry.amount), method=entry.method.value, state=entry.state.name)
    return data


# What the kiosk logs when a fault reaches it: a write of the state database failing, central
# unreachable, a sale's answer lost or refused by the link.
_FAULT_MARKS = {
    DISK_FAULT: ("unwritable", "cannot"),
    "central-cut": ("online=False", "document_late", "catalogue_unavailable"),
    "terminal-offline": ("status=UNKNOWN", "status=FAILED"),
    "terminal-drop-answer": ("status=UNKNOWN",),
    "terminal-drop-link": ("status=UNKNOWN", "status=FAILED"),
}


def _fault_showed(fault: str, output: list[str]) -> bool:
    """Whether the fault reached the kiosk before the kill, as its log tells."""
    marks = _FAULT_MARKS.get(fault, ())
    return any(mark in line for line in output for mark in marks)


def write_config(stack: DemoStack, path: Path, *, central_url: str, state_path: Path) -> Path:
    """The stack's kiosk configuration with central behind `central_url` and the state database
    at `state_path`; ValueError when the stack's configuration has changed shape."""
    from kiosk import config as kiosk_config

    text = stack.config_path.read_text(encoding="utf-8")
    text, central = re.subn(r'(?m)^url = ".*"$', 'url = %s' % json.dumps(central_url), text, count=1)
    text, outbox = re.subn(r'(?m)^path = ".*"$', 'path = %s' % json.dumps(str(state_path)), text, count=1)
    path.write_text(text, encoding="utf-8")
    loaded = kiosk_config.load(path)
    if (central, outbox) != (1, 1) or loaded.central.url != central_url or loaded.outbox.path != state_path:
        raise ValueError("the demo stack's kiosk.toml no longer has [central] url and [outbox] path as expected")
    return path


# -- the run -------------------------------------------------------------------------------------------------

def run(trials: int, *, seed: int | None = None, out: Path, on_trial: Callable[[TrialReport], None] | None = None,
        keep_all: bool = False) -> SoakReport:
    """Run `trials` trials on one stack and one screen; the failed trials' evidence (every trial's
    with `keep_all`) under `out`. `on_trial` hears each trial's report as it ends."""
    seed = random.SystemRandom().randrange(1 << 32) if seed is None else seed
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="kiosk-soak-"))
    report = SoakReport(seed=seed)
    try:
        with contextlib.ExitStack() as resources:
            stack = resources.enter_context(DemoStack(scratch / "stack", bank_card=None, idle_timeout_s=120.0,
                                                      document_timeout_s=15.0))
            screen = resources.enter_context(VirtualScreen())
            disk = resources.enter_context(StateDisk(scratch / "state"))
            link = CentralLink(stack.central.url).start()
            resources.callback(link.close)
            report.disk_faults = disk.fillable
            soak = Soak(stack, screen.display or "", scratch, out, disk, link, rng, keep_all=keep_all)
            for index in range(1, trials + 1):
                trial = soak.trial(index)
                report.trials.append(trial)
                if on_trial is not None:
                    on_trial(trial)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drivers.demo.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--seed", type=int, default=None, help="the plans' random seed (default: a fresh one)")
    parser.add_argument("--out", type=Path, default=Path("soak-out"), help="failed trials' evidence, and soak.log")
    parser.add_argument("--keep-all", action="store_true",
                        help="keep every trial's evidence, not only the failed ones'")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out / "soak.log", mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger().handlers[:] = [handler]
    logging.getLogger().setLevel(logging.INFO)

    def said(trial: TrialReport) -> None:
        print(trial.line(), file=sys.stderr, flush=True)
        for problem in trial.verdict.lost + trial.verdict.duplicated + trial.verdict.unsettled:
            print("    " + problem, file=sys.stderr, flush=True)

    report = run(args.trials, seed=args.seed, out=out, on_trial=said, keep_all=args.keep_all)
    print(report.figures(), file=sys.stderr, flush=True)
    print(report.summary_line(), flush=True)
    return 0 if report.lost == report.duplicated == report.unsettled == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
