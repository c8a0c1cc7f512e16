"""nexo messages on a byte stream: each one preceded by its length.

TCP keeps no message boundaries. The nexo "Sale to POI Transport Protocols"
(v3.1, section 3.3.2 "TCP Protocol", as vendors quote it) delimit each
application message by "four bytes containing the length in network order
of the application message; the length does not include the four bytes
containing the length". Terminal vendors that expose nexo JSON on a raw
socket do the same (Market Pay's Local API: "4-byte big-endian length
prefix before each JSON message"). The same framing runs inside TLS.

A frame is read whole or not at all: a stream that ends inside one, or a
length over the limit, is a NexoProtocolError; a stream that ends cleanly
between frames is None. An empty frame is refused too (no nexo message is
empty).
"""

from __future__ import annotations

import socket
import struct
import time

from drivers.nexo.errors import NexoProtocolError

HEADER = struct.Struct(">I")
# Adyen's payment answers with both receipts are about 11 kB; a quarter MiB is ample.
DEFAULT_MAX_FRAME = 256 * 1024


def encode_frame(payload: bytes, *, max_size: int = DEFAULT_MAX_FRAME) -> bytes:
    """`payload` with its length in front; NexoProtocolError when it is empty or over `max_size`."""
    if not payload:
        raise NexoProtocolError("an empty message cannot be framed")
    if len(payload) > max_size:
        raise NexoProtocolError("a message of %d bytes is over the %d-byte frame limit" % (len(payload), max_size))
    return HEADER.pack(len(payload)) + payload


def write_frame(sock: socket.socket, payload: bytes, *, max_size: int = DEFAULT_MAX_FRAME) -> None:
    """Send one frame; the socket's own timeout applies."""
    sock.sendall(encode_frame(payload, max_size=max_size))


def read_frame(sock: socket.socket, *, max_size: int = DEFAULT_MAX_FRAME,
               deadline: float | None = None) -> bytes | None:
    """The next frame's payload; None when the peer closed the stream between frames.

    `deadline` (a `time.monotonic()` instant) bounds the whole frame: each receive
    waits at most until then, and `socket.timeout` (TimeoutError) is raised past it.
    Without one, the socket's own timeout applies to each receive.
    """
    header = _read_exactly(sock, HEADER.size, deadline, at_boundary=True)
    if header is None:
        return None
    (length,) = HEADER.unpack(header)
    if length == 0:
        raise NexoProtocolError("an empty frame")
    if length > max_size:
        raise NexoProtocolError("a frame of %d bytes is over the %d-byte limit" % (length, max_size))
    return _read_exactly(sock, length, deadline, at_boundary=False)


def _read_exactly(sock: socket.socket, size: int, deadline: float | None, *, at_boundary: bool) -> bytes | None:
    chunks: list[bytes] = []
    got = 0
    while got < size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no whole frame before the deadline")
            sock.settimeout(left)
        chunk = sock.recv(min(size - got, 65536))
        if not chunk:
            if at_boundary and got == 0:
                return None
            raise NexoProtocolError("the stream ended %d bytes into a %d-byte %s"
                                    % (got, size, "length header" if at_boundary else "frame"))
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
