"""The reader goes away and comes back, and so does pcscd, through the real
stack: the driver (in tests/drivers/reader_events_probe.py, a process of its
own) -> libpcsclite -> a pcscd of this test's own -> vpcd -> a simulated card.

The system pcscd is never touched. pcscd 1.9 always puts its socket and pid
file in /run/pcscd (and removes them when it exits), so the private pcscd
runs in a mount namespace of its own where /run/pcscd is a directory of this
test; the probe finds it through PCSCLITE_CSOCK_NAME. Its vpcd reader listens
on a port of its own. Every wait is on a line printed by the probe or by
pcscd, with a deadline.
"""

from __future__ import annotations

import datetime as dt
import errno
import itertools
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any, Iterator

import pytest
from smartcard.scard import (
    SCARD_E_CANCELLED, SCARD_E_NO_READERS_AVAILABLE, SCARD_E_TIMEOUT, SCARD_S_SUCCESS,
    SCARD_STATE_CHANGED, SCARD_STATE_EMPTY, SCARD_STATE_PRESENT, SCARD_STATE_UNAVAILABLE,
    SCARD_STATE_UNKNOWN,
)

from drivers import pcsc_channel, pcsc_watch
from kiosk.ports.card_reader import CardEvent, ReaderStatus
from drivers.card_sim.card import SimulatedCard
from drivers.card_sim.issuer import IssuerKey
from drivers.card_sim.slot import VirtualCardSlot
from kiosk.issuer_keys import TrustStore
from drivers.pcsc_watch import PNP_NOTIFICATION, WATCH_POLL_S
from drivers.pyscard_reader import PyscardCardReader
from tests.drivers.conftest import EventLog

pytestmark = pytest.mark.realstack   # pcscd, the simulators, central or Xvfb: see README

REPO = Path(__file__).resolve().parents[2]
PROBE_MODULE = "tests.drivers.reader_events_probe"
VPCD_CONF = Path("/etc/reader.conf.d/vpcd")
SYSTEM_VPCD_PORT = 0x8C7B                         # 35963 (and 35964): the system pcscd's
CANDIDATE_PORTS = (0x8CA0, 0x8CAA, 0x8CB4, 0x8CBE)  # 36000...; vpcd takes a port and the next
READER = "Virtual PCD 00 00"                      # the private pcscd's first vpcd slot
CITIZEN = "01020304050"
PIN = "735190"
TODAY = dt.date(2026, 1, 15)
LINE_TIMEOUT_S = 10.0
PCSCD_START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
OUTAGE_CPU_SHARE = 0.25        # of one core while the reader is gone: far from a busy loop

# In the new namespace: put our directory over /run/pcscd, then become pcscd.
# If the bind fails, pcscd never runs (it would take the system's socket path).
_NAMESPACED_PCSCD = 'mount --bind "$0" /run/pcscd && exec "$1" --foreground --info -c "$2"'


def _port_pair_free(port: int) -> bool:
    for candidate in (port, port + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as vpcd: TIME_WAIT is no bar
            try:
                probe.bind(("0.0.0.0", candidate))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return False
                raise
    return True


def _requirements() -> tuple[str, str]:
    """(unshare, pcscd) paths; skips the test where a private pcscd cannot run."""
    unshare, pcscd = shutil.which("unshare"), shutil.which("pcscd") or "/usr/sbin/pcscd"
    if unshare is None or not os.access(pcscd, os.X_OK) or not VPCD_CONF.is_file():
        pytest.skip("needs unshare, pcscd and the vpcd driver (%s)" % VPCD_CONF)
    if not Path("/run/pcscd").is_dir():
        pytest.skip("/run/pcscd is missing: nothing to bind the private pcscd's directory over")
    trial = subprocess.run([unshare, "--mount", "--propagation", "private", "true"],
                           capture_output=True, timeout=STOP_TIMEOUT_S)
    if trial.returncode != 0:
        pytest.skip("cannot make a mount namespace (needs root or CAP_SYS_ADMIN)")
    return unshare, pcscd


class _Lines:
    """A child's output, line by line, read on a thread; `next` waits with a deadline."""

    def __init__(self, stream: IO[str], copy_to: IO[str] | None = None) -> None:
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._copy_to = copy_to
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True,
                                        name="test-lines")
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                if self._copy_to is not None:
                    self._copy_to.write(line)
                    self._copy_to.flush()
                self._lines.put(line.rstrip("\n"))
        finally:
            self._lines.put(None)

    def next(self, timeout: float = LINE_TIMEOUT_S) -> str | None:
        """The next line; None at the end of the output or at the deadline."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            return None
        if line is not None:
            self.seen.append(line)
        return line

    def until(self, text: str, timeout: float) -> bool:
        """True once a line containing `text` has come, within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.next(max(0.0, deadline - time.monotonic()))
            if line is None:
                return False
            if text in line:
                return True

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def _stop(process: subprocess.Popen[Any] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT_S)


class PrivatePcscd:
    """A pcscd of the test's own with one vpcd reader (two slots) on `port`."""

    def __init__(self, directory: Path, port: int, unshare: str, pcscd: str) -> None:
        self.port = port
        self.conf_dir = directory / "reader.conf.d"
        self.run_dir = directory / "run"
        self.socket = self.run_dir / "pcscd.comm"
        self.log_path = directory / "pcscd.log"
        self._command = [unshare, "--mount", "--propagation", "private", "sh", "-c",
                         _NAMESPACED_PCSCD, str(self.run_dir), pcscd, str(self.conf_dir)]
        self.conf_dir.mkdir()
        self.run_dir.mkdir()
        (self.conf_dir / "vpcd").write_text(_with_port(VPCD_CONF.read_text(), port))
        self._process: subprocess.Popen[str] | None = None
        self._lines: _Lines | None = None
        self._log = open(self.log_path, "a", encoding="utf-8", errors="replace")

    def start(self) -> None:
        """Start pcscd and wait until its vpcd listens and its socket is there."""
        assert self._process is None or self._process.poll() is not None
        self.socket.unlink(missing_ok=True)    # left by a pcscd that was killed
        self._process = subprocess.Popen(self._command, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         text=True, errors="replace")
        self._lines = _Lines(self._process.stdout, copy_to=self._log)
        # pcscd says this once its readers are set up (vpcd listening); its socket
        # is bound a moment later, before it takes its first client.
        if not self._lines.until("daemon ready", PCSCD_START_TIMEOUT_S):
            self.stop()
            pytest.fail("the private pcscd did not start:\n%s" % self.log_tail())
        deadline = time.monotonic() + PCSCD_START_TIMEOUT_S
        while not self.socket.exists():
            if time.monotonic() > deadline or self._process.poll() is not None:
                self.stop()
                pytest.fail("the private pcscd made no socket:\n%s" % self.log_tail())
            try:
                self._process.wait(0.005)      # paces the look; returns at once if pcscd dies
            except subprocess.TimeoutExpired:
                pass

    def wait_for_log(self, text: str, timeout: float = LINE_TIMEOUT_S) -> None:
        """Wait until pcscd logs a line containing `text`."""
        assert self._lines is not None
        if not self._lines.until(text, timeout):
            pytest.fail("pcscd did not log %r:\n%s" % (text, self.log_tail()))

    def stop(self) -> None:
        """SIGTERM (pcscd's own clean exit), then SIGKILL if it lingers."""
        _stop(self._process)
        if self._lines is not None:
            self._lines.join(STOP_TIMEOUT_S)

    def close(self) -> None:
        self.stop()
        self._log.close()

    def log_tail(self) -> str:
        return "".join(self.log_path.read_text(errors="replace").splitlines(True)[-20:])


def _with_port(conf: str, port: int) -> str:
    """/etc/reader.conf.d/vpcd with its port (in DEVICENAME and CHANNELID) changed."""
    lines = []
    for line in conf.splitlines():
        key = line.split(None, 1)[0] if line.strip() else ""
        if key in ("DEVICENAME", "CHANNELID"):
            line = line.replace("0x%X" % SYSTEM_VPCD_PORT, "0x%X" % port)
            line = line.replace("0x%x" % SYSTEM_VPCD_PORT, "0x%X" % port)
            assert "0x%X" % port in line, "unexpected vpcd line: %r" % line
        lines.append(line)
    return "\n".join(lines) + "\n"


class Probe:
    """The kiosk's driver in its own process, talking to the private pcscd.

    It reaches pcscd through a link to pcscd's socket: while the link is
    down, pcscd is out of its sight (`hide_pcscd`, `show_pcscd`)."""

    def __init__(self, directory: Path, pcscd: PrivatePcscd, trust_pem: Path) -> None:
        self.socket_link = directory / "probe-pcscd.comm"
        self._pcscd_socket = pcscd.socket
        self.show_pcscd()
        environment = dict(os.environ, PCSCLITE_CSOCK_NAME=str(self.socket_link),
                           PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        self.log_path = directory / "probe.log"
        self._log = open(self.log_path, "w", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", PROBE_MODULE, "--trust", str(trust_pem), "--reader", READER,
             "--pin", PIN, "--today", TODAY.isoformat()],
            cwd=REPO, env=environment, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log, text=True)
        self.lines = _Lines(self.process.stdout)

    def show_pcscd(self) -> None:
        self.socket_link.symlink_to(self._pcscd_socket)

    def hide_pcscd(self) -> None:
        self.socket_link.unlink()

    def expect(self, *starts: str, timeout: float = LINE_TIMEOUT_S) -> str:
        """The probe's next line, which must start with one of `starts`."""
        line = self.lines.next(timeout)
        assert line is not None and line.startswith(starts), (
            "expected %s, got %r after %s\nprobe log:\n%s" % (
                " or ".join(map(repr, starts)), line, self.lines.seen[:-1], self.log_tail()))
        return line

    def quit(self) -> int:
        """Ask the probe to unwatch and exit; its exit code."""
        assert self.process.stdin is not None
        self.process.stdin.write("quit\n")
        self.process.stdin.close()
        return self.process.wait(STOP_TIMEOUT_S)

    def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except OSError:
                pass
        _stop(self.process)
        self.lines.join(STOP_TIMEOUT_S)
        self._log.close()

    def log_tail(self) -> str:
        return "".join(self.log_path.read_text(errors="replace").splitlines(True)[-30:])


def _times(line: str) -> tuple[float, float]:
    """(t, cpu) of an event line."""
    fields = dict(part.split("=", 1) for part in line.split()[2:])
    return float(fields["t"]), float(fields["cpu"])


# --- fixtures --------------------------------------------------------------------------

@pytest.fixture
def private_pcscd(tmp_path: Path) -> Iterator[PrivatePcscd]:
    unshare, pcscd = _requirements()
    port = next((p for p in CANDIDATE_PORTS if _port_pair_free(p)), None)
    if port is None:
        pytest.skip("no free port pair for the private vpcd reader among %s" % (CANDIDATE_PORTS,))
    daemon = PrivatePcscd(tmp_path, port, unshare, pcscd)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.close()


@pytest.fixture
def private_slot(private_pcscd: PrivatePcscd) -> Iterator[VirtualCardSlot]:
    slot = VirtualCardSlot(port=private_pcscd.port)
    try:
        yield slot
    finally:
        slot.remove()


@pytest.fixture
def probe(tmp_path: Path, private_pcscd: PrivatePcscd, issuer: IssuerKey) -> Iterator[Probe]:
    trust_pem = tmp_path / "issuer.pem"
    trust_pem.write_bytes(issuer.public_pem)
    process = Probe(tmp_path, private_pcscd, trust_pem)
    try:
        yield process
    finally:
        process.close()


# --- the test ----------------------------------------------------------------------------

def test_reader_lost_and_found_across_a_pcscd_restart(
        private_pcscd: PrivatePcscd, private_slot: VirtualCardSlot, probe: Probe,
        issuer: IssuerKey, citizens: dict[str, dict[str, Any]]) -> None:
    card = SimulatedCard.for_citizen(citizens[CITIZEN], issuer=issuer, pin=PIN)
    probe.expect("ready status=no_card")

    private_slot.insert(card)
    probe.expect("event inserted status=ready")
    probe.expect("read connect=connected verdict=valid")

    # pcscd goes (a crash restarted by systemd; a USB reader's driver reloaded):
    # the reader is lost, and with it the card.
    private_pcscd.stop()
    lost = probe.expect("event reader_lost status=no_reader")

    # pcscd and the reader come back with the card still in. The card's vpcd
    # link died with pcscd, so it goes back in before the kiosk can see the new
    # pcscd: that one has the card from its first look, as with a replugged reader.
    probe.hide_pcscd()
    private_slot.remove()
    private_pcscd.start()
    private_slot.insert(card)
    # pcscd logs the card's ATR whether it finds the card at its first look at the
    # reader or after ("Card inserted into ..." only in the second case).
    private_pcscd.wait_for_log("Card ATR")
    probe.show_pcscd()
    back_at = time.monotonic()
    found = probe.expect("event reader_found status=")
    probe.expect("event inserted status=ready")
    probe.expect("read connect=connected verdict=valid")
    found_t, _ = _times(found)
    assert found_t - back_at < 2 * WATCH_POLL_S + 0.5, (
        "the reader came back %.2f s after pcscd" % (found_t - back_at))

    # Nothing spun while the reader was gone.
    (lost_t, lost_cpu), (_, found_cpu) = _times(lost), _times(found)
    outage = found_t - lost_t
    assert (found_cpu - lost_cpu) < OUTAGE_CPU_SHARE * outage + 0.05, (
        "%.2f s of CPU in a %.2f s outage" % (found_cpu - lost_cpu, outage))

    private_slot.remove()
    probe.expect("event removed status=no_card")

    assert probe.quit() == 0
    probe.expect("unwatched watchers=0")
    assert probe.lines.next(timeout=STOP_TIMEOUT_S) is None, "an event came after unwatch"

    log = probe.log_path.read_text()
    for event in ("card.pcscd_unavailable", "card.reader_lost", "card.reader_found",
                  "card.inserted", "card.removed"):
        assert event in log
    record = citizens[CITIZEN]
    for private in (record["national_number"], record["card_number"], record["given_name_ar"],
                    record["family_name_ar"], PIN):
        assert private not in log


# --- a USB reader unplugged while pcscd stays (pcscd faked in-process) ------------------
#
# vpcd's readers are set up from reader.conf and cannot be unplugged from a
# running pcscd, so here the driver's PC/SC calls meet a fake pcscd instead.

ACME = "Acme PIN pad reader 00 00"
FAKE_POLL_S = 0.2              # the watch's round, shortened


class FakePcscd:
    """pcscd as the driver's watch sees it: readers are plugged and unplugged
    while the service stays up. Counts the watch's looks (reader listings)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._readers: dict[str, bool] = {}       # name -> a card in it
        self._generation = 0
        self._contexts = itertools.count(1)
        self._cancelled: set[int] = set()
        self.looks = 0

    def plug(self, name: str, *, card: bool) -> None:
        with self._changed:
            self._readers[name] = card
            self._generation += 1
            self._changed.notify_all()

    def unplug(self, name: str) -> None:
        with self._changed:
            del self._readers[name]
            self._generation += 1
            self._changed.notify_all()

    def wait_for_looks(self, count: int, timeout: float) -> bool:
        with self._changed:
            target = self.looks + count
            return self._changed.wait_for(lambda: self.looks >= target, timeout)

    # -- the calls the driver makes (smartcard.scard's signatures) --

    def establish(self, scope: int) -> tuple[int, int]:
        return SCARD_S_SUCCESS, next(self._contexts)

    def release(self, context: int) -> int:
        return SCARD_S_SUCCESS

    def cancel(self, context: int) -> int:
        with self._changed:
            self._cancelled.add(context)
            self._changed.notify_all()
        return SCARD_S_SUCCESS

    def list_readers(self, context: int, groups: list[str]) -> tuple[int, list[str]]:
        with self._changed:
            self.looks += 1
            self._changed.notify_all()
            names = list(self._readers)
        return (SCARD_S_SUCCESS, names) if names else (SCARD_E_NO_READERS_AVAILABLE, [])

    def readers(self) -> list[str]:
        with self._changed:
            return list(self._readers)

    def get_status_change(self, context: int, timeout_ms: int,
                          asked: list[tuple[str, int]]) -> tuple[int, list[Any]]:
        deadline = time.monotonic() + timeout_ms / 1000
        with self._changed:
            generation = self._generation
            while True:
                if context in self._cancelled:
                    self._cancelled.discard(context)
                    return SCARD_E_CANCELLED, []
                answer, any_news = [], False
                for name, current in asked:
                    if name == PNP_NOTIFICATION:
                        state, news = 0, self._generation != generation
                    else:
                        state = (SCARD_STATE_UNKNOWN | SCARD_STATE_UNAVAILABLE if name not in self._readers
                                 else SCARD_STATE_PRESENT if self._readers[name] else SCARD_STATE_EMPTY)
                        news = state != current & ~SCARD_STATE_CHANGED
                    any_news = any_news or news
                    answer.append((name, state | (SCARD_STATE_CHANGED if news else 0), []))
                if any_news:
                    return SCARD_S_SUCCESS, answer
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return SCARD_E_TIMEOUT, []
                self._changed.wait(remaining)


@pytest.fixture
def fake_pcscd(monkeypatch: pytest.MonkeyPatch) -> FakePcscd:
    fake = FakePcscd()
    for name, call in (("SCardEstablishContext", fake.establish),
                       ("SCardReleaseContext", fake.release), ("SCardCancel", fake.cancel),
                       ("SCardListReaders", fake.list_readers),
                       ("SCardGetStatusChange", fake.get_status_change)):
        monkeypatch.setattr(pcsc_watch, name, call)
    monkeypatch.setattr(pcsc_channel, "list_readers", fake.readers)
    monkeypatch.setattr(pcsc_watch, "WATCH_POLL_S", FAKE_POLL_S)
    return fake


def test_usb_reader_unplugged_and_replugged_with_the_card_in(fake_pcscd: FakePcscd) -> None:
    fake_pcscd.plug(ACME, card=False)
    reader = PyscardCardReader(TrustStore(), reader_name="Acme PIN pad")
    events = EventLog()
    reader.watch(events)
    watcher = reader._watcher
    assert watcher is not None
    try:
        assert reader.status is ReaderStatus.NO_CARD
        fake_pcscd.plug(ACME, card=True)
        assert events.wait_for(CardEvent.INSERTED)

        fake_pcscd.unplug(ACME)
        assert events.wait_for(CardEvent.READER_LOST)
        assert reader.status is ReaderStatus.NO_READER
        # While it is gone, the watch looks once a round, no faster.
        started = time.monotonic()
        assert fake_pcscd.wait_for_looks(3, timeout=10 * FAKE_POLL_S)
        assert time.monotonic() - started >= 2 * FAKE_POLL_S

        fake_pcscd.plug(ACME, card=True)
        assert events.wait_for(CardEvent.INSERTED, 2)
        assert reader.status is ReaderStatus.READY
        fake_pcscd.plug(ACME, card=False)
        assert events.wait_for(CardEvent.REMOVED)
        assert reader.status is ReaderStatus.NO_CARD
        assert events.events == [CardEvent.INSERTED, CardEvent.READER_LOST, CardEvent.READER_FOUND,
                                 CardEvent.INSERTED, CardEvent.REMOVED]
    finally:
        started = time.monotonic()
        reader.unwatch()
        stopped_in = time.monotonic() - started
    # SCardCancel ends the wait at once, and the watch's thread is gone.
    assert not watcher.is_alive()
    assert stopped_in < FAKE_POLL_S / 2
