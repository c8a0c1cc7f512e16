"""A citizen's card in the kiosk's reader, proven to central (central/presence.py): what a kiosk,
or anyone holding a kiosk's key, might try to make central answer about a citizen whose card is
not there.

Each refusal tells the device only ``not_eligible``; central's log names the
precise reason; no answer and no log line holds the citizen's national
number, card number or name.
"""

from __future__ import annotations

import base64
import datetime
import logging
import os
from collections.abc import Iterable

import pytest
import requests

from central.db import Database, iso_utc, utc_now
from central.models import CardChallenge, IssuedDocumentRecord
from central.presence import CLAIM_CLOCK_SKEW, PRESENCE_MAX_AGE
from drivers.card_sim.card import CardProfile
from drivers.card_sim.issuer import IssuerKey
from kiosk.ports.card_reader import CardVerdict
from tests.central.cards import CardInReader
from tests.central.conftest import new_id
from tests.central.stub_http import ApiClient

SERVICE = "civil-status-extract"
REQUEST_REFUSED = {"status": "rejected", "reason": "not_eligible"}
PERSONAL = ("national_number", "card_number", "given_name_ar", "family_name_ar", "given_name_latin",
            "family_name_latin", "father_name_ar", "mother_name_ar")


@pytest.fixture(autouse=True)
def _central_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)


@pytest.fixture
def citizen(seed_citizens: dict[str, dict]) -> dict:
    return seed_citizens["Khaled"]


def eligibility(client: ApiClient, answer: dict, fees: dict[str, int], service_code: str = SERVICE
                ) -> requests.Response:
    return client.post("/requests/eligibility", json={
        **answer, "service_code": service_code, "catalogue_version": "",
        "fee": {"amount_minor": fees[service_code], "currency": "SYP"}})


def assert_refused_quietly(answers: Iterable[requests.Response], caplog: pytest.LogCaptureFixture, citizen: dict,
                           reason: str) -> None:
    """Each answer says only not_eligible; central's log says why; nothing personal anywhere."""
    for answer in answers:
        body = answer.json()
        if "eligible" in body:
            assert (answer.status_code, body["eligible"], body["reason"]) == (200, False, "not_eligible")
            assert set(body) == {"eligible", "reason", "fee", "catalogue_version"}       # no presence
        else:
            assert (answer.status_code, body) == (422, REQUEST_REFUSED)
    assert "presence.refused reason=%s " % reason in caplog.text, caplog.text
    for key in PERSONAL:
        value = citizen.get(key)
        if value:
            assert value not in caplog.text, key
            for answer in answers:
                assert value not in answer.text, key


def move_challenge(database: Database, challenge_id: str, **times: datetime.datetime) -> None:
    """Set the challenge row's times (`expires_at`, `created_at`), as if it had been made earlier."""
    with database.writing() as session:
        row = session.get(CardChallenge, challenge_id)
        for name, moment in times.items():
            setattr(row, name, iso_utc(moment))


# --- the challenge -----------------------------------------------------------------------------

def test_a_challenge_past_its_expiry_is_refused(http, card_of, fees, central_database, citizen, caplog) -> None:
    answer = card_of(citizen).answer(http)
    move_challenge(central_database, answer["challenge_id"], expires_at=utc_now() - datetime.timedelta(seconds=1))
    refused = eligibility(http, answer, fees)
    assert_refused_quietly([refused], caplog, citizen, "challenge_expired")


def test_a_challenge_is_answered_once(http, card_of, fees, citizen, caplog) -> None:
    answer = card_of(citizen).answer(http)
    assert eligibility(http, answer, fees).json()["eligible"] is True
    again = eligibility(http, answer, fees)
    waiting = http.post("/claims/waiting", json=answer)
    assert_refused_quietly([again, waiting], caplog, citizen, "challenge_used")


def test_a_card_signature_over_other_bytes_is_refused(http, card_of, fees, citizen, caplog) -> None:
    card = card_of(citizen)
    challenge = http.post("/challenges", json={}).json()
    assert len(base64.b64decode(challenge["challenge"])) == 32
    proof = card.sign(os.urandom(32)).to_json()           # signed, but not what central asked
    refused = eligibility(http, {"challenge_id": challenge["challenge_id"], "card_proof": proof}, fees)
    assert_refused_quietly([refused], caplog, citizen, "card_cloned")


def test_a_challenge_another_kiosk_fetched_is_refused_and_not_used_up(http, other_kiosk, card_of, fees, citizen,
                                                                      caplog) -> None:
    answer = card_of(citizen).answer(other_kiosk)
    refused = eligibility(http, answer, fees)
    assert_refused_quietly([refused], caplog, citizen, "unknown_challenge")
    assert eligibility(other_kiosk, answer, fees).json()["eligible"] is True     # still that kiosk's to use


def test_a_made_up_challenge_id_is_refused(http, card_of, fees, citizen, caplog) -> None:
    proof = card_of(citizen).sign(os.urandom(32)).to_json()
    refused = eligibility(http, {"challenge_id": "ch-" + "0" * 32, "card_proof": proof}, fees)
    assert_refused_quietly([refused], caplog, citizen, "unknown_challenge")


# --- the card ----------------------------------------------------------------------------------

@pytest.mark.parametrize("profile, verdict, reason", [
    (CardProfile.FORGED, CardVerdict.FORGED, "card_forged"),      # EF.ID altered after the issuer signed it
    (CardProfile.CLONED, CardVerdict.CLONED, "card_cloned"),      # EF.ID copied onto a chip with another key
    (CardProfile.EXPIRED, CardVerdict.EXPIRED, "card_expired"),
])
def test_a_card_the_kiosk_refuses_is_refused_by_central_too(http, card_of, fees, citizen, caplog, profile,
                                                            verdict, reason) -> None:
    """What a tampered kiosk would send central for a card its own checks refused."""
    card = card_of(citizen, profile=profile)
    assert card.verdict is verdict and card.kiosk_proof(os.urandom(32)) is None
    refused = [eligibility(http, card.answer(http), fees), http.post("/claims/waiting", json=card.answer(http))]
    assert_refused_quietly(refused, caplog, citizen, reason)


def test_a_card_run_out_by_the_registrys_date_is_refused(http, card_of, fees, seed_citizens, caplog) -> None:
    """A deceased citizen's card: its date of expiry, written on the card from the registry, has passed."""
    deceased = seed_citizens["محمود"]
    card = card_of(deceased)
    assert card.verdict is CardVerdict.EXPIRED
    refused = eligibility(http, card.answer(http), fees)
    assert_refused_quietly([refused], caplog, deceased, "card_expired")


def test_a_card_of_an_issuer_central_does_not_trust_is_refused(http, issuer, fees, citizen, caplog) -> None:
    stranger = IssuerKey.generate()
    card = CardInReader(citizen, stranger)             # a kiosk that trusts that issuer accepts it
    assert card.verdict is CardVerdict.VALID and stranger.key_id != issuer.key_id
    refused = eligibility(http, card.answer(http), fees)
    assert_refused_quietly([refused], caplog, citizen, "card_unknown_issuer")


def test_a_card_with_a_swapped_photo_is_the_kiosks_to_refuse(card_of, citizen) -> None:
    """Central never sees the photo: EF.ID carries only its digest (D1), and the kiosk compares the
    photo on the card with it before it shows the photo or asks central anything. So the refusal is
    the kiosk's own, and the card gives the kiosk no proof to send (the same check on the pyscard
    driver: tests/drivers/test_id_card_protocol.py::test_swapped_photo_is_forged_and_never_shown)."""
    card = card_of(citizen, profile=CardProfile.SWAPPED_PHOTO)
    assert card.verdict is CardVerdict.FORGED
    assert card.kiosk_proof(os.urandom(32)) is None


def test_a_card_the_registry_does_not_hold_is_refused(http, card_of, fees, citizen, caplog) -> None:
    unknown = {**citizen, "national_number": "09999999999"}
    refused = eligibility(http, card_of(unknown).answer(http), fees)
    assert_refused_quietly([refused], caplog, unknown, "unknown_citizen")


def test_a_card_the_registry_replaced_is_refused(http, card_of, fees, citizen, caplog) -> None:
    """An old card of the citizen (the registry holds a newer card number): lost, or stolen."""
    old = {**citizen, "card_number": "SY9999999999"}
    refused = [eligibility(http, card_of(old).answer(http), fees), http.post("/claims/waiting",
                                                                             json=card_of(old).answer(http))]
    assert_refused_quietly(refused, caplog, old, "card_mismatch")
    assert citizen["card_number"] not in caplog.text


# --- the presence, in a certificate request ------------------------------------------------------

def test_a_presence_pays_for_one_request_only(http, request_body, present, citizen, count_rows, caplog) -> None:
    presence_id = present(citizen, SERVICE)
    first = request_body(citizen, SERVICE, presence_id=presence_id)
    issued = http.post("/requests", json=first)
    assert issued.json()["status"] == "issued"
    assert http.post("/requests", json=first).content == issued.content      # its retry: the same answer
    documents = count_rows(IssuedDocumentRecord)
    second = http.post("/requests", json=request_body(citizen, SERVICE, presence_id=presence_id))
    assert_refused_quietly([second], caplog, citizen, "presence_used")
    assert count_rows(IssuedDocumentRecord) == documents


def test_a_presence_older_than_its_age_limit_is_refused(http, request_body, present, citizen, central_database,
                                                        count_rows, caplog) -> None:
    presence_id = present(citizen, SERVICE)
    move_challenge(central_database, presence_id,
                   created_at=utc_now() - PRESENCE_MAX_AGE - datetime.timedelta(minutes=1))
    documents = count_rows(IssuedDocumentRecord)
    refused = http.post("/requests", json=request_body(citizen, SERVICE, presence_id=presence_id))
    assert_refused_quietly([refused], caplog, citizen, "presence_too_old")
    assert count_rows(IssuedDocumentRecord) == documents


def test_a_presence_the_card_did_not_prove_is_refused(http, request_body, present, card_of, citizen,
                                                      caplog) -> None:
    """The pre-check refused the card (not_eligible); a request naming its challenge anyway."""
    presence_id = present({**citizen, "card_number": "SY9999999999"}, SERVICE)
    refused = http.post("/requests", json=request_body(citizen, SERVICE, presence_id=presence_id))
    assert_refused_quietly([refused], caplog, citizen, "unknown_presence")


# --- an offline claim: the card's signature over the claim itself --------------------------------

def test_a_claims_proof_is_taken_once(http, claim_body, citizen, count_rows) -> None:
    body = claim_body(citizen, SERVICE)
    issued = http.post("/requests", json=body)
    assert issued.json()["status"] == "issued"
    documents = count_rows(IssuedDocumentRecord)
    assert http.post("/requests", json=body).content == issued.content       # the same claim: the same answer
    assert count_rows(IssuedDocumentRecord) == documents


@pytest.mark.parametrize("taken, reason", [
    (-(PRESENCE_MAX_AGE + datetime.timedelta(minutes=1)), "claim_too_old"),
    (CLAIM_CLOCK_SKEW + datetime.timedelta(minutes=1), "claim_in_future"),
], ids=["older than the limit", "in the future"])
def test_a_claim_taken_outside_its_time_is_refused(http, claim_body, citizen, count_rows, caplog, taken,
                                                   reason) -> None:
    documents = count_rows(IssuedDocumentRecord)
    refused = http.post("/requests", json=claim_body(citizen, SERVICE, taken_at=iso_utc(utc_now() + taken)))
    assert_refused_quietly([refused], caplog, citizen, reason)
    assert count_rows(IssuedDocumentRecord) == documents


def test_a_claims_signature_moved_onto_another_claim_is_refused(http, claim_body, pay, fees, citizen, count_rows,
                                                                caplog) -> None:
    body = claim_body(citizen, SERVICE)
    assert http.post("/requests", json=body).json()["status"] == "issued"
    documents = count_rows(IssuedDocumentRecord)
    moved = [{**body, "request_id": new_id("req"), "payment_id": pay(fees[SERVICE])},
             {**body, "request_id": new_id("req"), "payment_id": pay(fees["family-statement"]),
              "service_code": "family-statement"}]
    refused = [http.post("/requests", json=other) for other in moved]
    assert_refused_quietly(refused, caplog, citizen, "card_cloned")
    assert count_rows(IssuedDocumentRecord) == documents


def test_a_central_challenge_is_no_claim_signature(http, card_of, request_body, citizen, caplog) -> None:
    """A card's answer to a pre-check's challenge, put in a claim: the claim's own bytes are not signed."""
    card: CardInReader = card_of(citizen)
    answer = card.answer(http)
    request_id = new_id("req")
    body = request_body(citizen, SERVICE, request_id=request_id, claim=True, claim_reference=new_id("CLM"),
                        taken_at=iso_utc(utc_now()), card_proof=answer["card_proof"])
    refused = http.post("/requests", json=body)
    assert_refused_quietly([refused], caplog, citizen, "card_cloned")


def waiting_serials(client: ApiClient, card: CardInReader) -> list[str]:
    answer = client.post("/claims/waiting", json=card.answer(client))
    assert answer.status_code == 200, answer.text
    return [document["serial"] for document in answer.json()["documents"]]


def test_a_claimed_document_waits_only_for_its_cards_holder(http, other_kiosk, claim_body, card_of, seed_citizens,
                                                            ) -> None:
    holder, other = seed_citizens["Mariam"], seed_citizens["Huda"]
    serial = http.post("/requests", json=claim_body(holder, SERVICE)).json()["document"]["serial"]
    assert serial in waiting_serials(other_kiosk, card_of(holder))          # at any kiosk
    assert serial not in waiting_serials(other_kiosk, card_of(other))
