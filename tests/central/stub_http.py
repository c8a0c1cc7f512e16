"""A stub HTTP server on loopback that answers badly on purpose.

Each request is read whole, then answered with fixed raw bytes, or the
connection is closed unanswered (`reply=None`: the answer is lost), or held
open until the stub stops (`hold=True`: the client times out).
"""

from __future__ import annotations

import socketserver
import threading


class StubHttpServer:
    def __init__(self, reply: bytes | None = None, *, hold: bool = False) -> None:
        self.requests: list[bytes] = []   # the raw bodies received
        self._release = threading.Event()
        stub = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                length = 0
                while (line := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                stub.requests.append(self.rfile.read(length))
                if hold:
                    stub._release.wait(30)
                elif reply is not None:
                    self.wfile.write(reply)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        self.url = "http://127.0.0.1:%d" % self._server.server_address[1]

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


def raw_reply(status: str, body: bytes, *, content_type: str = "application/json",
              length: int | None = None) -> bytes:
    """An HTTP/1.1 answer; `length` other than len(body) makes a truncated or padded one."""
    return (b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % (status.encode(), content_type.encode(), len(body) if length is None else length)) + body
