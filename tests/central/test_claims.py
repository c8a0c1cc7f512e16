"""Claims at central: a request a kiosk took while it could not reach central is issued when it
arrives, its payment checked like any other; its document then waits for its citizen at any kiosk,
until a kiosk says it printed it (once); a voided one never waits. The kiosk's client sees the same.

A claim carries its card's signature over the claim itself; a kiosk asking what waits for a
citizen shows central that citizen's card, signing central's challenge (central/presence.py)."""

from __future__ import annotations

import logging

import pytest

from kiosk.central_client import CentralClient
from kiosk.messages import MessageKind
from kiosk.ports.central import Challenge
from tests.central.conftest import DEVICE_ID

pytestmark = pytest.mark.realstack   # central over HTTP (no card reader): see README


def waiting(client, card) -> list[dict]:
    """What waits for the holder of `card`, asked by the kiosk `client` with the card in its reader."""
    answer = client.post("/claims/waiting", json=card.answer(client))
    assert answer.status_code == 200, answer.text
    return answer.json()["documents"]


def test_a_claim_is_issued_on_arrival_and_waits_for_its_citizen_at_any_kiosk(http, other_kiosk, claim_body, card_of,
                                                                             seed_citizens):
    omar, other = seed_citizens["Omar"], seed_citizens["Khaled"]
    before = [d["serial"] for d in waiting(other_kiosk, card_of(omar))]
    issued = http.post("/requests", json=claim_body(omar))
    assert issued.status_code == 200 and issued.json()["status"] == "issued"
    document = issued.json()["document"]
    assert [d["serial"] for d in waiting(other_kiosk, card_of(omar))] == before + [document["serial"]]
    assert document["serial"] not in [d["serial"] for d in waiting(other_kiosk, card_of(other))]
    assert waiting(other_kiosk, card_of(omar))[-1] == document    # the very document, to print as a certificate


def test_a_collected_document_waits_no_more_and_collecting_again_answers_the_same(http, other_kiosk, claim_body,
                                                                                  card_of, seed_citizens):
    citizen = seed_citizens["Rania"]
    document = http.post("/requests", json=claim_body(citizen)).json()["document"]
    first = other_kiosk.post("/claims/%s/collected" % document["serial"])
    assert first.status_code == 200 and first.json()["status"] == "collected"
    assert first.json()["serial"] == document["serial"]
    assert document["serial"] not in [d["serial"] for d in waiting(http, card_of(citizen))]
    again = http.post("/claims/%s/collected" % document["serial"])
    assert again.json() == first.json()


def test_an_ordinary_request_is_not_a_claim_and_a_voided_claim_never_waits(http, request_body, claim_body, card_of,
                                                                           seed_citizens):
    citizen = seed_citizens["Lina"]
    ordinary = http.post("/requests", json=request_body(citizen, "residence-certificate")).json()["document"]
    assert ordinary["serial"] not in [d["serial"] for d in waiting(http, card_of(citizen))]
    assert http.post("/claims/%s/collected" % ordinary["serial"]).status_code == 404
    body = claim_body(citizen, "birth-certificate")
    voided = http.post("/requests", json=body).json()["document"]
    http.post("/requests/%s/void" % body["request_id"])
    assert voided["serial"] not in [d["serial"] for d in waiting(http, card_of(citizen))]
    refused = http.post("/claims/%s/collected" % voided["serial"])
    assert refused.status_code == 422 and refused.json() == {"status": "rejected", "reason": "request_voided"}


def test_a_claim_whose_payment_does_not_hold_is_refused_and_never_waits(http, claim_body, card_of, seed_citizens,
                                                                        pay):
    citizen = seed_citizens["Samir"]
    before = waiting(http, card_of(citizen))
    refused = http.post("/requests", json=claim_body(citizen, payment_id=pay(100)))
    assert refused.status_code == 422 and refused.json() == {"status": "rejected", "reason": "payment_amount_mismatch"}
    assert waiting(http, card_of(citizen)) == before


def test_only_the_cards_holder_hears_of_documents_waiting(http, card_of, seed_citizens, caplog):
    omar = seed_citizens["Omar"]
    caplog.set_level(logging.INFO)
    wrong_card = http.post("/claims/waiting", json=card_of({**omar, "card_number": "SY0000000000"}).answer(http))
    assert wrong_card.status_code == 422 and wrong_card.json() == {"status": "rejected", "reason": "not_eligible"}
    assert "presence.refused reason=card_mismatch" in caplog.text
    for private in (omar["national_number"], omar["card_number"], "SY0000000000"):
        assert private not in wrong_card.text and private not in caplog.text


def test_the_kiosks_client_finds_waiting_documents_and_confirms_their_collection(central, device_key, claim_body,
                                                                                 card_of, seed_citizens):
    citizen = seed_citizens["Ahmad"]

    def waiting_for(client: CentralClient, card) -> tuple | None:
        challenge = client.challenge()
        assert challenge is not None
        return client.waiting_documents(challenge=challenge, proof=card.sign(challenge.nonce))

    with CentralClient(central.url, device_id=DEVICE_ID, device_key=device_key, timeout_s=5) as client:
        before = waiting_for(client, card_of(citizen))
        body = claim_body(citizen)
        answer = client.deliver(MessageKind.CERTIFICATE_REQUEST, body)
        serial = answer["document"]["serial"]
        found = waiting_for(client, card_of(citizen))
        assert [d.serial for d in found] == [d.serial for d in before] + [serial]
        collected = client.deliver(MessageKind.CLAIM_COLLECTED, {"serial": serial, "request_id": body["request_id"]})
        assert collected["status"] == "collected" and collected["serial"] == serial
        assert waiting_for(client, card_of(citizen)) == before
        assert waiting_for(client, card_of({**citizen, "card_number": "SY0000000000"})) == ()
    with CentralClient("http://127.0.0.1:9", device_id=DEVICE_ID, device_key=device_key, timeout_s=1) as gone:
        challenge = Challenge("ch-" + "0" * 32, bytes(32))
        assert gone.challenge() is None
        assert gone.waiting_documents(challenge=challenge, proof=card_of(citizen).sign(challenge.nonce)) is None
