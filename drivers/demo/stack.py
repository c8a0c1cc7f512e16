"""Everything a kiosk talks to, simulated at the wire, for the demo and the tests.

`DemoStack` starts pcscd (or uses the running one) with the virtual reader,
the reference central service on a fresh SQLite database, a card issuer key
pair that the kiosk's configuration trusts, a virtual card slot on vpcd,
the network printer simulator, and the nexo payment terminal simulator with
its acquirer (which central asks about every payment); and it writes the
kiosk configuration that points at all of them. `document_key_pem` is central's document-verification
public key, as central serves it, for `kiosk-central verify --key`; the kiosk checks central's signed
catalogue with it too. With `cuttable_link`, the kiosk reaches central through a `CuttableLink`, which
`cut_link()` cuts (a town hall's link gone) and `restore_link()` gives back; `kiosk_config` writes the
configuration of another kiosk on the same stack (its own device id, state and device key).
Every kiosk is enrolled as a deployment does it: central's staff issue a one-time code
(`kiosk-central devices enrol-code`) and the kiosk makes its key and enrols it with that code
(`kiosk provision`); from then on each of its calls is signed with its device key. Central
trusts the stack's card issuer (`--issuer-key`), so the cards in the virtual slot prove
themselves to it.
With `central_tls` (the demo's way), central serves HTTPS under a CA of its own, made at start in
`workdir/central-tls/` beside central's database and keys (never in the kiosk's state directory: the
kiosk holds only the CA's certificate, `central_ca`, which its configuration pins as `[central] ca_file`);
without it, central serves plain HTTP on loopback, for the tests that reach central with a client of
their own.
`VirtualScreen` is an Xvfb display for a headless run, and `run_journey`
runs the real `kiosk run --journey` against the stack, inserting and pulling
the card when the journey's screens ask for it.

None of this runs on a device: it is the development stand-in for the world.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import requests

from central import tls
from central.db import Database
from central.devices import Devices
from central.server import RunningCentral, start_in_thread
from drivers.card_sim.card import CardProfile, SimulatedCard
from drivers.card_sim.issuer import IssuerKey
from drivers.card_sim.pcscd import PcscdHandle, ensure_pcscd
from drivers.card_sim.registry import load_citizens
from drivers.card_sim.slot import VirtualCardSlot
from drivers.printer_sim.server import PaperLevel, PrinterSimulator
from drivers.terminal_sim.simulator import TerminalSimulator
from kiosk import wire
from kiosk.config import load as load_config
from kiosk.provisioning import provision

log = logging.getLogger(__name__)

SEED_CITIZENS = Path(__file__).resolve().parents[2] / "central" / "seed" / "citizens.json"
ID_READER = "Virtual PCD 00 00"
DEMO_PIN = "1234"
DEVICE_KEY = "device-key.pem"     # the kiosk's own key, made by `kiosk provision` in its state directory
SCREEN_SIZE = (1024, 600)
BUILT_PROMPTS = Path(__file__).resolve().parents[2] / ".build" / "prompts"    # what `make prompts` writes


class CuttableLink:
    """A TCP relay on loopback to central's port, standing for a town hall's link: `cut()` drops every
    connection and refuses new ones at once (as a link that is down does, to the kiosk), `restore()`
    lets them through again. It relays bytes, TLS or not: `scheme` is central's."""

    def __init__(self, host: str, port: int, *, scheme: str = "http") -> None:
        self._target = (host, port)
        self._scheme = scheme
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._cut = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = False
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name="central-link", daemon=True).start()

    @property
    def url(self) -> str:
        return "%s://127.0.0.1:%d" % (self._scheme, self.port)

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            for sock in list(self._open):
                _drop(sock)
            self._open.clear()
        log.info("demo.link_cut")

    def restore(self) -> None:
        self._cut.clear()
        log.info("demo.link_restored")

    def stop(self) -> None:
        self._stopped = True
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _address = self._listener.accept()
            except OSError:
                return
            if self._cut.is_set():
                _drop(client)
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                _drop(client)
                continue
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            _drop(source)
            _drop(sink)


def _drop(sock: socket.socket) -> None:
    """Close at once with a reset, as a link that went away does (a pump blocked on it wakes up)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class DemoStack:
    def __init__(self, workdir: Path, *, printed_dir: Path | None = None, idle_timeout_s: float = 60.0,
                 idle_warning_s: float = 15.0, pin_timeout_s: float = 30.0, document_timeout_s: float = 20.0,
                 prompts: Path = BUILT_PROMPTS, audio_guidance: bool = False, digits: str = "western",
                 bank_card: str | None = "approve", wallet_expiry_s: float = 120.0,
                 state_dir: Path | None = None, cuttable_link: bool = False, central_tls: bool = False,
                 release_repo: Path | None = None) -> None:
        """`prompts` is the folder of spoken prompts (`{ar,en}/<screen>.wav`, made by
        `python -m screens.prompts build`); `audio_guidance` speaks every screen's prompt.
        `bank_card` is the card the payment terminal's citizen presents by themselves at every
        sale (approve, insufficient-funds, ...; None: only when `terminal.present` is called).
        `state_dir` is where the kiosk keeps its state database and device key (default: in
        `workdir`). `cuttable_link`: the kiosk reaches central through a link the test can cut.
        `central_tls`: central serves HTTPS under its own CA, which the kiosk pins (see the module).
        `release_repo`: central serves this release repository (`kiosk-central release keys init`) under /tuf."""
        self.workdir = Path(workdir)
        self.state_dir = Path(state_dir).resolve() if state_dir else self.workdir / "state"
        self._audio = (Path(prompts).resolve(), audio_guidance)
        self._timeouts = (idle_timeout_s, idle_warning_s, pin_timeout_s, document_timeout_s)
        self._digits = digits          # [display] digits: western or arabic-indic, on Arabic screens and documents
        self.pcscd: PcscdHandle | None = None
        self.central: RunningCentral | None = None
        self.printer: PrinterSimulator | None = None
        self.terminal = TerminalSimulator(auto_present=bank_card, wallet_expiry_s=wallet_expiry_s)
        self.document_key_pem = ""
        self.slot = VirtualCardSlot()
        self.issuer = IssuerKey.generate()
        self.citizens = load_citizens(SEED_CITIZENS)
        self.config_path = self.workdir / "kiosk.toml"
        self.printed_dir = Path(printed_dir) if printed_dir else self.workdir / "printed"
        self._cuttable = cuttable_link
        self.link: CuttableLink | None = None
        self._serve_tls = central_tls
        self.central_tls: tls.TlsFiles | None = None     # central's CA and certificate, made at start when asked
        self.release_repo = release_repo

    def __enter__(self) -> "DemoStack":
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.pcscd = ensure_pcscd(log_path=str(self.workdir / "pcscd.log"))
            self.terminal.start()
            self.issuer.save(self.workdir / "issuer.key.pem", self.workdir / "issuer.pub.pem")
            self.central = self._start_central()
            self.document_key_pem = self._served_document_key()
            if self._cuttable:
                self.link = CuttableLink("127.0.0.1", self.central.port,
                                         scheme="https" if self.central_tls else "http")
            # The kiosk checks central's signed catalogue with it, and trusts its own copy only so.
            self.save_document_key(self.workdir / "central-key.pem")
            self.printer = PrinterSimulator(self.printed_dir).start()
            self._write_config()
            self.enrol(self.config_path)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.slot.remove()
        for stop in (self.link and self.link.stop, self.printer and self.printer.stop, self.central and self.central.stop,
                     self.terminal.stop, self.pcscd and self.pcscd.stop):
            if stop:
                stop()

    @property
    def central_ca(self) -> Path | None:
        """The CA certificate (PEM) that central's HTTPS certificate is checked against; None over HTTP."""
        return self.central_tls.ca_cert if self.central_tls else None

    def _start_central(self) -> RunningCentral:
        """Central on loopback, on a fresh database, checking every payment with the terminal's
        acquirer before it issues; with `central_tls`, over HTTPS with a certificate for 127.0.0.1
        (the host of its URL) under a new CA."""
        cert = key = None
        if self._serve_tls:
            self.central_tls, _new = tls.init(self.workdir / "central-tls", ["127.0.0.1"])
            cert, key = self.central_tls.server_cert, self.central_tls.server_key
        central = start_in_thread(self.central_db_url, acquirer_url=self.terminal.control_url, tls_cert=cert,
                                  tls_key=key, issuer_key_paths=[self.workdir / "issuer.pub.pem"],
                                  release_repo=self.release_repo)
        log.info("demo.central_started url=%s pinned_ca=%s", central.url, self.central_ca or "-")
        return central

    @property
    def central_db_url(self) -> str:
        return "sqlite:///%s" % (self.workdir / "central.sqlite3")

    def enrolment_code(self, device_id: str) -> str:
        """A one-time enrolment code for `device_id`, as central's staff issue it."""
        database = Database(self.central_db_url)
        try:
            code, _expires_at = Devices(database).issue_code(device_id)
        finally:
            database.dispose()
        return code

    def enrol(self, config_path: Path) -> None:
        """The kiosk of `config_path` enrolled at central, as a technician does it on site."""
        config = load_config(config_path)
        enrolment = provision(config, config.central.url, self.enrolment_code(config.device_id))
        log.info("demo.kiosk_enrolled device=%s key=%s", enrolment.device_id, enrolment.device_key)

    def _served_document_key(self) -> str:
        """Central's public key as any official would fetch it: over HTTP(S), central's CA pinned."""
        response = requests.get(self.central.url + wire.SIGNING_KEY, timeout=10,
                                verify=str(self.central_ca) if self.central_ca else True)
        response.raise_for_status()
        return response.text

    def save_document_key(self, path: Path) -> Path:
        """Write central's document-verification public key (PEM) to `path`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.document_key_pem, encoding="ascii")
        return path

    def cut_link(self) -> None:
        """The kiosk's link to central goes down (central itself runs on)."""
        self.link.cut()

    def restore_link(self) -> None:
        self.link.restore()

    def kiosk_config(self, device_id: str, state_dir: Path) -> Path:
        """The configuration of another kiosk on this stack: the same devices and central, its own
        device id and state directory."""
        text = self.config_path.read_text(encoding="utf-8")
        text, ids = re.subn(r'(?m)^device_id = ".*"$', "device_id = %s" % json.dumps(device_id), text, count=1)
        text, paths = re.subn(r'(?m)^path = ".*"$', "path = %s" % json.dumps(str(Path(state_dir) / "outbox.sqlite3")),
                              text, count=1)
        text, keys = re.subn(r'(?m)^device_key_path = ".*"$', "device_key_path = %s" % json.dumps(
            str(Path(state_dir) / DEVICE_KEY)), text, count=1)
        if (ids, paths, keys) != (1, 1, 1):
            raise ValueError("the stack's kiosk.toml no longer has device_id, [outbox] path and "
                             "[central] device_key_path as expected")
        path = self.workdir / ("%s.toml" % device_id)
        path.write_text(text, encoding="utf-8")
        self.enrol(path)
        return path

    def citizen_numbers(self) -> list[str]:
        return list(self.citizens)

    def insert(self, national_number: str, *, profile: CardProfile = CardProfile.VALID, pin: str = DEMO_PIN) -> None:
        record = self.citizens[national_number]
        self.slot.insert(SimulatedCard.for_citizen(record, issuer=self.issuer, profile=profile, pin=pin))

    def remove(self) -> None:
        self.slot.remove()

    def paper_runs_out_mid_certificate(self) -> dict[str, Callable[[], None]]:
        """Journey hooks: the roll ends in the middle of the next certificate, and
        an attendant puts a new one in once the waiting screen has been shown
        twice (the journey shows it in both languages)."""
        shown: list[str] = []

        def waiting() -> None:
            shown.append("print_waiting")
            if len(shown) == 2:
                self.printer.set_paper(PaperLevel.OK)
        return {"confirm": lambda: self.printer.run_out_of_paper_after(4000), "print_waiting": waiting}

    def _write_config(self) -> None:
        idle, warning, pin, document = self._timeouts
        self.config_path.write_text(textwrap.dedent("""\
            # Written by the demo stack: every address below is a simulator on loopback.
            config_version = 1
            device_id = "demo-kiosk-01"
            languages = ["ar", "en"]

            [central]
            url = "{central}"
            timeout_s = 5
            catalogue_key = {central_key}
            device_key_path = {device_key}
            {central_pin}

            [card]
            trusted_issuers = ["issuer.pub.pem"]
            reader = "{reader}"
            pin_timeout_s = {pin}

            [printer]
            host = "127.0.0.1"
            port = {printer}

            [payment]
            host = "127.0.0.1"
            port = {terminal}

            [session]
            idle_timeout_s = {idle}
            idle_warning_s = {warning}
            document_timeout_s = {document}

            [outbox]
            path = {state_db}

            [site]
            place_ar = "دمشق - مركز خدمة المواطن في المزة"
            place_en = "Damascus - Mazzeh citizen service centre"
            time_zone = "Asia/Damascus"

            [display]
            width = {width}
            height = {height}
            fullscreen = false
            digits = "{digits}"
            """).format(digits=self._digits, central=self.link.url if self.link else self.central.url, reader=ID_READER, printer=self.printer.port,
                        terminal=self.terminal.nexo_port,
                        state_db=json.dumps(str(self.state_dir / "outbox.sqlite3")),   # a TOML basic string
                        central_key=json.dumps(str(self.workdir / "central-key.pem")),
                        device_key=json.dumps(str(self.state_dir / DEVICE_KEY)),
                        central_pin=("ca_file = %s" % json.dumps(str(self.central_ca)) if self.central_ca
                                     else "# central serves plain HTTP on loopback: no CA to pin"),
                        idle=idle, warning=warning, pin=pin, document=document,
                        width=SCREEN_SIZE[0], height=SCREEN_SIZE[1]), encoding="utf-8")
        with self.config_path.open("a", encoding="utf-8") as config:
            config.write(self._audio_section())

    def _audio_section(self) -> str:
        """The spoken prompts (a missing file is silence) and whether every screen speaks."""
        prompts, guidance = self._audio
        return "\n[audio]\nprompts = %s\nguidance = %s\n" % (
            json.dumps(str(prompts)), "true" if guidance else "false")   # JSON's string is a TOML basic string


class VirtualScreen:
    """An Xvfb display of the kiosk's size, for a run with no screen attached. With `framebuffer_dir`,
    Xvfb keeps its screen in a file there (-fbdir), and `screenshot` saves what the screen shows."""

    def __init__(self, size: tuple[int, int] = SCREEN_SIZE, *, framebuffer_dir: Path | None = None) -> None:
        self.size = size
        self.display: str | None = None
        self._process: subprocess.Popen | None = None
        self._framebuffer_dir = framebuffer_dir

    def __enter__(self) -> "VirtualScreen":
        read_end, write_end = os.pipe()
        framebuffer = []
        if self._framebuffer_dir is not None:
            self._framebuffer_dir.mkdir(parents=True, exist_ok=True)
            framebuffer = ["-fbdir", str(self._framebuffer_dir)]
        self._process = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "%dx%dx24" % self.size, "-nolisten", "tcp",
             *framebuffer], pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write_end)
        with os.fdopen(read_end) as announced:
            number = announced.readline().strip()     # Xvfb writes it once it accepts clients
        if not number:
            self._process.kill()
            raise RuntimeError("Xvfb did not start (is the xvfb package installed?)")
        self.display = ":" + number
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)

    def screenshot(self, path: Path) -> Path:
        """What the screen shows now, as a PNG: Xvfb's screen file is an XWD image (a header of 25
        32-bit fields, the window's name, the colour map, then the pixels)."""
        from PIL import Image

        data = (self._framebuffer_dir / "Xvfb_screen0").read_bytes()
        order = ">" if struct.unpack(">I", data[:4])[0] < 4096 else "<"
        header = struct.unpack(order + "25I", data[:100])
        header_size, width, height, bits_per_pixel, bytes_per_line, colours = (
            header[0], header[4], header[5], header[11], header[12], header[19])
        if bits_per_pixel != 32:
            raise ValueError("an Xvfb screen of %d bits per pixel" % bits_per_pixel)
        start = header_size + 12 * colours
        pixels = data[start:start + bytes_per_line * height]
        raw = "BGRX" if header[7] == 0 else "XRGB"              # byte_order: LSBFirst or MSBFirst
        image = Image.frombuffer("RGB", (width, height), pixels, "raw", raw, bytes_per_line, 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        return path


@dataclass
class JourneyRun:
    exit_code: int
    report: dict
    out_dir: Path
    output: list[str] = field(default_factory=list)
    # seconds from starting the kiosk process to the runner announcing each screen (first time)
    announced_at: dict[str, float] = field(default_factory=dict)

    @property
    def screens_seen(self) -> list[str]:
        return [s["screen"] for s in self.report.get("screens_seen", [])]


def run_journey(stack: DemoStack, journey: Path, out_dir: Path, *, display: str,
                on_screen: dict[str, Callable[[], None]], timeout_s: float = 240.0,
                config: Path | None = None) -> JourneyRun:
    """Run the real kiosk application through `journey`; call `on_screen[name]`
    when the runner announces that screen (that is where the card goes in or out).
    `config` is another kiosk's on the stack (`DemoStack.kiosk_config`; default: the stack's)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DISPLAY=display)
    env.setdefault("SDL_AUDIODRIVER", "dummy")    # a virtual screen has no sound card: prompts play into nothing
    command = [sys.executable, "-m", "kiosk.cli", "run", "--config", str(config or stack.config_path),
               "--journey", str(journey), "--out", str(out_dir)]
    output: list[str] = []
    announced_at: dict[str, float] = {}
    started = time.monotonic()
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          cwd=stack.workdir) as process:
        killer = threading.Timer(timeout_s, process.kill)
        killer.start()
        try:
            for line in process.stdout:
                output.append(line.rstrip("\n"))
                if line.startswith("JOURNEY screen "):
                    announced_at.setdefault(line.split()[2], time.monotonic() - started)
                    action = on_screen.get(line.split()[2])
                    if action is not None:
                        action()
        finally:
            killer.cancel()
        code = process.wait()
    (out_dir / "kiosk.log").write_text("\n".join(output) + "\n", encoding="utf-8")
    report_path = out_dir / "journey.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.exists() else {}
    return JourneyRun(code, report, out_dir, output, announced_at)

