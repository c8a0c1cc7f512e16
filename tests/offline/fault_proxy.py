"""A TCP proxy on loopback between the kiosk and central, with the faults a town hall's link has.

    proxy = FaultProxy(("127.0.0.1", central.port)).start()
    client = CentralClient(proxy.url, ...)       # and the probe, on the same URL
    proxy.fault(Fault.RESET_MID_BODY)
    ...
    proxy.clear()                                # the link is good again

It speaks just enough HTTP/1.1 (one message at a time, sized by
Content-Length, as `requests` and uvicorn send them) to cut an exchange
exactly where a fault would:

* REFUSE          nothing listens: every connection is refused (the port is kept for `clear`);
* RESET_MID_BODY  the request reaches central, its answer is cut halfway with a TCP reset;
* STALL           the request is taken and nothing comes back until the fault clears
                  (the client's timeout ends it first); central never sees it;
* HTTP_500        a broken gateway's 500, central never asked;
* GARBAGE         central answers, but the body the kiosk gets is not JSON (status kept);
* TRICKLE         central's answer, a few bytes at a time: slow, but whole;
* FLAP            every other exchange is reset before it reaches central.

`exchanges` lists (method, path, fault applied) in order (a flapping link's
exchanges that went through are NONE, the cut ones FLAP). Everything runs on
daemon threads; `stop` closes the lot. Test code only: it never leaves loopback.
"""

from __future__ import annotations

import enum
import socket
import struct
import threading
import time

HEADER_END = b"\r\n\r\n"
STALL_MAX_S = 60.0            # a stalled exchange is dropped after this, fault or not
_NOT_JSON = b"<html><body>502 Bad Gateway</body></html>"


class Fault(enum.Enum):
    NONE = "none"
    REFUSE = "refuse"
    RESET_MID_BODY = "reset_mid_body"
    STALL = "stall"
    HTTP_500 = "http_500"
    GARBAGE = "garbage"
    TRICKLE = "trickle"
    FLAP = "flap"


class _Closed(Exception):
    """The other side closed the connection."""


class _Connection:
    """A socket read one HTTP message at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""

    def read_message(self) -> bytes:
        """One whole request or response (head and body); _Closed at a clean end before one."""
        while HEADER_END not in self._buffer:
            self._fill()
        head, _, rest = self._buffer.partition(HEADER_END)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
            elif name.strip().lower() == b"transfer-encoding":
                raise ValueError("the fault proxy does not speak chunked bodies")
        while len(rest) < length:
            self._buffer = head + HEADER_END + rest
            self._fill()
            head, _, rest = self._buffer.partition(HEADER_END)
        message, self._buffer = head + HEADER_END + rest[:length], rest[length:]
        return message

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise _Closed()
        self._buffer += data


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as a dropped link or a crashed middlebox does."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def _with_body(response: bytes, body: bytes) -> bytes:
    head, _, _old = response.partition(HEADER_END)
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"content-length:")]
    return b"\r\n".join(lines + [b"content-length: %d" % len(body)]) + HEADER_END + body


class FaultProxy:
    def __init__(self, upstream: tuple[str, int], *, trickle_bytes: int = 64, trickle_gap_s: float = 0.005) -> None:
        self._upstream = upstream
        self._trickle = (trickle_bytes, trickle_gap_s)
        self._fault = Fault.NONE
        self._changed = threading.Condition()
        self._listener: socket.socket | None = None
        self._stopping = False
        self._flap = 0
        self._open: set[socket.socket] = set()
        self.port = 0
        self.exchanges: list[tuple[str, str, Fault]] = []

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.port

    def start(self) -> FaultProxy:
        self._listen()
        return self

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
            listener, self._listener = self._listener, None
            open_sockets = list(self._open)
        if listener is not None:
            listener.close()
        for sock in open_sockets:
            try:
                sock.close()
            except OSError:
                pass

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def fault(self, fault: Fault) -> None:
        """From now on, every new exchange meets `fault`."""
        with self._changed:
            self._fault = fault
            self._changed.notify_all()
            listener = self._listener
            if fault is Fault.REFUSE:
                self._listener = None
        if fault is Fault.REFUSE and listener is not None:
            listener.close()                        # nothing listens: connections are refused
        elif fault is not Fault.REFUSE and listener is None and not self._stopping:
            self._listen()

    def clear(self) -> None:
        self.fault(Fault.NONE)

    def count(self, method: str, path_start: str, fault: Fault | None = None) -> int:
        """Exchanges seen for `method` on a path starting with `path_start` (that met `fault`, when given)."""
        with self._changed:
            return self._count(method, path_start, fault)

    def wait_for_exchanges(self, count: int, method: str, path_start: str, fault: Fault | None = None, *,
                           timeout: float) -> bool:
        """Wait until `count` such exchanges were seen; False when they were not within `timeout` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self._count(method, path_start, fault) >= count, timeout=timeout)

    def _count(self, method: str, path_start: str, fault: Fault | None) -> int:
        return sum(1 for m, p, f in self.exchanges
                   if m == method and p.startswith(path_start) and (fault is None or f is fault))

    # -- inside ---------------------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        with self._changed:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="fault-proxy", daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _address = listener.accept()
            except OSError:                         # closed: REFUSE, or stop
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._changed:
                self._open.add(client)
            threading.Thread(target=self._serve, args=(client,), name="fault-proxy-conn", daemon=True).start()

    def _current(self) -> Fault:
        with self._changed:
            fault = self._fault
            if fault is Fault.FLAP:                  # up for one exchange, down for the next: the cut ones are FLAP
                self._flap += 1
                fault = Fault.FLAP if self._flap % 2 == 0 else Fault.NONE
            return fault

    def _serve(self, client: socket.socket) -> None:
        upstream: _Connection | None = None
        incoming = _Connection(client)
        try:
            while True:
                request = incoming.read_message()
                method, path = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")[:2]
                fault = self._current()
                with self._changed:
                    self.exchanges.append((method, path, fault))
                    self._changed.notify_all()
                if fault in (Fault.REFUSE, Fault.FLAP):
                    _reset(client)                  # accepted just before the link went: cut
                    return
                if fault is Fault.STALL:
                    with self._changed:
                        self._changed.wait_for(lambda: self._fault is not Fault.STALL or self._stopping,
                                               timeout=STALL_MAX_S)
                    _reset(client)
                    return
                if fault is Fault.HTTP_500:
                    body = b'{"detail": "bad gateway"}'
                    client.sendall(b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
                                   b"content-length: %d\r\n\r\n%s" % (len(body), body))
                    continue
                if upstream is None:
                    upstream = _Connection(socket.create_connection(self._upstream, timeout=30))
                    with self._changed:
                        self._open.add(upstream.sock)
                upstream.sock.sendall(request)
                response = upstream.read_message()
                if fault is Fault.RESET_MID_BODY:
                    head, _, body = response.partition(HEADER_END)
                    client.sendall(head + HEADER_END + body[:max(1, len(body) // 2)])
                    _reset(client)
                    return
                if fault is Fault.GARBAGE:
                    response = _with_body(response, _NOT_JSON)
                if fault is Fault.TRICKLE:
                    size, gap = self._trickle
                    for start in range(0, len(response), size):
                        client.sendall(response[start:start + size])
                        time.sleep(gap)             # the slow link itself, not a test waiting
                else:
                    client.sendall(response)
        except (_Closed, OSError, ValueError):
            pass
        finally:
            for sock in (client, upstream.sock if upstream else None):
                if sock is not None:
                    with self._changed:
                        self._open.discard(sock)
                    try:
                        sock.close()
                    except OSError:
                        pass

