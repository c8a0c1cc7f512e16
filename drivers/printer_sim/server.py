"""The simulated printer: a TCP ESC/POS printer on loopback (port 9100 style).

Each connection is read as a printer reads its port: bytes are decoded as
they arrive, DLE EOT status queries are answered at once from the simulated
state (paper, cover), and a job ends at a cut or when the client closes.
Every job is written as ``job-0001.bin`` (the raw bytes) and
``job-0001.png`` (the paper) in the output directory.

Failures to rehearse: paper near end or out (also running out mid-job),
cover open, offline (the printer drops every connection), and a cable
pulled mid-job after N bytes, either with a reset the sender notices or
silently (bytes vanish, nothing answers any more). Without paper or with
the cover open nothing prints: a job sent anyway leaves no page.
"""

from __future__ import annotations

import enum
import logging
import socket
import socketserver
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from drivers.printer_sim.decoder import (
    PRINTABLE, Cut, Decoder, Element, QrCode, RasterImage, StatusQuery, TextLine,
)
from drivers.printer_sim.renderer import PAPER_WIDTH, render_png

log = logging.getLogger(__name__)

_FIXED_BITS = 0x12          # bits 1 and 4 are always set in a DLE EOT answer


class PaperLevel(enum.Enum):
    OK = "ok"
    NEAR_END = "near_end"
    OUT = "out"


@dataclass(frozen=True)
class SimulatedJob:
    """One job as the simulator received, decoded and drew it."""
    number: int
    raw: bytes
    elements: tuple[Element, ...]
    png_path: Path
    bin_path: Path
    complete: bool          # ended by a cut (False: the connection ended first)

    @property
    def images(self) -> list[RasterImage]:
        return [e for e in self.elements if isinstance(e, RasterImage)]

    @property
    def qr_codes(self) -> list[QrCode]:
        return [e for e in self.elements if isinstance(e, QrCode)]

    @property
    def text_lines(self) -> list[TextLine]:
        return [e for e in self.elements if isinstance(e, TextLine)]

    @property
    def cuts(self) -> list[Cut]:
        return [e for e in self.elements if isinstance(e, Cut)]


@dataclass
class _CablePull:
    after_bytes: int
    reset: bool
    power_off: bool = False     # the printer goes off with the link, until set_offline(False)


class PrinterSimulator:
    """A loopback network ESC/POS printer; see the module docstring."""

    def __init__(self, out_dir: Path | str, *, host: str = "127.0.0.1", port: int = 0,
                 paper_width: int = PAPER_WIDTH) -> None:
        self.out_dir = Path(out_dir)
        self.host = host
        self.paper_width = paper_width
        self._port = port
        self._server: Optional[socketserver.ThreadingTCPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._changed = threading.Condition()
        self._jobs: list[SimulatedJob] = []
        self._last_number = 0
        self._connections: list[bytes] = []
        self._open_sockets: set[socket.socket] = set()
        self._receiving: dict[socket.socket, int] = {}     # bytes so far on each open connection
        self._paper = PaperLevel.OK
        self._cover_open = False
        self._offline = False
        self._cable_pull: Optional[_CablePull] = None
        self._paper_out_at: Optional[int] = None

    # -- life cycle -------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port (the one bound, once started with port 0)."""
        return self._port

    def start(self) -> "PrinterSimulator":
        self.out_dir.mkdir(parents=True, exist_ok=True)
        simulator = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                simulator._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._last_number = max((int(p.stem[4:]) for p in self.out_dir.glob("job-[0-9][0-9][0-9][0-9].bin")),
                                default=0)      # a restart goes on numbering, never overwrites
        self._server = Server((self.host, self._port), Handler)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="printer-sim", daemon=True)
        self._thread.start()
        log.info("printer_sim.started host=%s port=%d", self.host, self.port)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._changed:
            for sock in list(self._open_sockets):
                try:
                    sock.shutdown(socket.SHUT_RDWR)      # wakes the thread blocked in recv
                except OSError:
                    pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        log.info("printer_sim.stopped")

    def __enter__(self) -> "PrinterSimulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the simulated state ------------------------------------------------------

    def set_paper(self, level: PaperLevel | str) -> None:
        with self._changed:
            self._paper = PaperLevel(level)

    def set_cover_open(self, is_open: bool = True) -> None:
        with self._changed:
            self._cover_open = is_open

    def set_offline(self, offline: bool = True) -> None:
        """Offline: every connection is accepted and dropped at once (reset)."""
        with self._changed:
            self._offline = offline

    def pull_cable_after(self, n_bytes: int, *, reset: bool = True) -> None:
        """The next connection dies after `n_bytes` bytes.

        reset=True: the sender gets a connection reset. reset=False: the
        link goes silent; later bytes vanish and no status is answered, so
        only the sender's timeout can notice.
        """
        with self._changed:
            self._cable_pull = _CablePull(n_bytes, reset)

    def power_off_after(self, n_bytes: int) -> None:
        """The printer loses power once the next connection has sent `n_bytes`
        bytes: the link is reset, what was received so far may come out, and
        every later connection is refused until `set_offline(False)` (power
        back on), as a printer power-cycled mid-job."""
        with self._changed:
            self._cable_pull = _CablePull(n_bytes, reset=True, power_off=True)

    def run_out_of_paper_after(self, n_bytes: int) -> None:
        """The paper runs out once `n_bytes` more bytes have come in, over one
        connection or several (status queries use a few bytes of it).

        From then on nothing prints (not even the cut) and the status says
        no paper, as on a printer whose roll ends mid-job.
        """
        with self._changed:
            self._paper_out_at = n_bytes

    # -- what was printed ------------------------------------------------------------

    @property
    def jobs(self) -> list[SimulatedJob]:
        with self._changed:
            return list(self._jobs)

    @property
    def connections(self) -> list[bytes]:
        """The raw bytes of every finished connection, in order."""
        with self._changed:
            return list(self._connections)

    def wait_for_jobs(self, n: int, timeout: float = 5.0) -> list[SimulatedJob]:
        """Block until at least `n` jobs are written; TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._jobs) >= n, timeout):
                raise TimeoutError("%d job(s) written, %d awaited" % (len(self._jobs), n))
            return list(self._jobs)

    def wait_until_receiving(self, n_bytes: int, timeout: float) -> bool:
        """Whether a connection still open has brought at least `n_bytes` bytes within `timeout`
        seconds: a job under way, for a harness that cuts its sender off mid-print."""
        with self._changed:
            return self._changed.wait_for(lambda: any(n >= n_bytes for n in self._receiving.values()), timeout)

    def wait_for_connections(self, n: int, timeout: float = 5.0) -> list[bytes]:
        """Block until at least `n` connections have ended; TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._connections) >= n, timeout):
                raise TimeoutError("%d connection(s) ended, %d awaited" % (len(self._connections), n))
            return list(self._connections)

    # -- one connection ------------------------------------------------------------------

    def _status_byte(self, n: int) -> bytes:
        with self._changed:
            paper, cover = self._paper, self._cover_open
        offline = cover or paper is PaperLevel.OUT
        if n == 1:
            value = _FIXED_BITS | (0x08 if offline else 0)
        elif n == 2:
            value = _FIXED_BITS | (0x04 if cover else 0) | (0x20 if paper is PaperLevel.OUT else 0)
        elif n == 4:
            value = _FIXED_BITS | (0x0C if paper is not PaperLevel.OK else 0) \
                | (0x60 if paper is PaperLevel.OUT else 0)
        else:
            value = _FIXED_BITS
        return bytes([value])

    def _serve(self, sock: socket.socket) -> None:
        with self._changed:
            offline, pull, self._cable_pull = self._offline, self._cable_pull, None
            paper_out_at = self._paper_out_at
            self._open_sockets.add(sock)
        received = bytearray()
        try:
            if offline:
                _reset(sock)
                return
            self._read(sock, received, pull, paper_out_at)
        finally:
            with self._changed:
                if self._paper_out_at is not None:      # the roll's rest, for the next connections
                    left = self._paper_out_at - len(received)
                    self._paper_out_at = left if left > 0 and self._paper is not PaperLevel.OUT else None
                self._open_sockets.discard(sock)
                self._receiving.pop(sock, None)
                self._connections.append(bytes(received))
                self._changed.notify_all()

    def _read(self, sock: socket.socket, received: bytearray, pull: Optional[_CablePull],
              paper_out_at: Optional[int]) -> None:
        decoder = Decoder()
        job_start, job_elements = 0, []
        silent = False
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            if silent:
                continue
            if pull is not None and len(received) + len(chunk) >= pull.after_bytes:
                chunk = chunk[:pull.after_bytes - len(received)]
                silent = True
            received += chunk
            with self._changed:
                self._receiving[sock] = len(received)
                self._changed.notify_all()
            for element, end in decoder.feed(chunk):
                if paper_out_at is not None and end > paper_out_at:
                    log.info("printer_sim.paper_ran_out after_bytes=%d", paper_out_at)
                    self.set_paper(PaperLevel.OUT)
                    paper_out_at = None
                if isinstance(element, PRINTABLE + (Cut,)) and not self._can_print():
                    continue                    # no paper or cover open: nothing comes out
                job_elements.append(element)
                if isinstance(element, StatusQuery):
                    self._answer(sock, element.n)
                elif isinstance(element, Cut):
                    self._write_job(bytes(received[job_start:end]), job_elements, complete=True)
                    job_start, job_elements = end, []
            if silent:
                log.info("printer_sim.%s after_bytes=%d", "powered_off" if pull.power_off else "cable_pulled",
                         len(received))
                if pull.power_off:
                    self.set_offline(True)
                if pull is not None and pull.reset:
                    _reset(sock)
                    break
        job_elements.extend(element for element, _ in decoder.finish())
        if any(isinstance(e, PRINTABLE) for e in job_elements):
            self._write_job(bytes(received[job_start:]), job_elements, complete=False)

    def _can_print(self) -> bool:
        with self._changed:
            return self._paper is not PaperLevel.OUT and not self._cover_open

    def _answer(self, sock: socket.socket, n: int) -> None:
        try:
            sock.sendall(self._status_byte(n))
        except OSError:
            pass

    def _write_job(self, raw: bytes, elements: list[Element], *, complete: bool) -> None:
        with self._changed:
            self._last_number += 1
            number = self._last_number
        started = time.monotonic()
        stem = self.out_dir / ("job-%04d" % number)
        bin_path, png_path = stem.with_suffix(".bin"), stem.with_suffix(".png")
        bin_path.write_bytes(raw)
        render_png(elements, png_path, paper_width=self.paper_width)
        job = SimulatedJob(number=number, raw=raw, elements=tuple(elements), png_path=png_path,
                           bin_path=bin_path, complete=complete)
        with self._changed:
            self._jobs.append(job)
            self._jobs.sort(key=lambda j: j.number)
            self._changed.notify_all()
        log.info("printer_sim.job_written number=%d bytes=%d complete=%s render_ms=%d",
                 number, len(raw), complete, (time.monotonic() - started) * 1000)


def _reset(sock: socket.socket) -> None:
    """Close a connection so that the peer sees a reset, not an orderly end."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass
