"""Who may ask central: what anyone on the network would try against a kiosk's credentials.

Central runs for real on loopback (tests/central/conftest.py). Every kiosk
call is signed with the kiosk's device key (central/device_auth.py); a device
is enrolled with a one-time code (central/devices.py) and may be revoked.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from collections.abc import Iterator

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from requests_http_signature import HTTPSignatureAuth, algorithms
from sqlalchemy import select

from central import cli, verify_page
from central.db import Database
from central.devices import Devices
from central.models import EnrolmentCode, IssuedDocumentRecord
from central.server import RunningCentral
from kiosk import wire
from kiosk.central_client import signed_by
from kiosk.provisioning import public_key_hex
from tests.central.conftest import DEVICE_ID, new_id
from tests.running_central import enrol
from tests.central.stub_http import ApiClient

# The routes only an enrolled kiosk may call, and the ones open to anyone.
KIOSK_ROUTES = {("GET", wire.CATALOGUE), ("POST", wire.CHALLENGES), ("POST", wire.ELIGIBILITY),
                ("POST", wire.REQUESTS), ("POST", wire.VOID), ("POST", wire.CLAIMS_WAITING),
                ("POST", wire.CLAIM_COLLECTED),
                ("POST", wire.TELEMETRY_HEARTBEAT), ("POST", wire.TELEMETRY_AUDIT), ("POST", wire.TELEMETRY_SELFTEST),
                ("POST", wire.COMMAND_RESULT), ("POST", wire.COMMAND_LOGS), ("GET", wire.ANNOUNCEMENTS),
                ("GET", wire.ROLLOUT), ("POST", wire.ROLLOUT_REPORT)}
PUBLIC_ROUTES = {("GET", wire.HEALTH), ("GET", wire.VERIFY_DOCUMENT), ("GET", wire.SIGNING_KEY),
                 ("GET", verify_page.PAGE), ("POST", wire.ENROL)}

UNAUTHENTICATED = {"status": "error", "reason": "unauthenticated"}
UNKNOWN_DEVICE = {"status": "error", "reason": "unknown_device"}
REPLAYED = {"status": "error", "reason": "replayed"}
REVOKED = {"status": "error", "reason": "device_revoked"}
ENROLMENT_REFUSED = {"status": "rejected", "reason": "enrolment_refused"}
NOT_FOUND = {"status": "rejected", "reason": "not_found"}


def api(path: str) -> str:
    """A wire path as an ApiClient (bound to /api/v1) takes it."""
    assert path.startswith(wire.API)
    return path[len(wire.API):]


def concrete(path: str) -> str:
    return path.format(request_id="req-nobody-1", serial="2026-ABCDEFGH", command_id="cmd-nobody-1")


def normalised(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def enrol_with(central: RunningCentral, device_id: str, code: str, key: Ed25519PrivateKey) -> requests.Response:
    return requests.post(central.url + wire.ENROL, timeout=10,
                         json={"device_id": device_id, "code": code, "public_key": public_key_hex(key)})


@pytest.fixture(scope="module")
def devices(central_database: Database) -> Devices:
    """Central's devices as its staff reach them (the CLI's `devices` commands)."""
    return Devices(central_database)


@pytest.fixture
def kiosk_as() -> Iterator:
    """`kiosk_as(device_id, key)`: a client signing as `device_id` with `key`, closed after the test."""
    clients: list[ApiClient] = []

    def make(central_url: str, device_id: str, key: Ed25519PrivateKey) -> ApiClient:
        client = ApiClient(central_url + wire.API, timeout_s=10, auth=signed_by(device_id, key))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


# --- without credentials ------------------------------------------------------------------------

def test_every_kiosk_route_refuses_a_caller_without_credentials_and_the_public_ones_answer(
        anonymous: ApiClient, central: RunningCentral) -> None:
    schema = anonymous.get("/openapi.json").json()
    served = {(method.upper(), path) for path, operations in schema["paths"].items() for method in operations}
    assert served == KIOSK_ROUTES | PUBLIC_ROUTES          # a new route must be put on one side or the other
    for method, path in sorted(KIOSK_ROUTES):
        answer = requests.request(method, central.url + concrete(path), timeout=10,
                                  json={} if method == "POST" else None)
        assert (answer.status_code, answer.json()) == (401, UNAUTHENTICATED), (method, path)
        # A signature header alone, without its input, is no credential either.
        forged = requests.request(method, central.url + concrete(path), timeout=10,
                                  headers={"Signature": "sig1=:AAAA:"}, json={} if method == "POST" else None)
        assert (forged.status_code, forged.json()) == (401, UNAUTHENTICATED), (method, path)

    assert anonymous.get("/health").json() == {"status": "ok"}
    assert anonymous.get("/documents/verify", params={"payload": "hello"}).json()["reason"] == "not_ours"
    assert anonymous.get("/signing-key").text.startswith("-----BEGIN PUBLIC KEY-----")
    page = requests.get(central.url + "/verify/2026-ABCDEFGH", timeout=10)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    refused = anonymous.post("/devices/enrol", json={"device_id": "kiosk-x", "code": "ABCD-EFGH-JKMN-PQRS-TVWX",
                                                     "public_key": "00" * 32})
    assert (refused.status_code, refused.json()) == (422, ENROLMENT_REFUSED)


def test_the_verification_page_of_an_issued_document_is_public(http, request_body, seed_citizens,
                                                                central: RunningCentral) -> None:
    document = http.post("/requests", json=request_body(seed_citizens["Khaled"], "civil-status-extract")).json()[
        "document"]
    page = requests.get(central.url + "/verify/%s" % document["serial"], timeout=10)
    assert page.status_code == 200 and document["serial"] in page.text


# --- someone else's key, or a key central does not know -----------------------------------------

def test_a_made_up_device_with_its_own_key_is_an_unknown_device(central, kiosk_as) -> None:
    stranger = kiosk_as(central.url, "kiosk-made-up-99", Ed25519PrivateKey.generate())
    for answer in (stranger.get("/catalogue"), stranger.post("/challenges", json={})):
        assert (answer.status_code, answer.json()) == (401, UNKNOWN_DEVICE)


def test_an_enrolled_device_id_signed_by_another_key_is_refused(central, kiosk_as) -> None:
    impostor = kiosk_as(central.url, DEVICE_ID, Ed25519PrivateKey.generate())
    for answer in (impostor.get("/catalogue"), impostor.post("/challenges", json={})):
        assert (answer.status_code, answer.json()) == (401, UNAUTHENTICATED)


def test_a_signature_that_does_not_cover_the_target_is_refused(central, device_key) -> None:
    """Signed over the method only, a signature could be moved onto any other path or host."""
    auth = HTTPSignatureAuth(signature_algorithm=algorithms.ED25519, key_id=DEVICE_ID, use_nonce=True,
                             covered_component_ids=("@method",), key=key_pem(device_key))
    answer = requests.get(central.url + wire.CATALOGUE, auth=auth, timeout=10)
    assert (answer.status_code, answer.json()) == (401, UNAUTHENTICATED)


def test_a_signature_without_a_nonce_is_refused(central, device_key) -> None:
    """Without a nonce, central could not tell the same request sent again from a new one."""
    auth = HTTPSignatureAuth(signature_algorithm=algorithms.ED25519, key_id=DEVICE_ID, use_nonce=False,
                             covered_component_ids=wire.SIGNED_COMPONENTS, key=key_pem(device_key))
    answer = requests.get(central.url + wire.CATALOGUE, auth=auth, timeout=10)
    assert (answer.status_code, answer.json()) == (401, UNAUTHENTICATED)


# --- a request changed, sent again, or kept for later --------------------------------------------

def test_a_body_changed_after_signing_is_refused_and_nothing_is_issued(central, device_key, request_body,
                                                                        seed_citizens, count_rows) -> None:
    body = request_body(seed_citizens["Omar"], "birth-certificate")
    documents = count_rows(IssuedDocumentRecord)
    with requests.Session() as session:
        session.auth = signed_by(DEVICE_ID, device_key)
        signed = session.prepare_request(requests.Request("POST", central.url + wire.REQUESTS, json=body))
        changed = json.dumps({**body, "language": "en"}).encode("utf-8")
        assert len(changed) == len(signed.body)

        # The body changed, its Content-Digest left as signed: the digest does not match.
        signed.body = changed
        answer = session.send(signed, timeout=10)
        assert (answer.status_code, answer.json()) == (401, UNAUTHENTICATED)

        # The Content-Digest made anew for the changed body: the signature covers the old one.
        resigned = session.prepare_request(requests.Request("POST", central.url + wire.REQUESTS, json=body))
        resigned.body = changed
        resigned.headers["Content-Digest"] = "sha-256=:%s:" % base64.b64encode(
            hashlib.sha256(changed).digest()).decode("ascii")
        answer = session.send(resigned, timeout=10)
        assert (answer.status_code, answer.json()) == (401, UNAUTHENTICATED)
    assert count_rows(IssuedDocumentRecord) == documents


def test_the_same_signed_request_sent_twice_is_refused_as_replayed(central, device_key) -> None:
    with requests.Session() as session:
        session.auth = signed_by(DEVICE_ID, device_key)
        for method, path, body in (("POST", wire.CHALLENGES, {}), ("GET", wire.CATALOGUE, None)):
            prepared = session.prepare_request(requests.Request(method, central.url + path, json=body))
            first = session.send(prepared, timeout=10)
            assert first.status_code == 200, first.text
            again = session.send(prepared, timeout=10)
            assert (again.status_code, again.json()) == (401, REPLAYED), path
        # Signed anew, the same call is served.
        assert session.post(central.url + wire.CHALLENGES, json={}, timeout=10).status_code == 200


class SignedAt(HTTPSignatureAuth):
    """Signs as the kiosk does, but says it signed `offset` from now."""

    def __init__(self, offset: datetime.timedelta, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.offset = offset

    def get_created(self, request: requests.PreparedRequest) -> datetime.datetime:
        created = datetime.datetime.now() + self.offset
        self.add_date(request, timestamp=int(created.timestamp()))
        return created


@pytest.mark.parametrize("offset", [
    datetime.timedelta(seconds=-(wire.SIGNATURE_MAX_AGE_S + 60)),     # kept, and sent after its age
    datetime.timedelta(minutes=10),                                   # made to be sent later
], ids=["too old", "from the future"])
def test_a_signature_outside_its_age_is_refused(central, device_key, offset) -> None:
    auth = SignedAt(offset, signature_algorithm=algorithms.ED25519, key_id=DEVICE_ID, use_nonce=True,
                    covered_component_ids=wire.SIGNED_COMPONENTS, key=key_pem(device_key))
    for method, path in (("GET", wire.CATALOGUE), ("POST", wire.CHALLENGES)):
        answer = requests.request(method, central.url + path, auth=auth, timeout=10,
                                  json={} if method == "POST" else None)
        assert (answer.status_code, answer.json()) == (401, UNAUTHENTICATED), path


# --- revocation --------------------------------------------------------------------------------

def test_a_revoked_device_is_refused_until_enrolled_again_with_a_new_code(central, central_db_url, devices,
                                                                           kiosk_as) -> None:
    device_id = "kiosk-revoked-01"
    old_key = enrol(central.url, central_db_url, device_id)
    kiosk = kiosk_as(central.url, device_id, old_key)
    assert kiosk.get("/catalogue").status_code == 200
    spare_code, _expires = devices.issue_code(device_id)          # issued before the revocation, never used

    assert devices.revoke(device_id)
    for answer in (kiosk.get("/catalogue"), kiosk.post("/challenges", json={})):
        assert (answer.status_code, answer.json()) == (403, REVOKED)

    # Its unused code went with it: whoever holds it cannot bring the device back.
    refused = enrol_with(central, device_id, spare_code, Ed25519PrivateKey.generate())
    assert (refused.status_code, refused.json()) == (422, ENROLMENT_REFUSED)
    assert kiosk.get("/catalogue").status_code == 403
    assert [row.revoked_at is not None for row in devices.list() if row.device_id == device_id] == [True]

    # Repaired, the kiosk makes a new key and enrols it with a new code: served again, the old key not.
    new_key = enrol(central.url, central_db_url, device_id)
    assert kiosk_as(central.url, device_id, new_key).get("/catalogue").status_code == 200
    assert kiosk.get("/catalogue").status_code == 401
    assert [row.revoked_at for row in devices.list() if row.device_id == device_id] == [None]


# --- enrolment ---------------------------------------------------------------------------------

def test_a_code_is_taken_once(central, devices, kiosk_as) -> None:
    device_id = "kiosk-once-01"
    code, _expires = devices.issue_code(device_id)
    first_key, second_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    assert enrol_with(central, device_id, code, first_key).status_code == 200
    before = devices.list()
    again = enrol_with(central, device_id, code, second_key)
    assert (again.status_code, again.json()) == (422, ENROLMENT_REFUSED)
    assert devices.list() == before
    assert kiosk_as(central.url, device_id, first_key).get("/catalogue").status_code == 200
    assert kiosk_as(central.url, device_id, second_key).get("/catalogue").status_code == 401


@pytest.mark.parametrize("case", ["expired", "another device's", "unknown", "typed in lower case"])
def test_a_code_that_is_not_this_devices_now_enrols_nothing(central, devices, kiosk_as, caplog, case) -> None:
    device_id = "kiosk-%s" % new_id("enrol")
    if case == "expired":
        code, _expires = devices.issue_code(device_id, datetime.timedelta(minutes=-1))
    elif case == "another device's":
        code, _expires = devices.issue_code("kiosk-somebody-else")
    elif case == "unknown":
        code = "ABCD-EFGH-JKMN-PQRS-TVWX"
    else:
        code = devices.issue_code(device_id)[0].lower().replace("-", " ")    # as a technician might type it
    key = Ed25519PrivateKey.generate()
    before = devices.list()
    caplog.set_level("INFO")
    answer = enrol_with(central, device_id, code, key)
    if case == "typed in lower case":        # the code is read as typed: still the same code
        assert answer.status_code == 200 and answer.json()["device_id"] == device_id
        return
    assert (answer.status_code, answer.json()) == (422, ENROLMENT_REFUSED)     # which, central's log says
    reason = {"expired": "expired_code", "another device's": "other_device", "unknown": "unknown_code"}[case]
    assert "devices.enrol_refused device=%s reason=%s" % (device_id, reason) in caplog.text
    assert normalised(code) not in caplog.text.upper().replace("-", "")
    assert devices.list() == before
    answer = kiosk_as(central.url, device_id, key).get("/catalogue")
    assert (answer.status_code, answer.json()) == (401, UNKNOWN_DEVICE)


def test_an_enrolment_names_centrals_signing_key(central, devices, anonymous) -> None:
    device_id = "kiosk-keys-01"
    code, _expires = devices.issue_code(device_id)
    answer = enrol_with(central, device_id, code, Ed25519PrivateKey.generate()).json()
    assert answer["device_id"] == device_id and answer["signing_key"] == anonymous.get("/signing-key").text
    assert len(answer["signing_key_id"]) == 16 and int(answer["signing_key_id"], 16) >= 0


# --- the staff's command line --------------------------------------------------------------------

def run_cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_devices_enrol_code_list_and_revoke_do_what_they_say(central, central_db_url, central_database, kiosk_as,
                                                             capsys) -> None:
    device_id = "kiosk-cli-01"
    code, out, err = run_cli(capsys, "devices", "enrol-code", device_id, "--hours", "2", "--db", central_db_url)
    assert code == 0
    shown_id, enrolment_code, expires = out.rstrip("\n").split("\t")
    assert shown_id == device_id and expires.startswith("expires ")
    assert len(enrolment_code) == 24 and enrolment_code.count("-") == 4
    assert enrolment_code not in err                          # shown once, on the standard output only
    with central_database.reading() as session:
        kept = [(row.code_digest, row.created_at, row.expires_at) for row in session.scalars(
            select(EnrolmentCode).where(EnrolmentCode.device_id == device_id))]
    assert len(kept) == 1 and normalised(enrolment_code) not in kept[0][0].upper()       # kept hashed only
    assert kept[0][0] == hashlib.sha256(normalised(enrolment_code).encode("ascii")).hexdigest()

    key = Ed25519PrivateKey.generate()
    assert enrol_with(central, device_id, enrolment_code, key).status_code == 200
    kiosk = kiosk_as(central.url, device_id, key)
    assert kiosk.get("/catalogue").status_code == 200

    code, out, _err = run_cli(capsys, "devices", "list", "--db", central_db_url)
    assert code == 0
    (line,) = [line for line in out.splitlines() if line.split("\t")[0] == device_id]
    fields = line.split("\t")
    assert fields[1].startswith("enrolled ") and fields[2] == "active" and fields[3].startswith("last seen 20")

    code, out, _err = run_cli(capsys, "devices", "revoke", device_id, "--db", central_db_url)
    assert (code, out) == (0, "%s: revoked; its next request is refused\n" % device_id)
    assert kiosk.get("/catalogue").status_code == 403
    _code, out, _err = run_cli(capsys, "devices", "list", "--db", central_db_url)
    (line,) = [line for line in out.splitlines() if line.split("\t")[0] == device_id]
    assert line.split("\t")[2].startswith("revoked 20")


@pytest.mark.parametrize("args, message", [
    (["devices", "revoke", "kiosk-never-enrolled"], "kiosk-central devices revoke: no device kiosk-never-enrolled "
                                                    "is enrolled"),
    (["devices", "enrol-code", "has space"], "kiosk-central devices enrol-code: 'has space' is not a device id"),
    (["devices", "enrol-code", "kiosk-x", "--hours", "0"], "kiosk-central devices enrol-code: --hours must be "
                                                           "above 0"),
    (["devices", "enrol-code", "kiosk-x", "--hours", "721"], "kiosk-central devices enrol-code: --hours must be "
                                                             "above 0"),
])
def test_devices_commands_refuse_what_they_cannot_do_with_exit_code_2(central_db_url, devices, capsys, args,
                                                                      message) -> None:
    before = devices.list()
    code, out, err = run_cli(capsys, *args, "--db", central_db_url)
    assert (code, out) == (2, "")
    assert err.startswith(message) and "Traceback" not in err
    assert devices.list() == before


# --- another kiosk's credentials on this kiosk's transactions -------------------------------------

def test_another_kiosk_cannot_void_a_kiosks_document(http, other_kiosk, anonymous, request_body,
                                                     seed_citizens) -> None:
    body = request_body(seed_citizens["Khaled"], "civil-status-extract")
    document = http.post("/requests", json=body).json()["document"]
    refused = other_kiosk.post(api(wire.void_path(body["request_id"])))
    assert (refused.status_code, refused.json()) == (404, NOT_FOUND)
    verdict = anonymous.get("/documents/verify", params={"payload": document["verification"]}).json()
    assert verdict["valid"] is True and verdict["status"] == "issued"
    assert http.post("/requests", json=body).json()["document"] == document      # still the kiosk's, as issued


def test_another_kiosk_sending_a_kiosks_request_id_gets_no_document(http, other_kiosk, request_body,
                                                                    seed_citizens, count_rows) -> None:
    body = request_body(seed_citizens["Lina"], "birth-certificate")
    document = http.post("/requests", json=body).json()["document"]
    documents = count_rows(IssuedDocumentRecord)
    for attempt in (body, {**body, "language": "en"}):       # the very body, or another: not a 409 either
        refused = other_kiosk.post("/requests", json=attempt)
        assert (refused.status_code, refused.json()) == (404, NOT_FOUND)
        assert document["serial"] not in refused.text
    assert count_rows(IssuedDocumentRecord) == documents


def test_another_kiosk_cannot_use_a_kiosks_presence(http, other_kiosk, request_body, present, seed_citizens,
                                                    count_rows, caplog) -> None:
    citizen = seed_citizens["Omar"]
    presence_id = present(citizen, "birth-certificate")          # Omar's card, in DEVICE_ID's reader
    documents = count_rows(IssuedDocumentRecord)
    caplog.set_level("INFO")
    stolen = request_body(citizen, "birth-certificate", presence_id=presence_id)
    refused = other_kiosk.post("/requests", json=stolen)
    assert (refused.status_code, refused.json()) == (422, {"status": "rejected", "reason": "not_eligible"})
    assert count_rows(IssuedDocumentRecord) == documents
    assert "presence.refused reason=unknown_presence device=kiosk-test-02" in caplog.text
    # Nor did it spend the presence: the kiosk whose reader held the card still gets the document.
    own = request_body(citizen, "birth-certificate", presence_id=presence_id)
    assert http.post("/requests", json=own).json()["status"] == "issued"


def test_a_request_id_with_every_character_an_id_may_hold_is_voided_by_its_kiosk(http, request_body,
                                                                                  seed_citizens) -> None:
    """The kiosk puts the id in the path percent-encoded (wire.void_path: ':' is %3A); its signature covers
    the path as sent, which central must check as sent, not as decoded."""
    request_id = "req:%s.a_b-c" % new_id("x")
    body = request_body(seed_citizens["Khaled"], "civil-status-extract", request_id=request_id)
    document = http.post("/requests", json=body).json()["document"]
    voided = http.post(api(wire.void_path(request_id)))
    assert voided.status_code == 200, voided.text
    assert voided.json()["serial"] == document["serial"]
    collected = http.post(api(wire.claim_collected_path("2026:NOT.A-CLAIM")))
    assert (collected.status_code, collected.json()["reason"]) == (404, "unknown_claim")
