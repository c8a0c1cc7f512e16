"""`TerminalSimulator`: the simulated terminal, its acquirer and its HTTP side, in threads.

    with TerminalSimulator(auto_present="approve") as terminal:
        driver = NexoPaymentTerminal("127.0.0.1", terminal.nexo_port, sale_system_id="kiosk-1",
                                     poi_id=terminal.poi_id)
        ...
        terminal.statement()

The nexo side listens on `nexo_port` (TCP, or TLS with `tls_cert` and
`tls_key`), the control and acquirer API on `control_port` (`control_url`);
port 0 picks free ones. `set_offline(True)` closes the nexo port (a
connection is refused, as with a terminal switched off or unplugged) and
resets every open connection; `set_offline(False)` listens again on the
same port. Everything else is `drivers.terminal_sim.terminal`.
"""

from __future__ import annotations

import logging
import os
import socketserver
import ssl
import threading
from typing import Any

from drivers.nexo.framing import DEFAULT_MAX_FRAME
from drivers.terminal_sim.acquirer import Acquirer
from drivers.terminal_sim.control import ControlServer
from drivers.terminal_sim.terminal import Card, Fault, Terminal

log = logging.getLogger(__name__)

DEFAULT_POI_ID = "SIM-POI-0001"
DEFAULT_NEXO_PORT = 7778          # as drivers.nexo_terminal.DEFAULT_PORT
DEFAULT_CONTROL_PORT = 7790


class _NexoServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class TerminalSimulator:
    """See the module docstring."""

    def __init__(self, host: str = "127.0.0.1", nexo_port: int = 0, control_port: int = 0, *,
                 auto_present: Card | str | None = None, auto_present_delay_s: float = 0.5,
                 poi_id: str = DEFAULT_POI_ID, card_timeout_s: float = 60.0, wallet_expiry_s: float = 120.0,
                 tls_cert: str | os.PathLike[str] | None = None, tls_key: str | os.PathLike[str] | None = None,
                 max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.host = host
        self.poi_id = poi_id
        self._nexo_port = nexo_port
        self._control_port = control_port
        self._tls: ssl.SSLContext | None = None
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("TLS needs both a certificate and its key")
        if tls_cert is not None and tls_key is not None:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.minimum_version = ssl.TLSVersion.TLSv1_2
            self._tls.load_cert_chain(os.fspath(tls_cert), os.fspath(tls_key))
        self.acquirer = Acquirer()
        self.terminal = Terminal(self.acquirer, poi_id=poi_id,
                                 auto_present=None if auto_present is None else Card(auto_present),
                                 auto_present_delay_s=auto_present_delay_s, card_timeout_s=card_timeout_s,
                                 wallet_expiry_s=wallet_expiry_s, max_frame=max_frame)
        self._lock = threading.Lock()
        self._nexo: _NexoServer | None = None
        self._nexo_thread: threading.Thread | None = None
        self._control: ControlServer | None = None
        self._control_thread: threading.Thread | None = None

    # -- life cycle ------------------------------------------------------------------------------------

    @property
    def nexo_port(self) -> int:
        return self._nexo_port

    @property
    def control_port(self) -> int:
        return self._control_port

    @property
    def control_url(self) -> str:
        return "http://%s:%d" % (self.host, self._control_port)

    def start(self) -> TerminalSimulator:
        self._listen()
        try:
            self._control = ControlServer((self.host, self._control_port), self)
        except BaseException:
            self._close_nexo()
            raise
        self._control_port = self._control.server_address[1]
        self._control_thread = threading.Thread(target=self._control.serve_forever, kwargs={"poll_interval": 0.05},
                                                name="terminal-sim-control", daemon=True)
        self._control_thread.start()
        log.info("terminal_sim.started host=%s nexo_port=%d control_port=%d poi_id=%s tls=%s", self.host,
                 self._nexo_port, self._control_port, self.poi_id, self._tls is not None)
        return self

    def stop(self) -> None:
        self._close_nexo()
        self.terminal.reboot()                 # wakes any sale still waiting, drops every link
        if self._control is not None:
            self._control.shutdown()
            self._control.server_close()
            self._control = None
        if self._control_thread is not None:
            self._control_thread.join(timeout=5)
        log.info("terminal_sim.stopped")

    def __enter__(self) -> TerminalSimulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _listen(self) -> None:
        terminal, tls = self.terminal, self._tls

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                terminal.serve(self.request, tls)

        with self._lock:
            if self._nexo is not None:
                return
            self._nexo = _NexoServer((self.host, self._nexo_port), Handler)
            self._nexo_port = self._nexo.server_address[1]
            self._nexo_thread = threading.Thread(target=self._nexo.serve_forever, kwargs={"poll_interval": 0.05},
                                                 name="terminal-sim-nexo", daemon=True)
            self._nexo_thread.start()

    def _close_nexo(self) -> None:
        with self._lock:
            server, thread, self._nexo, self._nexo_thread = self._nexo, self._nexo_thread, None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    # -- the world -----------------------------------------------------------------------------------------

    def set_offline(self, offline: bool = True) -> None:
        """Off line: the nexo port is closed (connections refused) and open links reset."""
        if offline:
            self._close_nexo()
            self.terminal.drop_connections()
        else:
            self._listen()
        log.info("terminal_sim.%s", "offline" if offline else "online")

    def present(self, card: Card | str) -> bool:
        """Present `card` to the sale waiting for one (True), or keep it for the next sale (False)."""
        return self.terminal.present(Card(card)) == "presented"

    def fault(self, fault: Fault | str) -> None:
        """A fault (see `drivers.terminal_sim.terminal`), or "offline" / "online"."""
        if fault in ("offline", "online"):
            self.set_offline(fault == "offline")
            return
        self.terminal.fault(Fault(fault))

    def set_auto_present(self, card: Card | str | None) -> None:
        """From the next sale on, the card (or wallet payer) that comes by itself; None: nobody."""
        self.terminal.set_auto_present(None if card is None else Card(card))

    def pay_wallet(self) -> bool:
        """The wallet pays the payment request on show; False when none is."""
        return self.terminal.pay_wallet()

    def cutoff(self) -> int:
        """The day's batch closes; the new batch's number."""
        batch = self.acquirer.cut_off()
        log.info("terminal_sim.cutoff batch=%d", batch)
        return batch

    def statement(self) -> dict[str, Any]:
        return self.acquirer.statement()

    def display(self) -> dict[str, Any]:
        return self.terminal.display()

    def wait_until_waiting(self, timeout: float = 5.0) -> bool:
        """Whether a sale waits for a card or a wallet within `timeout` seconds."""
        return self.terminal.wait_until_waiting(timeout)

