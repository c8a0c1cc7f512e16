"""The kiosk's device key at work: every call to central signed (RFC 9421), and what the kiosk does
when central will not serve it.

Central runs for real on loopback for the refusals (no key, a key it does not know, a revoked
device, re-enrolment); the signatures themselves are read off the wire by a small recording server
that keeps each request whole, headers and all."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import socketserver
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import HTTPSignatureKeyResolver
from http_message_signatures.exceptions import HTTPMessageSignaturesException
from requests_http_signature import HTTPSignatureAuth, algorithms

from central.seeding import SEED_DIR
from central.server import RunningCentral
from kiosk import wire
from kiosk.central_client import CentralClient, CentralUnreachable, SubmitStatus, VoidStatus
from kiosk.messages import MessageKind
from kiosk.money import Money
from kiosk.ports.central import Challenge, Eligibility
from kiosk.provisioning import public_key_hex
from tests.central.cards import CardInReader
from tests.running_central import enrol
from tests.central.stub_http import StubHttpServer, raw_reply

pytestmark = pytest.mark.realstack   # central over HTTP on loopback, stubs (no card reader): see README

KHALED = next(c for c in json.loads((SEED_DIR / "citizens.json").read_text(encoding="utf-8"))["citizens"]
              if c.get("given_name_latin") == "Khaled")


@pytest.fixture
def kiosk(central: RunningCentral) -> Iterator[Callable[..., CentralClient]]:
    """`kiosk(device_id, key)`: a CentralClient for `device_id`, signing with `key` (none: unsigned)."""
    clients: list[CentralClient] = []

    def make(device_id: str, key: Ed25519PrivateKey | None) -> CentralClient:
        clients.append(CentralClient(central.url, device_id=device_id, device_key=key, timeout_s=10))
        return clients[-1]
    yield make
    for client in clients:
        client.close()


def served(client: CentralClient) -> bool:
    """True when central serves `client` its catalogue; False when it refused (CentralUnreachable)."""
    try:
        client.fetch_catalogue()
    except CentralUnreachable:
        return False
    return True


# -- central refuses a kiosk it does not serve -----------------------------------------------------------

def test_a_kiosk_without_a_device_key_is_refused_and_knows_why(kiosk, caplog) -> None:
    client = kiosk("kiosk-unsigned-01", None)
    with caplog.at_level(logging.INFO):
        with pytest.raises(CentralUnreachable, match="HTTP 401"):
            client.fetch_catalogue()
        assert client.device_refused() == "unauthenticated"
        assert client.challenge() is None
        assert client.deliver(MessageKind.VOID_REQUEST, {"request_id": "req-unsigned-1"}) is None
        assert client.device_refused() == "unauthenticated"
    # Logged when it began, not at every call.
    assert caplog.text.count("central.device_refused reason=unauthenticated") == 1


def test_a_key_central_does_not_know_is_refused_until_it_is_enrolled(kiosk, devices, central, caplog) -> None:
    key = Ed25519PrivateKey.generate()
    client = kiosk("kiosk-early-01", key)
    assert not served(client) and client.device_refused() == "unknown_device"
    # Central's staff issue a code; the technician enrols this very key with it.
    code, _expires = devices.issue_code("kiosk-early-01")
    response = requests.post(central.url + wire.ENROL, timeout=10, json={
        "device_id": "kiosk-early-01", "code": code, "public_key": public_key_hex(key)})
    assert response.status_code == 200, response.text
    with caplog.at_level(logging.INFO):
        assert served(client) and client.device_refused() is None
    assert "central.device_accepted" in caplog.text


def test_an_enrolled_kiosk_is_served(kiosk, central, central_db_url) -> None:
    client = kiosk("kiosk-enrolled-01", enrol(central.url, central_db_url, "kiosk-enrolled-01"))
    assert served(client) and client.device_refused() is None
    assert client.challenge() is not None


def test_a_kiosk_signing_as_another_device_is_refused(kiosk, central, central_db_url) -> None:
    enrol(central.url, central_db_url, "kiosk-victim-01")
    impostor = kiosk("kiosk-victim-01", Ed25519PrivateKey.generate())    # the id, without its key
    assert not served(impostor) and impostor.device_refused() == "unauthenticated"


def test_a_revoked_kiosk_is_refused_its_outbox_waits_and_re_enrolment_brings_it_back(
        kiosk, central, central_db_url, devices, acquirer, issuer, caplog) -> None:
    device_id = "kiosk-revoked-01"
    client = kiosk(device_id, enrol(central.url, central_db_url, device_id))
    assert served(client) and client.device_refused() is None
    # A citizen's request, paid and proven, goes into the outbox just before central revokes the kiosk.
    fee = client.fetch_catalogue().get("civil-status-extract").fee
    challenge = client.challenge()
    answer = client.check_eligibility(service_code="civil-status-extract", challenge=challenge,
                                      proof=CardInReader(KHALED, issuer).sign(challenge.nonce), fee=fee,
                                      catalogue_version="")
    assert answer.eligibility is Eligibility.ELIGIBLE
    message = {"request_id": "req-revoked-1", "service_code": "civil-status-extract", "language": "ar",
               "payment_id": acquirer.pay(fee.amount_minor, fee.currency), "presence_id": answer.presence_id}

    assert devices.revoke(device_id)
    with caplog.at_level(logging.INFO):
        assert not served(client)
        assert client.device_refused() == "device_revoked"
        assert client.deliver(MessageKind.CERTIFICATE_REQUEST, message) is None     # it waits; nothing raised
        assert client.void_request("req-revoked-1") is VoidStatus.UNREACHABLE
        assert client.challenge() is None
        assert client.device_refused() == "device_revoked"
    assert caplog.text.count("central.device_refused reason=device_revoked") == 1

    # Repaired, the kiosk is provisioned again under its id with a new key.
    again = kiosk(device_id, enrol(central.url, central_db_url, device_id))
    assert served(again) and again.device_refused() is None
    delivered = again.deliver(MessageKind.CERTIFICATE_REQUEST, message)
    assert delivered is not None and delivered["status"] == "issued"
    assert delivered["document"]["request_id"] == "req-revoked-1"
    # The old key is not the device's any more.
    assert not served(client) and client.device_refused() == "unauthenticated"


REFUSALS = {
    "unauthenticated": (raw_reply("401 Unauthorized", b'{"status": "error", "reason": "unauthenticated"}'),
                        "unauthenticated"),
    "unknown device": (raw_reply("401 Unauthorized", b'{"status": "error", "reason": "unknown_device"}'),
                       "unknown_device"),
    "revoked": (raw_reply("403 Forbidden", b'{"status": "error", "reason": "device_revoked"}'), "device_revoked"),
    "a 401 page": (raw_reply("401 Unauthorized", b"<h1>login</h1>", content_type="text/html"), "unauthenticated"),
    "a 403 of another reason": (raw_reply("403 Forbidden", b'{"status": "error", "reason": "maintenance"}'),
                                "unauthenticated"),
    # A signature central saw already (a transport sent it twice): sent again later, newly signed.
    "a replay": (raw_reply("401 Unauthorized", b'{"status": "error", "reason": "replayed"}'), None),
}


@pytest.mark.parametrize("reply, refused", list(REFUSALS.values()), ids=list(REFUSALS))
def test_what_central_said_when_it_refused_the_kiosk(reply, refused) -> None:
    stub = StubHttpServer(reply)
    try:
        with CentralClient(stub.url, device_id="kiosk-stub-01", device_key=Ed25519PrivateKey.generate()) as client:
            assert client.deliver(MessageKind.VOID_REQUEST, {"request_id": "req-1"}) is None   # the message waits
            assert client.submit_request("req-2", service_code="birth-certificate", presence_id="ch-1",
                                         language="ar", payment_id="pay-1").status is SubmitStatus.UNREACHABLE
            with pytest.raises(CentralUnreachable):
                client.fetch_catalogue()
            assert client.device_refused() == refused
    finally:
        stub.stop()


# -- the signatures on the wire --------------------------------------------------------------------------

@dataclass(frozen=True)
class Received:
    method: str
    target: str
    headers: dict[str, str]      # names in lower case
    body: bytes


class RecordingServer:
    """Answers each "METHOD /path" with its fixed raw reply (404 otherwise) and keeps every request whole."""

    def __init__(self, replies: dict[str, bytes]) -> None:
        self.received: list[Received] = []
        lock = threading.Lock()
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                method, target, _version = self.rfile.readline().decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (line := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = self.rfile.read(int(headers.get("content-length", "0")))
                with lock:
                    server.received.append(Received(method, target, headers, body))
                self.wfile.write(replies.get("%s %s" % (method, target),
                                             raw_reply("404 Not Found", b'{"status": "error", "reason": "not_found"}')))

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        self.url = "http://127.0.0.1:%d" % self._server.server_address[1]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _json(status: str, body: object) -> bytes:
    return raw_reply(status, json.dumps(body).encode())


STUB_CHALLENGE = {"challenge_id": "ch-0123456789abcdef", "challenge": base64.b64encode(bytes(32)).decode("ascii"),
                  "expires_at": "2026-01-01T00:05:00Z"}
ANSWERS = {
    "GET " + wire.CATALOGUE: _json("200 OK", {"services": [
        {"code": "birth-certificate", "names": {"ar": "بيان ولادة"}, "fee": {"amount_minor": 150000,
                                                                               "currency": "SYP"}}]}),
    "POST " + wire.CHALLENGES: _json("200 OK", STUB_CHALLENGE),
    "POST " + wire.ELIGIBILITY: _json("200 OK", {"eligible": True, "fee": {"amount_minor": 150000, "currency": "SYP"},
                                                 "catalogue_version": "v1", "presence_id": "ch-0123456789abcdef"}),
    "POST " + wire.REQUESTS: _json("422 Unprocessable Entity", {"status": "rejected", "reason": "not_eligible"}),
    "POST " + wire.void_path("req-1"): _json("200 OK", {"status": "voided", "request_id": "req-1",
                                                        "serial": "2026-AAAAAAAA",
                                                        "voided_at": "2026-01-01T00:00:00Z"}),
    "POST " + wire.CLAIMS_WAITING: _json("200 OK", {"documents": []}),
    "POST " + wire.claim_collected_path("2026-AAAAAAAA"): _json("200 OK", {
        "status": "collected", "serial": "2026-AAAAAAAA", "collected_at": "2026-01-01T00:00:00Z"}),
}


class _Key(HTTPSignatureKeyResolver):
    def __init__(self, device_id: str, public_key: Ed25519PublicKey) -> None:
        self._device_id, self._public_key = device_id, public_key

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey:
        assert key_id == self._device_id, key_id
        return self._public_key

    def resolve_private_key(self, key_id: str) -> None:
        raise NotImplementedError


def verified(received: Received, device_id: str, public_key: Ed25519PublicKey):
    """The signature on `received`, checked as central checks it (central/device_auth.py) with `public_key`."""
    message = requests.Request(received.method, "http://%s%s" % (received.headers["host"], received.target),
                               headers=received.headers, data=received.body).prepare()
    return HTTPSignatureAuth.verify(message, signature_algorithm=algorithms.ED25519,
                                    key_resolver=_Key(device_id, public_key),
                                    require_components=wire.SIGNED_COMPONENTS)


def test_every_call_is_signed_with_the_device_key(issuer) -> None:
    key = Ed25519PrivateKey.generate()
    recorder = RecordingServer(ANSWERS)
    try:
        with CentralClient(recorder.url, device_id="kiosk-signing-01", device_key=key) as client:
            assert client.fetch_catalogue().get("birth-certificate") is not None
            challenge = client.challenge()
            assert challenge == Challenge("ch-0123456789abcdef", bytes(32))
            proof = CardInReader(KHALED, issuer).sign(challenge.nonce)
            assert client.check_eligibility(service_code="birth-certificate", challenge=challenge, proof=proof,
                                            fee=Money.of(150000, "SYP"), catalogue_version="v1"
                                            ).eligibility is Eligibility.ELIGIBLE
            assert client.submit_request("req-1", service_code="birth-certificate", presence_id=challenge.challenge_id,
                                         language="ar", payment_id="pay-1").status is SubmitStatus.REJECTED
            assert client.void_request("req-1") is VoidStatus.VOIDED
            assert client.waiting_documents(challenge=challenge, proof=proof) == ()
            assert client.deliver(MessageKind.CLAIM_COLLECTED, {"serial": "2026-AAAAAAAA",
                                                                "request_id": "req-1"})["status"] == "collected"
    finally:
        recorder.stop()

    assert [(r.method, r.target) for r in recorder.received] == [
        ("GET", wire.CATALOGUE), ("POST", wire.CHALLENGES), ("POST", wire.ELIGIBILITY), ("POST", wire.REQUESTS),
        ("POST", wire.void_path("req-1")), ("POST", wire.CLAIMS_WAITING),
        ("POST", wire.claim_collected_path("2026-AAAAAAAA"))]
    nonces = set()
    for received in recorder.received:
        headers = received.headers
        assert "signature" in headers and "signature-input" in headers, received.target
        params = re.fullmatch(r'(\w+)=\(([^)]*)\)(;.*)', headers["signature-input"])
        assert params is not None, headers["signature-input"]
        assert ';keyid="kiosk-signing-01"' in params[3] and re.search(r";created=\d+(;|$)", params[3])
        assert re.search(r';nonce="[^"]{16,64}"', params[3])
        # The body, whatever it is (none for a GET), is covered through its digest.
        assert headers["content-digest"] == "sha-256=:%s:" % base64.b64encode(
            hashlib.sha256(received.body).digest()).decode("ascii")
        result = verified(received, "kiosk-signing-01", key.public_key())
        assert result.parameters["keyid"] == "kiosk-signing-01" and isinstance(result.parameters["created"], int)
        assert {'"@method"', '"@authority"', '"@target-uri"', '"content-digest"'} <= set(result.covered_components)
        nonces.add(result.nonce)
        # Another key does not verify it: the signature is this kiosk's.
        with pytest.raises(HTTPMessageSignaturesException):
            verified(received, "kiosk-signing-01", Ed25519PrivateKey.generate().public_key())
    assert len(nonces) == len(recorder.received)        # a nonce of its own for every call


def test_a_body_changed_on_the_way_no_longer_verifies(issuer) -> None:
    key = Ed25519PrivateKey.generate()
    recorder = RecordingServer(ANSWERS)
    try:
        with CentralClient(recorder.url, device_id="kiosk-signing-02", device_key=key) as client:
            client.submit_request("req-1", service_code="birth-certificate", presence_id="ch-1", language="ar",
                                  payment_id="pay-1")
    finally:
        recorder.stop()
    (received,) = recorder.received
    assert verified(received, "kiosk-signing-02", key.public_key()).body == received.body
    changed = Received(received.method, received.target, received.headers,
                       received.body.replace(b'"pay-1"', b'"pay-9"'))
    assert changed.body != received.body
    with pytest.raises(HTTPMessageSignaturesException):
        verified(changed, "kiosk-signing-02", key.public_key())
