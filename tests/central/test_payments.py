"""Central checks each request's payment at the acquirer (a stub on loopback) before it issues:
every refusal, the answer it gives when it cannot tell now, and the kiosk's outbox retrying it."""

from __future__ import annotations

import logging
import socket
import sqlite3

import pytest

from central import signing
from central.db import sqlite_path
from central.models import CertificateRequest
from kiosk.central_client import CentralClient
from kiosk.messages import MessageKind
from tests.central.conftest import DEVICE_ID, new_id
from tests.central.stub_acquirer import StubAcquirer
from tests.central.stub_http import raw_reply

pytestmark = pytest.mark.realstack   # pcscd, the simulators, central or Xvfb: see README

UNVERIFIABLE = {"status": "error", "reason": "payment_unverifiable"}


def test_a_payment_the_acquirer_approved_for_the_fee_issues_the_document(http, acquirer, request_body, fees,
                                                                        seed_citizens) -> None:
    payment_id = acquirer.pay(fees["birth-certificate"])
    response = http.post("/requests", json=request_body(seed_citizens["Lina"], "birth-certificate",
                                                        payment_id=payment_id))
    assert response.status_code == 200 and response.json()["status"] == "issued"
    assert acquirer.asked[-1] == payment_id


@pytest.mark.parametrize("status, amount_change, currency, reason", [
    ("declined", 0, "SYP", "payment_not_approved"),
    ("reversed", 0, "SYP", "payment_refunded"),
    ("refunded", 0, "SYP", "payment_refunded"),
    ("approved", -100, "SYP", "payment_amount_mismatch"),
    ("approved", +100, "SYP", "payment_amount_mismatch"),
    ("approved", 0, "USD", "payment_amount_mismatch"),
    ("approved", 0, "GBP", "payment_amount_mismatch"),      # a currency the kiosk does not even handle
])
def test_a_payment_that_does_not_pay_for_the_document_is_refused_for_good(http, acquirer, request_body, fees,
                                                                          seed_citizens, status, amount_change,
                                                                          currency, reason) -> None:
    payment_id = acquirer.pay(fees["civil-status-extract"] + amount_change, currency, status=status)
    body = request_body(seed_citizens["Omar"], "civil-status-extract", payment_id=payment_id)
    response = http.post("/requests", json=body)
    assert (response.status_code, response.json()) == (422, {"status": "rejected", "reason": reason})
    assert http.post("/requests", json=body).json()["reason"] == reason       # a retry: the same answer


def test_a_payment_the_acquirer_never_saw_is_refused_and_stays_refused(http, acquirer, request_body,
                                                                       seed_citizens) -> None:
    body = request_body(seed_citizens["Omar"], "civil-status-extract", payment_id="pay_never_made")
    assert http.post("/requests", json=body).json() == {"status": "rejected", "reason": "payment_not_found"}
    asked = len(acquirer.asked)
    assert http.post("/requests", json=body).json()["reason"] == "payment_not_found"
    assert len(acquirer.asked) == asked              # answered from central's store, not asked again


def test_a_refusal_on_the_record_does_not_ask_the_acquirer(http, acquirer, request_body, seed_citizens,
                                                           caplog) -> None:
    acquirer.answer_badly(None)                      # it could not answer anyway
    body = request_body(seed_citizens["Omar"], "marriage-certificate")
    caplog.set_level(logging.INFO)
    assert http.post("/requests", json=body).json() == {"status": "rejected", "reason": "not_eligible"}
    assert "request.rejected request_id=%s reason=not_married" % body["request_id"] in caplog.text
    assert body["payment_id"] not in acquirer.asked


BAD_ANSWERS = {
    "no answer": None,
    "a 500": raw_reply("500 Internal Server Error", b"oops", content_type="text/plain"),
    "a 404 page from a wrong address": raw_reply("404 Not Found", b"<h1>Not Found</h1>", content_type="text/html"),
    "not JSON": raw_reply("200 OK", b"<html>login</html>", content_type="text/html"),
    "garbage JSON": raw_reply("200 OK", b'{"status": "approved"}'),
}


@pytest.mark.parametrize("reply", list(BAD_ANSWERS.values()), ids=list(BAD_ANSWERS))
def test_an_acquirer_without_a_usable_answer_is_a_503_stored_nowhere_and_a_retry_issues(
        http, acquirer, request_body, fees, seed_citizens, count_rows, reply) -> None:
    body = request_body(seed_citizens["Khaled"], "civil-status-extract")
    requests_before = count_rows(CertificateRequest)
    acquirer.answer_badly(reply)
    response = http.post("/requests", json=body)
    assert (response.status_code, response.json()) == (503, UNVERIFIABLE)
    assert count_rows(CertificateRequest) == requests_before
    acquirer.answer_well()
    assert http.post("/requests", json=body).json()["status"] == "issued"


def test_the_kiosks_outbox_keeps_a_request_central_cannot_check_yet(central, device_key, acquirer, request_body,
                                                                    seed_citizens) -> None:
    """The kiosk's client takes the 503 as "not now" (None), never as a final refusal."""
    message = request_body(seed_citizens["Khaled"], "birth-certificate")
    with CentralClient(central.url, device_id=DEVICE_ID, device_key=device_key) as client:
        acquirer.answer_badly(raw_reply("503 Service Unavailable", b'{"reason": "busy"}'))
        assert client.deliver(MessageKind.CERTIFICATE_REQUEST, message) is None
        acquirer.answer_well()
        assert client.deliver(MessageKind.CERTIFICATE_REQUEST, message)["status"] == "issued"


def test_a_request_already_answered_is_answered_again_without_the_acquirer(http, acquirer, request_body,
                                                                           seed_citizens) -> None:
    body = request_body(seed_citizens["Samir"], "civil-status-extract")
    first = http.post("/requests", json=body)
    acquirer.answer_badly(None)
    again = http.post("/requests", json=body)
    assert again.status_code == 200 and again.content == first.content


def test_an_acquirer_that_is_not_there_is_a_503(fresh_db_url, own_central, request_body, present,
                                                 seed_citizens) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]           # nothing listens there once it is closed
    lina = seed_citizens["Lina"]
    with own_central(fresh_db_url, acquirer_url="http://127.0.0.1:%d" % port) as (_central, api):
        body = request_body(lina, "birth-certificate", presence_id=present(lina, "birth-certificate", client=api))
        response = api.post("/requests", json=body)
    assert (response.status_code, response.json()) == (503, UNVERIFIABLE)


def test_central_without_an_acquirer_says_so_and_issues_nothing(fresh_db_url, own_central, present, card_of,
                                                                 seed_citizens, caplog) -> None:
    khaled, omar = seed_citizens["Khaled"], seed_citizens["Omar"]
    with caplog.at_level(logging.INFO), own_central(fresh_db_url) as (_central, api):
        assert any(r.levelno == logging.ERROR and r.getMessage().startswith("central.no_acquirer")
                   for r in caplog.records)
        body = {"request_id": new_id("req"), "service_code": "civil-status-extract", "language": "ar",
                "payment_id": "pay_1", "presence_id": present(khaled, "civil-status-extract", client=api)}
        response = api.post("/requests", json=body)
        assert (response.status_code, response.json()) == (503, UNVERIFIABLE)
        # What needs no payment still works: a refusal on the record, the pre-check.
        single = api.post("/requests", json={**body, "request_id": new_id("req"),
                                             "service_code": "marriage-certificate",
                                             "presence_id": present(omar, "marriage-certificate", client=api)})
        assert single.json() == {"status": "rejected", "reason": "not_eligible"}
        assert api.post("/requests/eligibility", json={
            **card_of(khaled).answer(api), "service_code": "civil-status-extract",
            "fee": {"amount_minor": 150000, "currency": "SYP"}, "catalogue_version": ""}).json()["eligible"] is True
    assert "central.no_acquirer" in caplog.text and khaled["national_number"] not in caplog.text


def test_serve_refuses_a_pinned_acquirer_ca_that_is_not_there(tmp_path, capsys) -> None:
    from central import cli

    code = cli.main(["serve", "--db", "sqlite:///%s" % (tmp_path / "c.sqlite3"), "--acquirer",
                     "https://127.0.0.1:9", "--acquirer-ca", str(tmp_path / "nothing.pem")])
    assert code == 2 and "nothing.pem does not exist" in capsys.readouterr().err
    assert not (tmp_path / "c.sqlite3").exists()          # stopped before anything was started


def test_a_fee_changed_at_central_refuses_a_payment_of_the_old_fee(fresh_db_url, own_central, present,
                                                                    seed_citizens) -> None:
    from central import cli

    db_url = fresh_db_url
    omar = seed_citizens["Omar"]
    with StubAcquirer() as acquirer, own_central(db_url, acquirer_url=acquirer.url) as (_central, api):
        assert cli.main(["catalogue", "set-fee", "birth-certificate", "175000", "--db", db_url]) == 0

        def request(amount_minor: int) -> dict:
            return api.post("/requests", json={
                "request_id": new_id("req"), "service_code": "birth-certificate", "language": "ar",
                "payment_id": acquirer.pay(amount_minor),
                "presence_id": present(omar, "birth-certificate", client=api)}).json()

        assert request(150000) == {"status": "rejected", "reason": "payment_amount_mismatch"}
        assert request(175000)["status"] == "issued"


@pytest.mark.sqlite_only(reason="central ran on SQLite only in the gateway days; SQLite's table is rebuilt")
def test_a_database_from_the_gateway_days_still_issues(fresh_db_url, own_central, request_body, present,
                                                      seed_citizens) -> None:
    """Its issued documents named a gateway charge; they are kept, and new payments are the acquirer's."""
    path = sqlite_path(fresh_db_url)
    with sqlite3.connect(path) as old:
        old.executescript("""
            CREATE TABLE gateway_charges (payment_id VARCHAR(40) PRIMARY KEY);
            CREATE TABLE certificate_requests (request_id VARCHAR(64) PRIMARY KEY, body_digest VARCHAR(64),
                device_id VARCHAR(64), status VARCHAR(10) NOT NULL, http_status INTEGER NOT NULL,
                answer TEXT NOT NULL, created_at VARCHAR(20) NOT NULL, voided_at VARCHAR(20));
            CREATE TABLE issued_documents (serial VARCHAR(32) PRIMARY KEY,
                request_id VARCHAR(64) NOT NULL UNIQUE REFERENCES certificate_requests (request_id),
                service_code VARCHAR(64) NOT NULL, national_number VARCHAR(11) NOT NULL,
                payment_id VARCHAR(40) NOT NULL UNIQUE REFERENCES gateway_charges (payment_id),
                issued_at VARCHAR(20) NOT NULL, document TEXT NOT NULL, voided_at VARCHAR(20));
            INSERT INTO gateway_charges VALUES ('pay_old');
            INSERT INTO certificate_requests VALUES ('req-old', 'x', 'k', 'issued', 200, '{}', '2025-01-01T00:00:00Z',
                NULL);
            INSERT INTO issued_documents VALUES ('2025-OLDSERIA', 'req-old', 'birth-certificate', '01020345671',
                'pay_old', '2025-01-01T00:00:00Z', '{}', NULL);
        """)
    signing.create_key(signing.default_key_path(path))     # the key it signed them with, kept beside it
    lina = seed_citizens["Lina"]
    with StubAcquirer() as acquirer, own_central(fresh_db_url, acquirer_url=acquirer.url) as (_central, api):
        body = request_body(lina, "birth-certificate", payment_id=acquirer.pay(150000),
                            presence_id=present(lina, "birth-certificate", client=api))
        assert api.post("/requests", json=body).json()["status"] == "issued"
        # The old document's payment still paid for it: it pays for no other.
        acquirer.pay(150000, payment_id="pay_old")
        reused = request_body(lina, "birth-certificate", payment_id="pay_old",
                              presence_id=present(lina, "birth-certificate", client=api))
        assert api.post("/requests", json=reused).json() == {"status": "rejected", "reason": "payment_already_used"}
    with sqlite3.connect(path) as migrated:
        assert migrated.execute("SELECT serial, payment_id FROM issued_documents WHERE request_id = 'req-old'"
                                ).fetchall() == [("2025-OLDSERIA", "pay_old")]
        assert migrated.execute("SELECT count(*) FROM issued_documents").fetchone() == (2,)
        links = {row[2] for row in migrated.execute("PRAGMA foreign_key_list(issued_documents)")}
        assert links == {"certificate_requests", "citizens"}
