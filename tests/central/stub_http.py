"""HTTP on loopback for the tests: a stub server that answers badly on purpose,
a port that never accepts, a self-signed certificate, and a client bound to a
service's base URL.

The stub reads each request whole, then answers with fixed raw bytes, or
closes the connection unanswered (`reply=None`: the answer is lost), or holds
it open until the stub stops (`hold=True`: the client times out). A list of
replies is answered in turn, its last one over and over. Given a TLS context
it speaks HTTPS.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class StubHttpServer:
    def __init__(self, reply: bytes | None | list[bytes | None] = None, *, hold: bool = False,
                 tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[bytes] = []   # the raw bodies received
        self.request_lines: list[str] = []   # "METHOD /path", in the order received
        self._release = threading.Event()
        lock = threading.Lock()
        replies = reply if isinstance(reply, list) else [reply]
        stub = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                try:
                    if tls is not None:
                        self.connection.do_handshake()
                    self._answer()
                except OSError:   # the client gave up: a refused certificate, a timeout
                    pass

            def _answer(self) -> None:
                method, path = (self.rfile.readline().decode("latin-1").split(" ") + ["", ""])[:2]
                length = 0
                while (line := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                body = self.rfile.read(length)
                with lock:
                    answer = replies[min(len(stub.requests), len(replies) - 1)]
                    stub.request_lines.append("%s %s" % (method, path))
                    stub.requests.append(body)
                if hold:
                    stub._release.wait(30)
                elif answer is not None:
                    self.wfile.write(answer)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True

            def get_request(self) -> tuple[socket.socket, Any]:
                sock, address = super().get_request()
                if tls is None:
                    return sock, address
                # The handshake is left to the handler's thread, so a client that stalls holds up no other.
                return tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", self._server.server_address[1])

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


def raw_reply(status: str, body: bytes, *, content_type: str = "application/json",
              length: int | None = None, headers: dict[str, str] | None = None) -> bytes:
    """An HTTP/1.1 answer; `length` other than len(body) makes a truncated or padded one."""
    extra = b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in (headers or {}).items())
    return (b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%sConnection: close\r\n\r\n"
            % (status.encode(), content_type.encode(), len(body) if length is None else length, extra)) + body


@contextlib.contextmanager
def unanswered_port() -> Iterator[str]:
    """The URL of a loopback port that listens but whose queue of connections is
    full and never accepted: a connection to it is never made and times out
    (Linux drops the handshake while the queue is full)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        for _ in range(3):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            fillers.append(filler)
            filler.setblocking(False)
            filler.connect_ex(address)
        yield "http://127.0.0.1:%d" % address[1]
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that signs itself (its own CA), and its key: the
    PEM files' paths. No system authority trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kiosk test loopback")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "loopback-cert.pem", directory / "loopback-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_tls(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """A server's TLS context presenting the certificate at `cert_path`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


class ApiClient:
    """A requests session bound to one service's base URL, with a timeout on every
    call: ``client.get("/catalogue")`` asks ``<base_url>/catalogue``."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0, auth: requests.auth.AuthBase | None = None,
                 verify: str | bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout_s
        self._session = requests.Session()
        self._session.auth = auth          # a kiosk's signature (kiosk.central_client.signed_by), or none
        self._session.verify = verify

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return self._session.request(method, self.base_url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
