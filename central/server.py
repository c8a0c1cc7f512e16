"""Central on a background thread, for tests and the demo.

``start_in_thread`` binds the socket itself (so the port is known, and a
port in use fails at once in the caller), runs uvicorn on a thread, and
returns only when uvicorn has started serving: it waits on an event set at
the end of uvicorn's start-up, never on a fixed sleep. It serves HTTPS when
given a certificate and key, and plain HTTP only on loopback (central/tls.py).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn

from central import tls
from central.app import create_app


_ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "::1"}


class _Server(uvicorn.Server):
    """uvicorn's server, telling a waiting thread when start-up is over (either way)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.startup_done = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.startup_done.set()


class RunningCentral:
    """A central service running on a thread; ``url`` is its base URL."""

    def __init__(self, server: _Server, thread: threading.Thread, url: str) -> None:
        self._server = server
        self._thread = thread
        self.url = url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop serving and wait for the thread; open connections are closed."""
        self._server.should_exit = True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise RuntimeError("central did not stop within %.0f s" % timeout_s)

    def __enter__(self) -> RunningCentral:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _listening_socket(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP given explicitly: asyncio sets TCP_NODELAY on accepted
    # connections only then (socket.create_server leaves proto 0), and without
    # it every keep-alive answer waits ~40 ms on a delayed ACK.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def start_in_thread(db_url: str, *, host: str = "127.0.0.1", port: int = 0,
                    signing_key_path: Path | str | None = None, acquirer_url: str | None = None,
                    acquirer_ca_file: Path | str | None = None, tls_cert: Path | str | None = None,
                    tls_key: Path | str | None = None, issuer_key_paths: Sequence[Path | str] = (),
                    release_repo: Path | str | None = None, startup_timeout_s: float = 30.0,
                    **limits: Any) -> RunningCentral:
    """Serve central on `host`:`port` (0: any free port); returns once it accepts connections.
    Payments are looked up at `acquirer_url`, cards checked against `issuer_key_paths`; `limits` are
    `create_app`'s (body size and rates). With `release_repo`, the release repository is served under /tuf.

    With `tls_cert` and `tls_key` (PEM files, as `central.tls.init` writes them) it serves HTTPS
    and its ``url`` is ``https://``: the certificate must name the URL's host (127.0.0.1 by
    default). Without them it serves plain HTTP, on a loopback `host` only: TlsError (a
    ValueError) otherwise, and for a certificate and key that cannot serve together."""
    serves_tls = tls.check_serving(host, tls_cert, tls_key)
    sock = _listening_socket(host, port)
    try:
        app = create_app(db_url, signing_key_path=signing_key_path, acquirer_url=acquirer_url,
                         acquirer_ca_file=acquirer_ca_file, issuer_key_paths=issuer_key_paths,
                         release_repo=release_repo, **limits)
    except BaseException:
        sock.close()
        raise
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=5,
                            ssl_certfile=tls_cert, ssl_keyfile=tls_key)
    server = _Server(config)

    def serve() -> None:
        try:
            server.run(sockets=[sock])
        finally:
            server.startup_done.set()
            sock.close()

    bound_host, bound_port = sock.getsockname()[:2]
    bound_host = _ANY_ADDRESS.get(bound_host, bound_host)     # bound to every address: reached on loopback
    url_host = "[%s]" % bound_host if ":" in bound_host else bound_host
    thread = threading.Thread(target=serve, name="central", daemon=True)
    thread.start()
    if not server.startup_done.wait(startup_timeout_s) or not server.started:
        server.should_exit = True
        thread.join(timeout=5)
        raise RuntimeError("central did not start")
    return RunningCentral(server, thread, "%s://%s:%d" % ("https" if serves_tls else "http", url_host, bound_port))
