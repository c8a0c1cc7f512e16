"""Claims at central: a request a kiosk took while it could not reach central is issued when it
arrives, its payment checked like any other; its document then waits for its citizen at any kiosk,
until a kiosk says it printed it (once); a voided one never waits. The kiosk's client sees the same."""

from __future__ import annotations

import pytest

from kiosk.central_client import CentralClient
from kiosk.messages import MessageKind
from tests.central.conftest import DEVICE_ID, new_id

pytestmark = pytest.mark.realstack   # central over HTTP (no card reader): see README


def claim(request_body, citizen: dict, service_code: str = "civil-status-extract", **overrides: object) -> dict:
    return request_body(citizen, service_code, claim=True, claim_reference=new_id("CLM"), **overrides)


def waiting(http, citizen: dict) -> list[dict]:
    answer = http.post("/claims/waiting", json={"device_id": "kiosk-other-02", "national_number":
                                                citizen["national_number"], "card_number": citizen["card_number"]})
    assert answer.status_code == 200
    return answer.json()["documents"]


def test_a_claim_is_issued_on_arrival_and_waits_for_its_citizen_at_any_kiosk(http, request_body, seed_citizens):
    omar, other = seed_citizens["Omar"], seed_citizens["Khaled"]
    before = [d["serial"] for d in waiting(http, omar)]
    issued = http.post("/requests", json=claim(request_body, omar))
    assert issued.status_code == 200 and issued.json()["status"] == "issued"
    document = issued.json()["document"]
    assert [d["serial"] for d in waiting(http, omar)] == before + [document["serial"]]
    assert document["serial"] not in [d["serial"] for d in waiting(http, other)]
    assert waiting(http, omar)[-1] == document                   # the very document, to print as a certificate


def test_a_collected_document_waits_no_more_and_collecting_again_answers_the_same(http, request_body, seed_citizens):
    citizen = seed_citizens["Rania"]
    document = http.post("/requests", json=claim(request_body, citizen)).json()["document"]
    first = http.post("/claims/%s/collected" % document["serial"], json={"device_id": "kiosk-other-02"})
    assert first.status_code == 200 and first.json()["status"] == "collected"
    assert first.json()["serial"] == document["serial"]
    assert document["serial"] not in [d["serial"] for d in waiting(http, citizen)]
    again = http.post("/claims/%s/collected" % document["serial"], json={"device_id": "kiosk-third-03"})
    assert again.json() == first.json()


def test_an_ordinary_request_is_not_a_claim_and_a_voided_claim_never_waits(http, request_body, seed_citizens):
    citizen = seed_citizens["Lina"]
    ordinary = http.post("/requests", json=request_body(citizen, "residence-certificate")).json()["document"]
    assert ordinary["serial"] not in [d["serial"] for d in waiting(http, citizen)]
    assert http.post("/claims/%s/collected" % ordinary["serial"], json={"device_id": DEVICE_ID}).status_code == 404
    body = claim(request_body, citizen, "birth-certificate")
    voided = http.post("/requests", json=body).json()["document"]
    http.post("/requests/%s/void" % body["request_id"])
    assert voided["serial"] not in [d["serial"] for d in waiting(http, citizen)]
    refused = http.post("/claims/%s/collected" % voided["serial"], json={"device_id": DEVICE_ID})
    assert refused.status_code == 422 and refused.json() == {"status": "rejected", "reason": "request_voided"}


def test_a_claim_whose_payment_does_not_hold_is_refused_and_never_waits(http, request_body, seed_citizens, pay):
    citizen = seed_citizens["Samir"]
    before = waiting(http, citizen)
    refused = http.post("/requests", json=claim(request_body, citizen, payment_id=pay(100)))
    assert refused.status_code == 422 and refused.json() == {"status": "rejected", "reason": "payment_amount_mismatch"}
    assert waiting(http, citizen) == before


def test_only_the_cards_holder_hears_of_documents_waiting(http, seed_citizens):
    omar = seed_citizens["Omar"]
    wrong_card = http.post("/claims/waiting", json={"device_id": DEVICE_ID, "national_number": omar["national_number"],
                                                    "card_number": "SY0000000000"})
    assert wrong_card.status_code == 422 and wrong_card.json() == {"status": "rejected", "reason": "card_mismatch"}
    assert omar["national_number"] not in wrong_card.text


def test_the_kiosks_client_finds_waiting_documents_and_confirms_their_collection(central, request_body,
                                                                                 seed_citizens):
    citizen = seed_citizens["Ahmad"]
    with CentralClient(central.url, device_id="kiosk-other-02", timeout_s=5) as client:
        before = client.waiting_documents(national_number=citizen["national_number"],
                                          card_number=citizen["card_number"])
        body = claim(request_body, citizen)
        answer = client.deliver(MessageKind.CERTIFICATE_REQUEST, {k: v for k, v in body.items() if k != "device_id"})
        serial = answer["document"]["serial"]
        found = client.waiting_documents(national_number=citizen["national_number"],
                                         card_number=citizen["card_number"])
        assert [d.serial for d in found] == [d.serial for d in before] + [serial]
        collected = client.deliver(MessageKind.CLAIM_COLLECTED, {"serial": serial, "request_id": body["request_id"]})
        assert collected["status"] == "collected" and collected["serial"] == serial
        assert client.waiting_documents(national_number=citizen["national_number"],
                                        card_number=citizen["card_number"]) == before
        assert client.waiting_documents(national_number=citizen["national_number"], card_number="SY0000000000") == ()
    with CentralClient("http://127.0.0.1:9", device_id="kiosk-other-02", timeout_s=1) as gone:
        assert gone.waiting_documents(national_number=citizen["national_number"],
                                      card_number=citizen["card_number"]) is None
