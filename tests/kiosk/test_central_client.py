"""CentralClient against the real central service on loopback, and against a stub that answers badly.

The client is an enrolled kiosk: every call is signed with its device key
(tests/kiosk/test_device_signing.py looks at the signatures themselves). The
pre-check asks central for a challenge, has the citizen's card sign it (the
card simulator's card, read through the kiosk's own card protocol:
tests.central.cards.CardInReader) and sends the proof; a request then names the
presence the card proved. Central trusts the session's card issuer."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from central import cli
from central.db import iso_utc, utc_now
from central.seeding import SEED_DIR
from central.server import RunningCentral, start_in_thread
from central.wire import NOT_ELIGIBLE
from kiosk import wire
from kiosk.card_proof import CardProof
from kiosk.central_client import (CentralClient, CentralUnreachable, Eligibility, SubmitResult, SubmitStatus,
                                  VoidStatus)
from kiosk.errors import CentralError
from kiosk.messages import MessageKind
from kiosk.money import Money
from kiosk.ports.central import Challenge, EligibilityAnswer
from tests.central.cards import CardInReader
from tests.running_central import enrol
from tests.central.stub_acquirer import StubAcquirer
from tests.central.stub_http import (StubHttpServer, raw_reply, self_signed_certificate, server_tls,
                                     unanswered_port)

pytestmark = pytest.mark.realstack   # central over HTTP on loopback, stubs (no card reader): see README

DEVICE_ID = "kiosk-client-test"
_SEED = {c.get("given_name_latin") or c["given_name_ar"]: c
         for c in json.loads((SEED_DIR / "citizens.json").read_text(encoding="utf-8"))["citizens"]}
KHALED = _SEED["Khaled"]     # married
OMAR = _SEED["Omar"]         # single
# Omar's card as the issuer would sign it, but under a card number the registry does not hold for him
# (a card he no longer holds, or someone else's copy): it proves nothing.
NOT_THE_REGISTRYS = {**OMAR, "card_number": "SY1000000099"}


@pytest.fixture(scope="module")
def client(central: RunningCentral, central_db_url: str) -> Iterator[CentralClient]:
    """The kiosk DEVICE_ID, enrolled at central: its calls signed with its device key."""
    key = enrol(central.url, central_db_url, DEVICE_ID)
    with CentralClient(central.url, device_id=DEVICE_ID, device_key=key) as client:
        yield client


@pytest.fixture(scope="module")
def card_of(issuer) -> Callable[[dict], CardInReader]:
    """`card_of(citizen)`: the citizen's card (a seed record) in the kiosk's reader, PIN verified."""
    return lambda citizen: CardInReader(citizen, issuer)


def start_central(db_url: str, acquirer: StubAcquirer, issuer_pem: Path, **options: object) -> RunningCentral:
    return start_in_thread(db_url, acquirer_url=acquirer.url, issuer_key_paths=[issuer_pem], **options)


def new_id() -> str:
    return "req-" + uuid.uuid4().hex


def paid(acquirer: StubAcquirer, client: CentralClient, service_code: str) -> str:
    """The fee of `service_code`, as central's catalogue says, paid at the acquirer; the payment id."""
    fee = client.fetch_catalogue().get(service_code).fee
    return acquirer.pay(fee.amount_minor, fee.currency)


def pre_check(client: CentralClient, card: CardInReader, service_code: str, *,
              fee: Money = Money.of(150000, "SYP"), catalogue_version: str = "") -> tuple[Challenge, EligibilityAnswer]:
    """The kiosk's pre-check before a charge: central's challenge, signed by the card in the reader."""
    challenge = client.challenge()
    assert challenge is not None, "central gave no challenge"
    answer = client.check_eligibility(service_code=service_code, challenge=challenge,
                                      proof=card.sign(challenge.nonce), fee=fee, catalogue_version=catalogue_version)
    return challenge, answer


def present(client: CentralClient, card: CardInReader, service_code: str) -> str:
    """The presence a request names: the card proved itself in the pre-check for `service_code`. For a
    citizen central found not eligible the runtime sends no request; a test that sends one anyway names
    the challenge the card answered (central must still refuse it)."""
    challenge, answer = pre_check(client, card, service_code)
    if answer.eligibility is Eligibility.ELIGIBLE:
        assert answer.presence_id == challenge.challenge_id
        return answer.presence_id
    assert answer.eligibility is Eligibility.NOT_ELIGIBLE, answer
    return challenge.challenge_id


def submit(client: CentralClient, request_id: str, presence_id: str, service_code: str, payment_id: str,
           language: str = "ar", **options: object) -> SubmitResult:
    return client.submit_request(request_id, service_code=service_code, presence_id=presence_id, language=language,
                                 payment_id=payment_id, **options)


def test_fetch_catalogue(client) -> None:
    catalogue = client.fetch_catalogue()
    assert len(catalogue.services) >= 35 and 6 <= len(catalogue.categories) <= 8
    assert catalogue.get("family-statement").fee == Money.of(200000, "SYP")
    assert catalogue.get("family-statement").category == "family" and catalogue.category("family").name("en")
    assert {"civil-status-extract", "family-statement", "non-conviction", "birth-certificate"} <= \
        {s.code for s in catalogue.most_asked()}
    assert catalogue.offered_in("latakia").get("displaced-statement") is None
    assert catalogue.offered_in("quneitra").get("displaced-statement") is not None
    assert client.device_refused() is None


def test_submit_issues_a_document_and_a_retry_gets_the_same_one(acquirer, client, card_of) -> None:
    presence = present(client, card_of(KHALED), "family-statement")
    request_id, payment_id = new_id(), paid(acquirer, client, "family-statement")
    first = submit(client, request_id, presence, "family-statement", payment_id)
    assert first.status is SubmitStatus.ISSUED and first.reason is None
    assert first.document.request_id == request_id and first.document.service_code == "family-statement"
    again = submit(client, request_id, presence, "family-statement", payment_id)
    assert again.document.serial == first.document.serial


def test_rejection_is_a_value_with_its_reason(acquirer, client, card_of) -> None:
    presence = present(client, card_of(OMAR), "marriage-certificate")      # Omar is single
    result = submit(client, new_id(), presence, "marriage-certificate", paid(acquirer, client, "marriage-certificate"))
    assert result == SubmitResult(SubmitStatus.REJECTED, reason=NOT_ELIGIBLE)


def test_void_request(acquirer, client, card_of) -> None:
    request_id = new_id()
    presence = present(client, card_of(OMAR), "birth-certificate")
    issued = submit(client, request_id, presence, "birth-certificate", paid(acquirer, client, "birth-certificate"))
    assert issued.status is SubmitStatus.ISSUED
    assert client.void_request(request_id) is VoidStatus.VOIDED
    assert client.void_request(request_id) is VoidStatus.VOIDED


def test_deliver_sends_outbox_messages(acquirer, client, card_of) -> None:
    request_id = new_id()
    message = {"request_id": request_id, "service_code": "residence-certificate", "language": "en",
               "payment_id": paid(acquirer, client, "residence-certificate"),
               "presence_id": present(client, card_of(OMAR), "residence-certificate")}
    answer = client.deliver(MessageKind.CERTIFICATE_REQUEST, message)
    assert answer["status"] == "issued" and answer["document"]["request_id"] == request_id
    assert client.deliver("certificate_request", message) == answer   # a kind read back from the outbox by name
    voided = client.deliver(MessageKind.VOID_REQUEST, {"request_id": request_id})
    assert voided["status"] == "voided" and voided["serial"] == answer["document"]["serial"]
    assert client.deliver("void_request", {"request_id": request_id}) == voided


def test_request_sent_again_after_its_void_is_a_final_answer_and_not_issued(acquirer, client, card_of) -> None:
    request_id, payment_id = new_id(), paid(acquirer, client, "birth-certificate")
    presence = present(client, card_of(OMAR), "birth-certificate")
    message = {"request_id": request_id, "service_code": "birth-certificate", "language": "ar",
               "payment_id": payment_id, "presence_id": presence}
    assert client.deliver(MessageKind.CERTIFICATE_REQUEST, message)["status"] == "issued"
    assert client.void_request(request_id) is VoidStatus.VOIDED
    # The outbox lost its mark and sends the request again: a final answer, never the document.
    answer = client.deliver(MessageKind.CERTIFICATE_REQUEST, message)
    assert answer is not None and answer["status"] == "voided" and "document" not in answer
    assert answer["reason"] == "request_voided"
    assert submit(client, request_id, presence, "birth-certificate", payment_id) == SubmitResult(
        SubmitStatus.VOIDED, reason="request_voided")


def test_the_place_goes_to_central_and_into_the_signed_qr_code(central, acquirer, client, card_of) -> None:
    place = {"ar": "دمشق - المزة", "en": "Damascus - Mazzeh"}
    presence = present(client, card_of(OMAR), "birth-certificate")
    result = submit(client, new_id(), presence, "birth-certificate", paid(acquirer, client, "birth-certificate"),
                    place=place)
    assert result.status is SubmitStatus.ISSUED
    verdict = requests.get(central.url + wire.VERIFY_DOCUMENT, params={"payload": result.document.verification},
                           timeout=10).json()
    assert verdict["valid"] is True and verdict["signed"]["place"] == place


def test_documents_claimed_offline_wait_for_the_card_that_proves_itself(acquirer, client, card_of) -> None:
    """A claim taken while the link was down arrives from the outbox; the citizen's card, proving itself
    to central later, finds the document waiting, until it is printed (collected)."""
    card, request_id, taken_at = card_of(OMAR), new_id(), iso_utc(utc_now())
    claim = {"request_id": request_id, "service_code": "civil-status-extract", "language": "ar",
             "payment_id": paid(acquirer, client, "civil-status-extract"), "claim": True,
             "claim_reference": "CLM-" + uuid.uuid4().hex[:12], "taken_at": taken_at,
             "card_proof": card.sign_claim(request_id, "civil-status-extract", taken_at)}
    issued = client.deliver(MessageKind.CERTIFICATE_REQUEST, claim)
    assert issued is not None and issued["status"] == "issued"
    serial = issued["document"]["serial"]

    def waiting(citizen_card: CardInReader) -> tuple | None:
        challenge = client.challenge()
        assert challenge is not None
        return client.waiting_documents(challenge=challenge, proof=citizen_card.sign(challenge.nonce))

    assert serial in [document.serial for document in waiting(card)]
    assert waiting(card_of(NOT_THE_REGISTRYS)) == ()      # a card that proves nothing learns nothing
    collected = client.deliver(MessageKind.CLAIM_COLLECTED, {"serial": serial, "request_id": request_id})
    assert collected is not None and collected["status"] == "collected" and collected["serial"] == serial
    assert serial not in [document.serial for document in waiting(card)]


@pytest.mark.parametrize("kind", ["parcel", "refund", None])
def test_deliver_refuses_a_kind_that_is_not_centrals(client, kind) -> None:
    with pytest.raises(CentralError):
        client.deliver(kind, {"request_id": new_id()})


def test_request_id_reused_with_another_body_can_never_succeed(acquirer, client, card_of) -> None:
    request_id, payment_id = new_id(), paid(acquirer, client, "birth-certificate")
    presence = present(client, card_of(OMAR), "birth-certificate")
    assert submit(client, request_id, presence, "birth-certificate", payment_id).status is SubmitStatus.ISSUED
    with pytest.raises(CentralError, match="request_id_reused"):
        submit(client, request_id, presence, "birth-certificate", payment_id, language="en")


def test_invalid_message_can_never_succeed_and_the_error_holds_no_value_it_was_sent(client) -> None:
    with pytest.raises(CentralError) as raised:
        submit(client, new_id(), "card SY1000000003", "birth-certificate", "pay_x")
    assert "invalid_input" in str(raised.value) and "SY1000000003" not in str(raised.value)


def test_central_down_is_unreachable_and_a_retry_after_it_returns_issues_once(acquirer, issuer_pem, card_of,
                                                                             tmp_path, caplog) -> None:
    db_url = "sqlite:///%s" % (tmp_path / "central.sqlite3")
    down = start_central(db_url, acquirer, issuer_pem)
    port = down.port
    away = CentralClient(down.url, device_id=DEVICE_ID, timeout_s=2, device_key=enrol(down.url, db_url, DEVICE_ID))
    try:
        payment_id = paid(acquirer, away, "civil-status-extract")
        presence = present(away, card_of(KHALED), "civil-status-extract")
        down.stop()
        request_id = new_id()
        with caplog.at_level(logging.INFO):
            assert submit(away, request_id, presence, "civil-status-extract", payment_id).status is \
                SubmitStatus.UNREACHABLE
            assert away.void_request("req-other") is VoidStatus.UNREACHABLE
            assert away.deliver("void_request", {"request_id": "req-other"}) is None
            assert away.challenge() is None
            with pytest.raises(CentralUnreachable):
                away.fetch_catalogue()
        assert away.device_refused() is None          # a central that cannot be reached refused nothing
        assert "central.unreachable" in caplog.text and "central.device_refused" not in caplog.text
        back = start_central(db_url, acquirer, issuer_pem, port=port)
        try:
            issued = submit(away, request_id, presence, "civil-status-extract", payment_id)
            assert issued.status is SubmitStatus.ISSUED
            assert submit(away, request_id, presence, "civil-status-extract", payment_id) == issued
        finally:
            back.stop()
    finally:
        away.close()


def _document(request_id: str) -> dict:
    return {"request_id": request_id, "serial": "2026-AAAAAAAA", "service_code": "birth-certificate",
            "title": {"ar": "بيان ولادة", "en": "Birth certificate"}, "fields": [], "issued_at": "2026-01-01T00:00:00Z",
            "verification": "KSK1.x.y"}


# What the stubs stand for: a challenge central gave, which the stub never checks.
STUB_CHALLENGE = Challenge("ch-stub-1", bytes(range(32)))
STUB_PRESENCE = STUB_CHALLENGE.challenge_id
STUB_MESSAGE = {"request_id": "req-1", "service_code": "birth-certificate", "payment_id": "pay_1", "language": "ar",
                "presence_id": STUB_PRESENCE}


@pytest.fixture(scope="module")
def stub_proof(issuer) -> CardProof:
    """Khaled's card's answer to STUB_CHALLENGE."""
    return CardInReader(KHALED, issuer).sign(STUB_CHALLENGE.nonce)


def stub_pre_check(client: CentralClient, proof: CardProof) -> EligibilityAnswer:
    return client.check_eligibility(service_code="birth-certificate", challenge=STUB_CHALLENGE, proof=proof,
                                    fee=Money.of(150000, "SYP"), catalogue_version="v-kiosk")


GARBLED = {
    "not JSON": raw_reply("200 OK", b"<html>proxy login</html>", content_type="text/html"),
    "a JSON list": raw_reply("200 OK", b"[1, 2]"),
    "a document missing its keys": raw_reply("200 OK", b'{"status": "issued", "document": {"serial": 5}}'),
    "a document for another request": raw_reply("200 OK", json.dumps(
        {"status": "issued", "document": _document("req-someone-else")}).encode()),
    "a rejection without a reason": raw_reply("422 Unprocessable Entity", b'{"status": "rejected"}'),
    "a void of another request": raw_reply("422 Unprocessable Entity", json.dumps(
        {"status": "voided", "reason": "request_voided", "request_id": "req-someone-else"}).encode()),
    "an unknown status": raw_reply("200 OK", b'{"status": "maybe"}'),
}
UNAVAILABLE = {
    "a 500 page": raw_reply("500 Internal Server Error", b"<h1>oops</h1>", content_type="text/html"),
    "a 503": raw_reply("503 Service Unavailable", b'{"status": "error"}'),
    "a truncated answer": raw_reply("200 OK", b'{"status": "iss', length=400),
    "no answer at all": None,
}


@pytest.mark.parametrize("reply", list(GARBLED.values()), ids=list(GARBLED))
def test_garbled_answer_is_unreachable_with_a_log_event_not_a_crash(reply, caplog) -> None:
    stub = StubHttpServer(reply)
    try:
        with CentralClient(stub.url, device_id=DEVICE_ID) as client, caplog.at_level(logging.INFO):
            result = submit(client, "req-1", STUB_PRESENCE, "birth-certificate", "pay_1")
            assert result == SubmitResult(SubmitStatus.UNREACHABLE)
            assert client.deliver(MessageKind.CERTIFICATE_REQUEST, STUB_MESSAGE) is None
            with pytest.raises(CentralUnreachable):
                client.fetch_catalogue()
    finally:
        stub.stop()
    assert "central.answer_garbled" in caplog.text


@pytest.mark.parametrize("reply", list(UNAVAILABLE.values()), ids=list(UNAVAILABLE))
def test_failed_answer_is_unreachable(reply, stub_proof) -> None:
    stub = StubHttpServer(reply)
    try:
        with CentralClient(stub.url, device_id=DEVICE_ID) as client:
            assert submit(client, "req-1", STUB_PRESENCE, "birth-certificate", "pay_1").status is \
                SubmitStatus.UNREACHABLE
            assert client.void_request("req-1") is VoidStatus.UNREACHABLE
            assert client.challenge() is None
            assert stub_pre_check(client, stub_proof) == EligibilityAnswer(Eligibility.UNREACHABLE)
    finally:
        stub.stop()


def test_central_that_never_answers_is_unreachable_after_the_timeout(stub_proof, caplog) -> None:
    stub = StubHttpServer(hold=True)
    try:
        with CentralClient(stub.url, device_id=DEVICE_ID, timeout_s=0.2) as client, caplog.at_level(logging.INFO):
            assert submit(client, "req-1", STUB_PRESENCE, "birth-certificate", "pay_1").status is \
                SubmitStatus.UNREACHABLE
            assert client.void_request("req-1") is VoidStatus.UNREACHABLE
            assert client.challenge() is None
            assert stub_pre_check(client, stub_proof).eligibility is Eligibility.UNREACHABLE
            with pytest.raises(CentralUnreachable):
                client.fetch_catalogue()
        # The kiosk gave up by itself (its read timeout), while the stub still held every call.
        assert caplog.text.count("error=ReadTimeout") == 5
        assert len(stub.requests) == 5   # a read that timed out is not asked again, not even the catalogue
    finally:
        stub.stop()


def test_central_that_never_accepts_the_connection_is_unreachable_after_the_connect_timeout(stub_proof,
                                                                                           caplog) -> None:
    with unanswered_port() as url, CentralClient(url, device_id=DEVICE_ID, timeout_s=0.3) as client, \
            caplog.at_level(logging.INFO):
        assert submit(client, "req-1", STUB_PRESENCE, "birth-certificate", "pay_1").status is SubmitStatus.UNREACHABLE
        assert client.challenge() is None
        assert stub_pre_check(client, stub_proof).eligibility is Eligibility.UNREACHABLE
        with pytest.raises(CentralUnreachable):
            client.fetch_catalogue()   # tried three times
    # The kiosk gave up by itself (its connect timeout), on every call.
    assert caplog.text.count("error=ConnectTimeout") == 4


def test_connect_timeout_is_a_few_seconds_at_most_and_the_read_timeout_is_the_configured_one() -> None:
    with CentralClient("http://127.0.0.1:9", device_id=DEVICE_ID, timeout_s=30) as client:
        assert client._timeout == (3.0, 30)
    with CentralClient("http://127.0.0.1:9", device_id=DEVICE_ID, timeout_s=0.5) as client:
        assert client._timeout == (0.5, 0.5)


FEE = {"amount_minor": 150000, "currency": "SYP"}
ELIGIBLE = json.dumps({"eligible": True, "fee": FEE, "catalogue_version": "v1",
                       "presence_id": STUB_PRESENCE}).encode()

CATALOGUE = {"services": [{"code": "birth-certificate", "names": {"ar": "بيان ولادة", "en": "Birth certificate"},
                           "fee": {"amount_minor": 150000, "currency": "SYP"}}]}


GROUPED = {
    "categories": [{"code": "civil-status", "names": {"ar": "الأحوال المدنية", "en": "Civil status"}},
                   {"code": "transport", "names": {"ar": "النقل", "en": "Transport"}}],
    "services": [{"code": "birth-certificate", "names": {"ar": "بيان ولادة", "en": "Birth certificate"},
                  "fee": {"amount_minor": 150000, "currency": "SYP"}, "category": "civil-status",
                  "governorates": [], "rank": 1},
                 {"code": "boat-licence", "names": {"ar": "رخصة قارب", "en": "Boat licence"},
                  "fee": {"amount_minor": 300000, "currency": "SYP"}, "category": "transport",
                  "governorates": ["latakia", "tartus"], "rank": None}],
}


def _changed(change) -> dict:
    data = json.loads(json.dumps(GROUPED))
    change(data)
    return data


def fetched(data: object) -> object:
    """What fetch_catalogue makes of `data` served as central's answer."""
    stub = StubHttpServer(raw_reply("200 OK", json.dumps(data, ensure_ascii=False).encode()))
    try:
        with CentralClient(stub.url, device_id=DEVICE_ID) as client:
            return client.fetch_catalogue()
    finally:
        stub.stop()


def test_categories_governorates_and_ranks_come_through() -> None:
    catalogue = fetched(GROUPED)
    assert [c.code for c in catalogue.categories] == ["civil-status", "transport"]
    assert catalogue.get("boat-licence").governorates == ("latakia", "tartus")
    assert [s.code for s in catalogue.most_asked()] == ["birth-certificate"]
    assert catalogue.offered_in("damascus").category("transport") is None
    assert catalogue.to_json() == GROUPED


def test_a_catalogue_without_categories_is_still_read() -> None:
    """A central from before categories answers services alone: they are all on the first screen."""
    assert [s.code for s in fetched(CATALOGUE).services] == ["birth-certificate"]


GARBLED_CATALOGUES = {
    "categories not a list": lambda d: d.update(categories={"code": "transport"}),
    "a category without a code": lambda d: d["categories"][0].pop("code"),
    "a category without an Arabic name": lambda d: d["categories"][1]["names"].pop("ar"),
    "a category given twice": lambda d: d["categories"].append(d["categories"][0]),
    "a service in an unknown category": lambda d: d["services"][1].update(category="sea"),
    "a service category that is not text": lambda d: d["services"][1].update(category=7),
    "a service given twice": lambda d: d["services"].append(d["services"][0]),
    "a service without an Arabic name": lambda d: d["services"][0].update(names={"en": "Birth"}),
    "governorates not a list": lambda d: d["services"][1].update(governorates="latakia"),
    "a governorate that is not a code": lambda d: d["services"][1].update(governorates=["latakia", ""]),
    "a rank as text": lambda d: d["services"][0].update(rank="1"),
    "a rank of zero": lambda d: d["services"][0].update(rank=0),
    "a rank that is true": lambda d: d["services"][0].update(rank=True),
    "a service that is not an object": lambda d: d["services"].append("boat-licence"),
    "a fee without its currency": lambda d: d["services"][0]["fee"].pop("currency"),
}


@pytest.mark.parametrize("change", list(GARBLED_CATALOGUES.values()), ids=list(GARBLED_CATALOGUES))
def test_a_garbled_catalogue_is_unreachable_with_a_log_event(change, caplog) -> None:
    with caplog.at_level(logging.INFO), pytest.raises(CentralUnreachable, match="unreadable"):
        fetched(_changed(change))
    assert "central.answer_garbled call=catalogue" in caplog.text


@pytest.mark.parametrize("status", ["502 Bad Gateway", "503 Service Unavailable", "504 Gateway Timeout"])
def test_the_catalogue_is_asked_again_after_a_busy_answer(status) -> None:
    stub = StubHttpServer([raw_reply(status, b"busy", content_type="text/plain"),
                           raw_reply("200 OK", json.dumps(CATALOGUE).encode())])
    try:
        with CentralClient(stub.url, device_id=DEVICE_ID) as client:
            assert client.fetch_catalogue().get("birth-certificate").fee == Money.of(150000, "SYP")
        assert stub.request_lines == ["GET /api/v1/catalogue"] * 2
    finally:
        stub.stop()


def test_get_is_retried_on_503_but_post_is_sent_once(stub_proof) -> None:
    # A Retry-After of an hour is not obeyed: the kiosk would hang on it (and the test time out).
    stub = StubHttpServer(raw_reply("503 Service Unavailable", b'{"status": "error"}', headers={"Retry-After": "3600"}))
    try:
        with CentralClient(stub.url, device_id=DEVICE_ID) as client:
            with pytest.raises(CentralUnreachable, match="HTTP 503"):
                client.fetch_catalogue()
            assert stub.request_lines == ["GET /api/v1/catalogue"] * 3   # the first try and two more
            stub.request_lines.clear()
            assert submit(client, "req-1", STUB_PRESENCE, "birth-certificate", "pay_1").status is \
                SubmitStatus.UNREACHABLE
            assert client.void_request("req-1") is VoidStatus.UNREACHABLE
            assert client.challenge() is None
            assert stub_pre_check(client, stub_proof).eligibility is Eligibility.UNREACHABLE
            assert stub.request_lines == ["POST /api/v1/requests", "POST /api/v1/requests/req-1/void",
                                          "POST /api/v1/challenges", "POST /api/v1/requests/eligibility"]
    finally:
        stub.stop()


def test_tls_certificates_are_verified_by_default(tmp_path, stub_proof) -> None:
    cert, key = self_signed_certificate(tmp_path)
    stub = StubHttpServer(raw_reply("200 OK", ELIGIBLE), tls=server_tls(cert, key))
    try:
        with CentralClient(stub.url, device_id=DEVICE_ID) as client:
            assert client._http.verify is True
            assert stub_pre_check(client, stub_proof).eligibility is Eligibility.UNREACHABLE
            assert client.challenge() is None
            assert submit(client, "req-1", STUB_PRESENCE, "birth-certificate", "pay_1").status is \
                SubmitStatus.UNREACHABLE
            with pytest.raises(CentralUnreachable):
                client.fetch_catalogue()
        assert stub.requests == []   # nothing was said to a server whose certificate was refused
        with CentralClient(stub.url, device_id=DEVICE_ID, ca_file=cert) as pinned:
            assert stub_pre_check(pinned, stub_proof).eligibility is Eligibility.ELIGIBLE
    finally:
        stub.stop()


def test_a_pinned_ca_is_not_replaced_by_a_bundle_named_in_the_environment(tmp_path, monkeypatch, stub_proof) -> None:
    cert, key = self_signed_certificate(tmp_path)
    (tmp_path / "other").mkdir()
    other, _ = self_signed_certificate(tmp_path / "other")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    stub = StubHttpServer(raw_reply("200 OK", ELIGIBLE), tls=server_tls(cert, key))
    try:
        with CentralClient(stub.url, device_id=DEVICE_ID, ca_file=cert) as pinned:
            assert stub_pre_check(pinned, stub_proof).eligibility is Eligibility.ELIGIBLE
    finally:
        stub.stop()


def test_a_missing_ca_file_is_refused_at_once(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        CentralClient("https://127.0.0.1:9", device_id=DEVICE_ID, ca_file=tmp_path / "nothing.pem")


@pytest.mark.parametrize("service, citizen, expected, fee", [
    ("marriage-certificate", OMAR, Eligibility.NOT_ELIGIBLE, Money.of(200000, "SYP")),     # Omar is single
    ("marriage-certificate", KHALED, Eligibility.ELIGIBLE, Money.of(200000, "SYP")),
    ("birth-certificate", NOT_THE_REGISTRYS, Eligibility.NOT_ELIGIBLE, Money.of(150000, "SYP")),
    ("no-such-service", KHALED, Eligibility.NOT_ELIGIBLE, None),
], ids=["single", "married", "not the registry's card", "unknown service"])
def test_eligibility_is_asked_before_paying_and_names_centrals_fee(client, card_of, service, citizen, expected,
                                                                   fee) -> None:
    catalogue = client.fetch_catalogue()
    kiosk_fee = catalogue.get(service).fee if catalogue.get(service) else Money.of(100000, "SYP")
    challenge, answer = pre_check(client, card_of(citizen), service, fee=kiosk_fee,
                                  catalogue_version=catalogue.version)
    presence = challenge.challenge_id if expected is Eligibility.ELIGIBLE else ""
    assert answer == EligibilityAnswer(expected, fee=fee, catalogue_version=catalogue.version, presence_id=presence)


def test_eligibility_with_central_down_is_unreachable(tmp_path, stub_proof) -> None:
    running = start_in_thread("sqlite:///%s" % (tmp_path / "c.sqlite3"))
    url = running.url
    running.stop()
    with CentralClient(url, device_id=DEVICE_ID, timeout_s=2) as gone:
        assert gone.challenge() is None
        assert stub_pre_check(gone, stub_proof) == EligibilityAnswer(Eligibility.UNREACHABLE)
        assert gone.device_refused() is None


def test_a_fee_changed_at_central_after_the_catalogue_comes_back_from_the_pre_check(acquirer, issuer_pem, card_of,
                                                                                   tmp_path) -> None:
    """The kiosk read the catalogue; central's staff then raised a fee. The pre-check before the
    charge answers with the new fee and the new version, and a payment of the old fee buys nothing."""
    db_url = "sqlite:///%s" % (tmp_path / "central.sqlite3")
    card = card_of(KHALED)
    with start_central(db_url, acquirer, issuer_pem) as central, \
            CentralClient(central.url, device_id=DEVICE_ID, device_key=enrol(central.url, db_url, DEVICE_ID)) as client:
        shown = client.fetch_catalogue()
        old_fee = shown.get("family-statement").fee
        assert len(shown.version) == 16
        assert cli.main(["catalogue", "set-fee", "family-statement", "225000", "--db", db_url]) == 0
        challenge, answer = pre_check(client, card, "family-statement", fee=old_fee,
                                      catalogue_version=shown.version)
        now = client.fetch_catalogue()
        assert answer == EligibilityAnswer(Eligibility.ELIGIBLE, fee=Money.of(225000, "SYP"),
                                           catalogue_version=now.version, presence_id=challenge.challenge_id)
        assert now.version != shown.version and now.get("family-statement").fee == Money.of(225000, "SYP")
        old = submit(client, new_id(), answer.presence_id, "family-statement", acquirer.pay(old_fee.amount_minor))
        assert old == SubmitResult(SubmitStatus.REJECTED, reason="payment_amount_mismatch")
        # The citizen, shown the new fee, is asked again and pays it.
        new = submit(client, new_id(), present(client, card, "family-statement"), "family-statement",
                     acquirer.pay(225000))
        assert new.status is SubmitStatus.ISSUED


def answered(body: object, proof: CardProof, status: str = "200 OK") -> EligibilityAnswer:
    """What check_eligibility makes of `body` served as central's answer to the pre-check; checks what
    the kiosk sent: the challenge and the card's proof over it, never a number read from the card."""
    stub = StubHttpServer(raw_reply(status, json.dumps(body).encode()))
    try:
        with CentralClient(stub.url, device_id=DEVICE_ID) as client:
            answer = stub_pre_check(client, proof)
        assert stub.request_lines == ["POST " + wire.ELIGIBILITY]
        sent = json.loads(stub.requests[0])
        assert sent == {"service_code": "birth-certificate", "challenge_id": STUB_CHALLENGE.challenge_id,
                        "card_proof": proof.to_json(), "fee": FEE, "catalogue_version": "v-kiosk"}
        assert KHALED["national_number"].encode() not in stub.requests[0]
        assert KHALED["card_number"].encode() not in stub.requests[0]
        return answer
    finally:
        stub.stop()


def test_the_pre_check_sends_the_challenge_the_proof_the_fee_and_the_version_and_reads_centrals(stub_proof) -> None:
    assert answered({"eligible": True, "fee": {"amount_minor": 175000, "currency": "SYP"},
                     "catalogue_version": "abc123", "presence_id": STUB_PRESENCE}, stub_proof) == EligibilityAnswer(
        Eligibility.ELIGIBLE, fee=Money.of(175000, "SYP"), catalogue_version="abc123", presence_id=STUB_PRESENCE)
    assert answered({"eligible": False, "reason": "not_eligible", "fee": FEE, "catalogue_version": "abc123"},
                    stub_proof) == \
        EligibilityAnswer(Eligibility.NOT_ELIGIBLE, fee=Money.of(150000, "SYP"), catalogue_version="abc123")
    # A service central does not know has no fee; a central without versions gives none.
    assert answered({"eligible": False, "reason": "unknown_service", "fee": None}, stub_proof) == EligibilityAnswer(
        Eligibility.NOT_ELIGIBLE)


GOOD = {"eligible": True, "fee": FEE, "catalogue_version": "v1", "presence_id": STUB_PRESENCE}


def _without(key: str) -> dict:
    return {k: v for k, v in GOOD.items() if k != key}


GARBLED_ELIGIBILITY = {
    "eligible without a fee": _without("fee"),
    "eligible with a null fee": {**GOOD, "fee": None},
    "a fee as a number": {**GOOD, "fee": 150000},
    "an amount as text": {**GOOD, "fee": {"amount_minor": "1500", "currency": "SYP"}},
    "an amount as a float": {**GOOD, "fee": {"amount_minor": 1500.0, "currency": "SYP"}},
    "an amount that is true": {**GOOD, "fee": {"amount_minor": True, "currency": "SYP"}},
    "a zero fee": {**GOOD, "fee": {"amount_minor": 0, "currency": "SYP"}},
    "a fee without its currency": {**GOOD, "fee": {"amount_minor": 150000}},
    "a currency the kiosk does not handle": {**GOOD, "fee": {"amount_minor": 150000, "currency": "GBP"}},
    "a fee with more in it": {**GOOD, "fee": {**FEE, "discount": 5}},
    "a version that is not text": {**GOOD, "catalogue_version": 3},
    "a version with spaces": {**GOOD, "catalogue_version": "v 1"},
    "eligible without a presence": _without("presence_id"),
    "eligible with an empty presence": {**GOOD, "presence_id": ""},
    "a presence that is not an id": {**GOOD, "presence_id": "../ch stub"},
    "a presence that is not text": {**GOOD, "presence_id": 7},
    "a not-eligible answer with a garbled fee": {"eligible": False, "reason": "x", "fee": {"amount_minor": -1}},
    "eligible as text": {**GOOD, "eligible": "true"},
    "a JSON list": [True],
}


def test_a_well_formed_eligible_answer_is_eligible(stub_proof) -> None:
    """The garbled answers below are GOOD with one thing wrong: GOOD itself is read."""
    assert answered(GOOD, stub_proof) == EligibilityAnswer(Eligibility.ELIGIBLE, fee=Money.of(150000, "SYP"),
                                                           catalogue_version="v1", presence_id=STUB_PRESENCE)


@pytest.mark.parametrize("body", list(GARBLED_ELIGIBILITY.values()), ids=list(GARBLED_ELIGIBILITY))
def test_a_garbled_pre_check_answer_is_unreachable_so_nothing_is_charged(body, stub_proof, caplog) -> None:
    with caplog.at_level(logging.INFO):
        assert answered(body, stub_proof) == EligibilityAnswer(Eligibility.UNREACHABLE)
    assert "central.answer_garbled call=eligibility" in caplog.text
    assert KHALED["national_number"] not in caplog.text and KHALED["card_number"] not in caplog.text
    assert stub_proof.to_json()["ef_id"] not in caplog.text


def test_a_pre_check_central_fails_to_answer_is_unreachable(stub_proof) -> None:
    assert answered({"status": "error", "reason": "internal_error"}, stub_proof,
                    "500 Internal Server Error") == EligibilityAnswer(Eligibility.UNREACHABLE)
    assert answered({"status": "invalid", "reason": "invalid_input"}, stub_proof,
                    "400 Bad Request") == EligibilityAnswer(Eligibility.UNREACHABLE)


def test_the_question_about_waiting_documents_sends_the_challenge_and_the_proof_only(stub_proof) -> None:
    stub = StubHttpServer(raw_reply("200 OK", b'{"documents": []}'))
    try:
        with CentralClient(stub.url, device_id=DEVICE_ID) as client:
            assert client.waiting_documents(challenge=STUB_CHALLENGE, proof=stub_proof) == ()
        assert stub.request_lines == ["POST " + wire.CLAIMS_WAITING]
        assert json.loads(stub.requests[0]) == {"challenge_id": STUB_CHALLENGE.challenge_id,
                                                "card_proof": stub_proof.to_json()}
    finally:
        stub.stop()


def challenged(reply: bytes | None) -> Challenge | None:
    """What challenge() makes of `reply` served as central's answer."""
    stub = StubHttpServer(reply)
    try:
        with CentralClient(stub.url, device_id=DEVICE_ID) as client:
            challenge = client.challenge()
        assert stub.request_lines == ["POST " + wire.CHALLENGES]
        return challenge
    finally:
        stub.stop()


NONCE = bytes(range(100, 132))
CHALLENGE = {"challenge_id": "ch-0123456789abcdef", "challenge": base64.b64encode(NONCE).decode("ascii"),
             "expires_at": "2026-01-01T00:05:00Z"}


def test_a_challenge_is_an_id_and_32_bytes() -> None:
    assert challenged(raw_reply("200 OK", json.dumps(CHALLENGE).encode())) == Challenge("ch-0123456789abcdef", NONCE)


GARBLED_CHALLENGES = {
    "not JSON": raw_reply("200 OK", b"<html>proxy login</html>", content_type="text/html"),
    "a JSON list": raw_reply("200 OK", b"[1, 2]"),
    "no challenge id": raw_reply("200 OK", json.dumps({**CHALLENGE, "challenge_id": None}).encode()),
    "an id that is not one": raw_reply("200 OK", json.dumps({**CHALLENGE, "challenge_id": "../ch 1"}).encode()),
    "no challenge": raw_reply("200 OK", json.dumps({"challenge_id": "ch-1"}).encode()),
    "a challenge that is not base64": raw_reply("200 OK", json.dumps(
        {**CHALLENGE, "challenge": "not base64!"}).encode()),
    "a challenge that is not text": raw_reply("200 OK", json.dumps({**CHALLENGE, "challenge": 12345}).encode()),
    "a challenge of 16 bytes": raw_reply("200 OK", json.dumps(
        {**CHALLENGE, "challenge": base64.b64encode(NONCE[:16]).decode("ascii")}).encode()),
    "a challenge of 33 bytes": raw_reply("200 OK", json.dumps(
        {**CHALLENGE, "challenge": base64.b64encode(NONCE + b"x").decode("ascii")}).encode()),
}


@pytest.mark.parametrize("reply", list(GARBLED_CHALLENGES.values()), ids=list(GARBLED_CHALLENGES))
def test_a_garbled_challenge_is_no_challenge_with_a_log_event(reply, caplog) -> None:
    with caplog.at_level(logging.INFO):
        assert challenged(reply) is None
    assert "central.answer_garbled call=challenge" in caplog.text


@pytest.mark.parametrize("status", ["500 Internal Server Error", "503 Service Unavailable", "429 Too Many Requests"])
def test_a_challenge_central_fails_to_give_is_no_challenge_with_a_log_event(status, caplog) -> None:
    with caplog.at_level(logging.INFO):
        assert challenged(raw_reply(status, json.dumps(CHALLENGE).encode())) is None
    assert "central.unavailable call=challenge http=%s" % status.split()[0] in caplog.text


def test_the_catalogue_comes_with_its_version() -> None:
    catalogue = fetched({**GROUPED, "version": "0123456789abcdef"})
    assert catalogue.version == "0123456789abcdef"
    assert catalogue.offered_in("damascus").version == "0123456789abcdef"
    assert fetched(GROUPED).version == ""                      # a central from before versions


@pytest.mark.parametrize("version", [7, "with space", "x" * 65, ["v1"]])
def test_a_catalogue_with_a_garbled_version_is_unreachable(version) -> None:
    with pytest.raises(CentralUnreachable, match="unreadable"):
        fetched({**GROUPED, "version": version})
