"""CentralClient against the real central service on loopback, and against a stub that answers badly."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from central import cli
from central.server import RunningCentral, start_in_thread
from kiosk.central_client import (CentralClient, CentralUnreachable, Eligibility, SubmitResult, SubmitStatus,
                                  VoidStatus)
from kiosk import wire
from kiosk.errors import CentralError
from kiosk.messages import MessageKind
from kiosk.money import Money
from kiosk.ports.central import EligibilityAnswer
from tests.central.stub_acquirer import StubAcquirer
from tests.central.stub_http import (StubHttpServer, raw_reply, self_signed_certificate, server_tls,
                                     unanswered_port)

pytestmark = pytest.mark.realstack   # pcscd, the simulators, central or Xvfb: see README

DEVICE_ID = "kiosk-client-test"
KHALED = {"national_number": "01020345671", "card_number": "SY1000000001"}
OMAR = {"national_number": "01020345693", "card_number": "SY1000000003"}


@pytest.fixture(scope="module")
def acquirer() -> Iterator[StubAcquirer]:
    """The acquirer central looks the payments up at: it knows those `paid` makes."""
    with StubAcquirer() as stub:
        yield stub


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory, acquirer: StubAcquirer) -> Iterator[RunningCentral]:
    running = start_in_thread("sqlite:///%s" % (tmp_path_factory.mktemp("central") / "central.sqlite3"),
                              acquirer_url=acquirer.url)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(central: RunningCentral) -> Iterator[CentralClient]:
    with CentralClient(central.url, device_id=DEVICE_ID) as client:
        yield client


def new_id() -> str:
    return "req-" + uuid.uuid4().hex


def paid(acquirer: StubAcquirer, client: CentralClient, service_code: str) -> str:
    """The fee of `service_code`, as central's catalogue says, paid at the acquirer; the payment id."""
    fee = client.fetch_catalogue().get(service_code).fee
    return acquirer.pay(fee.amount_minor, fee.currency)


def eligibility(client: CentralClient, service_code: str, citizen: dict, *,
                fee: Money = Money.of(150000, "SYP"), catalogue_version: str = "") -> EligibilityAnswer:
    return client.check_eligibility(service_code=service_code, fee=fee, catalogue_version=catalogue_version,
                                    **citizen)


def submit(client: CentralClient, request_id: str, citizen: dict, service_code: str, payment_id: str,
           language: str = "ar", **options: object) -> SubmitResult:
    return client.submit_request(request_id, service_code=service_code, language=language, payment_id=payment_id,
                                 **citizen, **options)


def test_fetch_catalogue(client) -> None:
    catalogue = client.fetch_catalogue()
    assert len(catalogue.services) >= 35 and 6 <= len(catalogue.categories) <= 8
    assert catalogue.get("family-statement").fee == Money.of(200000, "SYP")
    assert catalogue.get("family-statement").category == "family" and catalogue.category("family").name("en")
    assert {"civil-status-extract", "family-statement", "non-conviction", "birth-certificate"} <= \
        {s.code for s in catalogue.most_asked()}
    assert catalogue.offered_in("latakia").get("displaced-statement") is None
    assert catalogue.offered_in("quneitra").get("displaced-statement") is not None


def test_submit_issues_a_document_and_a_retry_gets_the_same_one(central, acquirer, client) -> None:
    request_id, payment_id = new_id(), paid(acquirer, client, "family-statement")
    first = submit(client, request_id, KHALED, "family-statement", payment_id)
    assert first.status is SubmitStatus.ISSUED and first.reason is None
    assert first.document.request_id == request_id and first.document.service_code == "family-statement"
    again = submit(client, request_id, KHALED, "family-statement", payment_id)
    assert again.document.serial == first.document.serial


def test_rejection_is_a_value_with_its_reason(central, acquirer, client) -> None:
    result = submit(client, new_id(), OMAR, "marriage-certificate", paid(acquirer, client, "marriage-certificate"))
    assert result == SubmitResult(SubmitStatus.REJECTED, reason="not_married")


def test_void_request(central, acquirer, client) -> None:
    request_id = new_id()
    submit(client, request_id, OMAR, "birth-certificate", paid(acquirer, client, "birth-certificate"))
    assert client.void_request(request_id) is VoidStatus.VOIDED
    assert client.void_request(request_id) is VoidStatus.VOIDED


def test_deliver_sends_outbox_messages(central, acquirer, client) -> None:
    request_id = new_id()
    message = {"request_id": request_id, "service_code": "residence-certificate", "language": "en",
               "payment_id": paid(acquirer, client, "residence-certificate"), **OMAR}
    answer = client.deliver(MessageKind.CERTIFICATE_REQUEST, message)
    assert answer["status"] == "issued" and answer["document"]["request_id"] == request_id
    assert client.deliver("certificate_request", message) == answer   # a kind read back from the outbox by name
    voided = client.deliver(MessageKind.VOID_REQUEST, {"request_id": request_id})
    assert voided["status"] == "voided" and voided["serial"] == answer["document"]["serial"]
    assert client.deliver("void_request", {"request_id": request_id}) == voided


def test_request_sent_again_after_its_void_is_a_final_answer_and_not_issued(central, acquirer, client) -> None:
    request_id, payment_id = new_id(), paid(acquirer, client, "birth-certificate")
    message = {"request_id": request_id, "service_code": "birth-certificate", "language": "ar",
               "payment_id": payment_id, **OMAR}
    assert client.deliver(MessageKind.CERTIFICATE_REQUEST, message)["status"] == "issued"
    assert client.void_request(request_id) is VoidStatus.VOIDED
    # The outbox lost its mark and sends the request again: a final answer, never the document.
    answer = client.deliver(MessageKind.CERTIFICATE_REQUEST, message)
    assert answer is not None and answer["status"] == "voided" and "document" not in answer
    assert answer["reason"] == "request_voided"
    assert submit(client, request_id, OMAR, "birth-certificate", payment_id) == SubmitResult(
        SubmitStatus.VOIDED, reason="request_voided")


def test_the_place_goes_to_central_and_into_the_signed_qr_code(central, acquirer, client) -> None:
    place = {"ar": "دمشق - المزة", "en": "Damascus - Mazzeh"}
    result = submit(client, new_id(), OMAR, "birth-certificate", paid(acquirer, client, "birth-certificate"),
                    place=place)
    assert result.status is SubmitStatus.ISSUED
    verdict = requests.get(central.url + wire.VERIFY_DOCUMENT, params={"payload": result.document.verification},
                           timeout=10).json()
    assert verdict["valid"] is True and verdict["signed"]["place"] == place


@pytest.mark.parametrize("kind", ["parcel", "refund", None])
def test_deliver_refuses_a_kind_that_is_not_centrals(client, kind) -> None:
    with pytest.raises(CentralError):
        client.deliver(kind, {"request_id": new_id()})


def test_request_id_reused_with_another_body_can_never_succeed(central, acquirer, client) -> None:
    request_id, payment_id = new_id(), paid(acquirer, client, "birth-certificate")
    submit(client, request_id, OMAR, "birth-certificate", payment_id)
    with pytest.raises(CentralError, match="request_id_reused"):
        submit(client, request_id, OMAR, "birth-certificate", payment_id, language="en")


def test_invalid_message_can_never_succeed_and_the_error_holds_no_personal_data(client) -> None:
    with pytest.raises(CentralError) as raised:
        submit(client, new_id(), {"national_number": "123", "card_number": "SY1000000003"}, "birth-certificate",
               "pay_x")
    assert "invalid_input" in str(raised.value) and "SY1000000003" not in str(raised.value)


def test_central_down_is_unreachable_and_a_retry_after_it_returns_issues_once(acquirer, tmp_path) -> None:
    db_url = "sqlite:///%s" % (tmp_path / "central.sqlite3")
    down = start_in_thread(db_url, acquirer_url=acquirer.url)
    port = down.port
    away = CentralClient(down.url, device_id=DEVICE_ID, timeout_s=2)
    try:
        payment_id = paid(acquirer, away, "civil-status-extract")
        down.stop()
        request_id = new_id()
        assert submit(away, request_id, KHALED, "civil-status-extract", payment_id).status is SubmitStatus.UNREACHABLE
        assert away.void_request("req-other") is VoidStatus.UNREACHABLE
        assert away.deliver("void_request", {"request_id": "req-other"}) is None
        with pytest.raises(CentralUnreachable):
            away.fetch_catalogue()
        back = start_in_thread(db_url, port=port, acquirer_url=acquirer.url)
        try:
            issued = submit(away, request_id, KHALED, "civil-status-extract", payment_id)
            assert issued.status is SubmitStatus.ISSUED
            assert submit(away, request_id, KHALED, "civil-status-extract", payment_id) == issued
        finally:
            back.stop()
    finally:
        away.close()


def _document(request_id: str) -> dict:
    return {"request_id": request_id, "serial": "2026-AAAAAAAA", "service_code": "birth-certificate",
            "title": {"ar": "بيان ولادة", "en": "Birth certificate"}, "fields": [], "issued_at": "2026-01-01T00:00:00Z",
            "verification": "KSK1.x.y"}


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
            result = submit(client, "req-1", KHALED, "birth-certificate", "pay_1")
            assert result == SubmitResult(SubmitStatus.UNREACHABLE)
            assert client.deliver(MessageKind.CERTIFICATE_REQUEST, {
                "request_id": "req-1", "service_code": "birth-certificate", "payment_id": "pay_1", "language": "ar",
                **KHALED}) is None
            with pytest.raises(CentralUnreachable):
                client.fetch_catalogue()
    finally:
        stub.stop()
    assert "central.answer_garbled" in caplog.text
    assert KHALED["national_number"] not in caplog.text and KHALED["card_number"] not in caplog.text


@pytest.mark.parametrize("reply", list(UNAVAILABLE.values()), ids=list(UNAVAILABLE))
def test_failed_answer_is_unreachable(reply) -> None:
    stub = StubHttpServer(reply)
    try:
        with CentralClient(stub.url, device_id=DEVICE_ID) as client:
            assert submit(client, "req-1", KHALED, "birth-certificate", "pay_1").status is SubmitStatus.UNREACHABLE
            assert client.void_request("req-1") is VoidStatus.UNREACHABLE
    finally:
        stub.stop()


def test_central_that_never_answers_is_unreachable_after_the_timeout() -> None:
    stub = StubHttpServer(hold=True)
    try:
        with CentralClient(stub.url, device_id=DEVICE_ID, timeout_s=0.2) as client:
            started = time.monotonic()
            assert submit(client, "req-1", KHALED, "birth-certificate", "pay_1").status is SubmitStatus.UNREACHABLE
            assert client.void_request("req-1") is VoidStatus.UNREACHABLE
            assert eligibility(client, "birth-certificate", KHALED).eligibility is Eligibility.UNREACHABLE
            with pytest.raises(CentralUnreachable):
                client.fetch_catalogue()
            assert time.monotonic() - started < 5
        assert len(stub.requests) == 4   # a read that timed out is not asked again, not even the catalogue
    finally:
        stub.stop()


def test_central_that_never_accepts_the_connection_is_unreachable_after_the_connect_timeout() -> None:
    with unanswered_port() as url, CentralClient(url, device_id=DEVICE_ID, timeout_s=0.3) as client:
        started = time.monotonic()
        assert submit(client, "req-1", KHALED, "birth-certificate", "pay_1").status is SubmitStatus.UNREACHABLE
        assert eligibility(client, "birth-certificate", KHALED).eligibility is Eligibility.UNREACHABLE
        with pytest.raises(CentralUnreachable):
            client.fetch_catalogue()   # tried three times
        assert time.monotonic() - started < 8


def test_connect_timeout_is_a_few_seconds_at_most_and_the_read_timeout_is_the_configured_one() -> None:
    with CentralClient("http://127.0.0.1:9", device_id=DEVICE_ID, timeout_s=30) as client:
        assert client._timeout == (3.0, 30)
    with CentralClient("http://127.0.0.1:9", device_id=DEVICE_ID, timeout_s=0.5) as client:
        assert client._timeout == (0.5, 0.5)


ELIGIBLE = json.dumps({"eligible": True, "fee": {"amount_minor": 150000, "currency": "SYP"},
                       "catalogue_version": "v1"}).encode()

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


def test_get_is_retried_on_503_but_post_is_sent_once() -> None:
    # A Retry-After of an hour is not obeyed: the kiosk would hang on it.
    stub = StubHttpServer(raw_reply("503 Service Unavailable", b'{"status": "error"}', headers={"Retry-After": "3600"}))
    try:
        with CentralClient(stub.url, device_id=DEVICE_ID) as client:
            started = time.monotonic()
            with pytest.raises(CentralUnreachable, match="HTTP 503"):
                client.fetch_catalogue()
            assert stub.request_lines == ["GET /api/v1/catalogue"] * 3   # the first try and two more
            stub.request_lines.clear()
            assert submit(client, "req-1", KHALED, "birth-certificate", "pay_1").status is SubmitStatus.UNREACHABLE
            assert client.void_request("req-1") is VoidStatus.UNREACHABLE
            assert eligibility(client, "birth-certificate", KHALED).eligibility is Eligibility.UNREACHABLE
            assert stub.request_lines == ["POST /api/v1/requests", "POST /api/v1/requests/req-1/void",
                                          "POST /api/v1/requests/eligibility"]
            assert time.monotonic() - started < 10
    finally:
        stub.stop()


def test_tls_certificates_are_verified_by_default(tmp_path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    stub = StubHttpServer(raw_reply("200 OK", ELIGIBLE), tls=server_tls(cert, key))
    try:
        with CentralClient(stub.url, device_id=DEVICE_ID) as client:
            assert client._http.verify is True
            assert eligibility(client, "birth-certificate", KHALED).eligibility is Eligibility.UNREACHABLE
            assert submit(client, "req-1", KHALED, "birth-certificate", "pay_1").status is SubmitStatus.UNREACHABLE
            with pytest.raises(CentralUnreachable):
                client.fetch_catalogue()
        assert stub.requests == []   # nothing was said to a server whose certificate was refused
        with CentralClient(stub.url, device_id=DEVICE_ID, ca_file=cert) as pinned:
            assert eligibility(pinned, "birth-certificate", KHALED).eligibility is Eligibility.ELIGIBLE
    finally:
        stub.stop()


def test_a_pinned_ca_is_not_replaced_by_a_bundle_named_in_the_environment(tmp_path, monkeypatch) -> None:
    cert, key = self_signed_certificate(tmp_path)
    (tmp_path / "other").mkdir()
    other, _ = self_signed_certificate(tmp_path / "other")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    stub = StubHttpServer(raw_reply("200 OK", ELIGIBLE), tls=server_tls(cert, key))
    try:
        with CentralClient(stub.url, device_id=DEVICE_ID, ca_file=cert) as pinned:
            assert eligibility(pinned, "birth-certificate", KHALED).eligibility is Eligibility.ELIGIBLE
    finally:
        stub.stop()


def test_a_missing_ca_file_is_refused_at_once(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        CentralClient("https://127.0.0.1:9", device_id=DEVICE_ID, ca_file=tmp_path / "nothing.pem")


@pytest.mark.parametrize("service, citizen, expected, fee", [
    ("marriage-certificate", OMAR, Eligibility.NOT_ELIGIBLE, Money.of(200000, "SYP")),     # Omar is single
    ("marriage-certificate", KHALED, Eligibility.ELIGIBLE, Money.of(200000, "SYP")),
    ("birth-certificate", {**OMAR, "card_number": "SY1000000099"}, Eligibility.NOT_ELIGIBLE, Money.of(150000, "SYP")),
    ("no-such-service", KHALED, Eligibility.NOT_ELIGIBLE, None),
])
def test_eligibility_is_asked_before_paying_and_names_centrals_fee(client, service, citizen, expected,
                                                                   fee) -> None:
    catalogue = client.fetch_catalogue()
    kiosk_fee = catalogue.get(service).fee if catalogue.get(service) else Money.of(100000, "SYP")
    answer = eligibility(client, service, citizen, fee=kiosk_fee, catalogue_version=catalogue.version)
    assert answer == EligibilityAnswer(expected, fee=fee, catalogue_version=catalogue.version)


def test_eligibility_with_central_down_is_unreachable(tmp_path) -> None:
    running = start_in_thread("sqlite:///%s" % (tmp_path / "c.sqlite3"))
    url = running.url
    running.stop()
    with CentralClient(url, device_id=DEVICE_ID, timeout_s=2) as gone:
        assert eligibility(gone, "birth-certificate", OMAR) == EligibilityAnswer(Eligibility.UNREACHABLE)


def test_a_fee_changed_at_central_after_the_catalogue_comes_back_from_the_pre_check(acquirer, tmp_path) -> None:
    """The kiosk read the catalogue; central's staff then raised a fee. The pre-check before the
    charge answers with the new fee and the new version, and a payment of the old fee buys nothing."""
    db_url = "sqlite:///%s" % (tmp_path / "central.sqlite3")
    with start_in_thread(db_url, acquirer_url=acquirer.url) as central, \
            CentralClient(central.url, device_id=DEVICE_ID) as client:
        shown = client.fetch_catalogue()
        old_fee = shown.get("family-statement").fee
        assert len(shown.version) == 16
        assert cli.main(["catalogue", "set-fee", "family-statement", "225000", "--db", db_url]) == 0
        answer = eligibility(client, "family-statement", KHALED, fee=old_fee, catalogue_version=shown.version)
        now = client.fetch_catalogue()
        assert answer == EligibilityAnswer(Eligibility.ELIGIBLE, fee=Money.of(225000, "SYP"),
                                           catalogue_version=now.version)
        assert now.version != shown.version and now.get("family-statement").fee == Money.of(225000, "SYP")
        old = submit(client, new_id(), KHALED, "family-statement", acquirer.pay(old_fee.amount_minor))
        assert old == SubmitResult(SubmitStatus.REJECTED, reason="payment_amount_mismatch")
        new = submit(client, new_id(), KHALED, "family-statement", acquirer.pay(225000))
        assert new.status is SubmitStatus.ISSUED


FEE = {"amount_minor": 150000, "currency": "SYP"}


def answered(body: object, status: str = "200 OK") -> EligibilityAnswer:
    """What check_eligibility makes of `body` served as central's answer to the pre-check."""
    stub = StubHttpServer(raw_reply(status, json.dumps(body).encode()))
    try:
        with CentralClient(stub.url, device_id=DEVICE_ID) as client:
            answer = eligibility(client, "birth-certificate", KHALED, fee=Money.of(150000, "SYP"),
                                 catalogue_version="v-kiosk")
        sent = json.loads(stub.requests[0])
        assert (sent["fee"], sent["catalogue_version"]) == (FEE, "v-kiosk")
        return answer
    finally:
        stub.stop()


def test_the_pre_check_sends_the_fee_and_the_version_and_reads_centrals() -> None:
    assert answered({"eligible": True, "fee": {"amount_minor": 175000, "currency": "SYP"},
                     "catalogue_version": "abc123"}) == EligibilityAnswer(
        Eligibility.ELIGIBLE, fee=Money.of(175000, "SYP"), catalogue_version="abc123")
    assert answered({"eligible": False, "reason": "not_married", "fee": FEE, "catalogue_version": "abc123"}) == \
        EligibilityAnswer(Eligibility.NOT_ELIGIBLE, fee=Money.of(150000, "SYP"), catalogue_version="abc123")
    # A service central does not know has no fee; a central without versions gives none.
    assert answered({"eligible": False, "reason": "unknown_service", "fee": None}) == EligibilityAnswer(
        Eligibility.NOT_ELIGIBLE)


GARBLED_ELIGIBILITY = {
    "eligible without a fee": {"eligible": True, "catalogue_version": "v1"},
    "eligible with a null fee": {"eligible": True, "fee": None, "catalogue_version": "v1"},
    "a fee as a number": {"eligible": True, "fee": 150000, "catalogue_version": "v1"},
    "an amount as text": {"eligible": True, "fee": {"amount_minor": "1500", "currency": "SYP"}},
    "an amount as a float": {"eligible": True, "fee": {"amount_minor": 1500.0, "currency": "SYP"}},
    "an amount that is true": {"eligible": True, "fee": {"amount_minor": True, "currency": "SYP"}},
    "a zero fee": {"eligible": True, "fee": {"amount_minor": 0, "currency": "SYP"}},
    "a fee without its currency": {"eligible": True, "fee": {"amount_minor": 150000}},
    "a currency the kiosk does not handle": {"eligible": True, "fee": {"amount_minor": 150000, "currency": "GBP"}},
    "a fee with more in it": {"eligible": True, "fee": {**FEE, "discount": 5}},
    "a version that is not text": {"eligible": True, "fee": FEE, "catalogue_version": 3},
    "a version with spaces": {"eligible": True, "fee": FEE, "catalogue_version": "v 1"},
    "a not-eligible answer with a garbled fee": {"eligible": False, "reason": "x", "fee": {"amount_minor": -1}},
    "eligible as text": {"eligible": "true", "fee": FEE},
    "a JSON list": [True],
}


@pytest.mark.parametrize("body", list(GARBLED_ELIGIBILITY.values()), ids=list(GARBLED_ELIGIBILITY))
def test_a_garbled_pre_check_answer_is_unreachable_so_nothing_is_charged(body, caplog) -> None:
    with caplog.at_level(logging.INFO):
        assert answered(body) == EligibilityAnswer(Eligibility.UNREACHABLE)
    assert "central.answer_garbled call=eligibility" in caplog.text
    assert KHALED["national_number"] not in caplog.text and KHALED["card_number"] not in caplog.text


def test_a_pre_check_central_fails_to_answer_is_unreachable() -> None:
    assert answered({"status": "error", "reason": "internal_error"},
                    "500 Internal Server Error") == EligibilityAnswer(Eligibility.UNREACHABLE)
    assert answered({"status": "invalid", "reason": "invalid_input"},
                    "400 Bad Request") == EligibilityAnswer(Eligibility.UNREACHABLE)


def test_the_catalogue_comes_with_its_version() -> None:
    catalogue = fetched({**GROUPED, "version": "0123456789abcdef"})
    assert catalogue.version == "0123456789abcdef"
    assert catalogue.offered_in("damascus").version == "0123456789abcdef"
    assert fetched(GROUPED).version == ""                      # a central from before versions


@pytest.mark.parametrize("version", [7, "with space", "x" * 65, ["v1"]])
def test_a_catalogue_with_a_garbled_version_is_unreachable(version) -> None:
    with pytest.raises(CentralUnreachable, match="unreadable"):
        fetched({**GROUPED, "version": version})
