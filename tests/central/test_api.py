"""The central API over real HTTP on loopback, against a real SQLite file.

The kiosk `http` signs every call; each request names the presence its
citizen's card proved in the pre-check (tests/central/conftest.py). What it
learns about a citizen it may not serve is only ``not_eligible``: the precise
reason is in central's log."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime

import pytest
from sqlalchemy import text

from central import signing
from central.db import Database
from central.models import CertificateRequest, IssuedDocumentRecord
from central.registry import import_citizens, parse_registry
from central.seeding import SEED_DIR
from central.server import start_in_thread
from kiosk.catalogue import Catalogue
from kiosk.documents import IssuedDocument
from tests.central.conftest import DEVICE_ID
from tests.central.stub_acquirer import StubAcquirer
from tests.central.stub_http import ApiClient

pytestmark = pytest.mark.realstack   # pcscd, the simulators, central or Xvfb: see README

NOT_ELIGIBLE = {"status": "rejected", "reason": "not_eligible"}

# The first six services, with the fees the journeys were written against.
FIRST_SIX = {"civil-status-extract": "1,500", "family-statement": "2,000", "non-conviction": "2,500",
             "residence-certificate": "1,000", "birth-certificate": "1,500", "marriage-certificate": "2,000"}


def field_values(document: IssuedDocument, label_en: str) -> list[str]:
    return [f.value for f in document.fields if f.label["en"] == label_en]


def test_health(http: ApiClient) -> None:
    assert http.get("/health").json() == {"status": "ok"}


def test_catalogue_serves_the_seed_with_categories_governorates_and_ranks(http: ApiClient) -> None:
    answer = http.get("/catalogue").json()
    seed = json.loads((SEED_DIR / "catalogue.json").read_text(encoding="utf-8"))
    version = answer.pop("version")
    answer.pop("issued_at"), answer.pop("signature")
    assert answer == seed
    assert len(version) == 16 and int(version, 16) >= 0
    assert http.get("/catalogue").json()["version"] == version        # the same catalogue, the same version
    catalogue = Catalogue.from_json(answer)
    assert len(catalogue.services) >= 35 and len(catalogue.categories) >= 6
    for service in catalogue.services:
        assert service.names["ar"] and service.names["en"] and catalogue.category(service.category) is not None
        assert service.fee.currency == "SYP" and service.fee.amount_minor > 0
    for code, fee in FIRST_SIX.items():
        assert catalogue.get(code).fee.major_text() == fee
    assert catalogue.most_asked()[0].code == "civil-status-extract"
    assert catalogue.get("displaced-statement").governorates == ("quneitra", "damascus", "rif-dimashq")


def test_catalogue_is_signed_with_its_version_and_issue_time_under_the_served_key(http: ApiClient) -> None:
    from datetime import datetime, timezone

    from kiosk.catalogue_supply import CatalogueRefused, Refusal, verify
    document = http.get("/catalogue").json()
    public_key = signing.load_public_key_pem(http.get("/signing-key").text)
    checked = verify(document, [public_key])
    assert checked.catalogue.version == document["version"] and checked.catalogue.get("non-conviction") is not None
    issued = datetime.fromisoformat(document["issued_at"])
    assert abs(issued.timestamp() - datetime.now(timezone.utc).timestamp()) < 600
    assert document["signature"]["alg"] == "Ed25519" and document["signature"]["key_id"] == \
        signing.key_id(public_key).hex()
    for altered in ({**document, "version": "0" * 16}, {**document, "issued_at": "2030-01-01T00:00:00Z"}):
        with pytest.raises(CatalogueRefused) as refused:
            verify(altered, [public_key])
        assert refused.value.reason is Refusal.BAD_SIGNATURE


# (service, citizen, language, {English label: text one of that label's values contains})
EXPECTED = [
    ("civil-status-extract", "Khaled", "ar", {
        "National number": "01020345671", "Given name": "خالد", "Family name": "الحداد",
        "Father's name": "محمود", "Mother's full name": "سلمى درويش", "Date of birth": "1975-03-14",
        "Place of birth": "دمشق", "Sex": "ذكر", "Marital status": "متزوج",
        "Civil registry entry": "دمشق - الميدان - 1245"}),
    ("family-statement", "Khaled", "ar", {
        "Head of family": "خالد الحداد", "Wife": "رانيا الصالح", "Son": "عمر الحداد", "Daughter": "لينا الحداد",
        "Civil registry entry": "دمشق - الميدان - 1245"}),
    ("non-conviction", "Tarek", "ar", {
        "Full name": "طارق الخطيب", "Conviction": "2019-11-04 — محكمة بداية الجزاء الأولى في حلب"}),
    ("non-conviction", "Omar", "en", {"Full name": "عمر الحداد", "Judicial record": "No convictions"}),
    ("residence-certificate", "Mariam", "ar", {
        "Full name": "مريم يوسف", "Address": "اللاذقية، الزراعة، شارع الجمهورية، بناء 21"}),
    ("birth-certificate", "Lina", "en", {
        "Full name": "لينا الحداد", "Father's name": "خالد", "Mother's full name": "رانيا الصالح",
        "Date of birth": "2005-12-23", "Place of birth": "دمشق", "Sex": "Female"}),
    ("marriage-certificate", "Yara", "ar", {
        "Husband": "أحمد النوري", "Wife": "يارا الخطيب", "Date of marriage": "2019-04-12",
        "Civil registry entry": "حماة - المدينة - 332"}),
    ("death-certificate", "Khaled", "en", {"Deceased": "محمود الحداد", "Date of death": "2015-12-03"}),
    ("divorce-certificate", "Mariam", "ar", {"Marital status": "مطلقة", "Date of divorce": "2016-09-14"}),
    ("driving-licence-statement", "Samir", "en", {
        "Driving licence number": "2204118", "Driving licence class": "Public transport"}),
    ("property-statement", "فادي", "ar", {"Real estate": "حمص - الحمراء — 3310/2 — شقة سكنية — 800/2400"}),
    ("displaced-statement", "Youssef", "ar", {"Displaced from": "الجولان - القنيطرة - عين زيوان"}),
]


@pytest.mark.parametrize("service_code, name, language, expected", EXPECTED,
                         ids=["%s-%s" % (e[0], e[1]) for e in EXPECTED])
def test_each_kind_is_issued_with_its_fields(http, request_body, seed_citizens, service_code, name, language,
                                              expected) -> None:
    citizen = seed_citizens[name]
    body = request_body(citizen, service_code, language=language)
    response = http.post("/requests", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "issued"
    document = IssuedDocument.from_json(response.json()["document"])
    assert (document.request_id, document.service_code) == (body["request_id"], service_code)
    names = {s["code"]: s["names"] for s in http.get("/catalogue").json()["services"]}
    assert document.title == names[service_code]
    for field in document.fields:
        assert set(field.label) == {"ar", "en"} and field.value
    for label, text in expected.items():
        assert any(text in value for value in field_values(document, label)), label

    # The QR payload verifies, names this document and its holder, signs its printed
    # fields, and hides the national number.
    verdict = http.get("/documents/verify", params={"payload": document.verification}).json()
    assert verdict["valid"] is True and verdict["status"] == "issued" and verdict["serial"] == document.serial
    assert citizen["national_number"] not in signing.base45_decode(document.verification[5:]).decode("latin-1")
    assert verdict["signed"]["holder_ar"] == "%s %s" % (citizen["given_name_ar"], citizen["family_name_ar"])
    assert verdict["signed"]["content_digest"] == document.content_digest().hex()
    assert verdict["signed"]["issued_at"] == document.issued_at.replace("Z", "+00:00")


def test_family_statement_of_a_single_child_is_the_parents_family(http, request_body, seed_citizens) -> None:
    body = request_body(seed_citizens["Lina"], "family-statement")
    document = IssuedDocument.from_json(http.post("/requests", json=body).json()["document"])
    assert "خالد الحداد" in field_values(document, "Head of family")[0]
    assert "رانيا الصالح" in field_values(document, "Wife")[0]
    assert [v.split(" — ")[0] for v in field_values(document, "Son") + field_values(document, "Daughter")] == [
        "عمر الحداد", "لينا الحداد"]


def test_retry_returns_the_same_document_and_issues_no_second_one(http, request_body, seed_citizens,
                                                                  count_rows) -> None:
    body = request_body(seed_citizens["Samir"], "civil-status-extract")
    first = http.post("/requests", json=body)
    documents = count_rows(IssuedDocumentRecord)
    again = http.post("/requests", json=body)
    assert again.status_code == 200
    assert again.content == first.content
    assert count_rows(IssuedDocumentRecord) == documents


def test_retries_racing_each_other_issue_one_document(http, request_body, seed_citizens, count_rows) -> None:
    body = request_body(seed_citizens["Huda"], "residence-certificate")
    documents = count_rows(IssuedDocumentRecord)
    answers: list[dict] = []
    go = threading.Barrier(6)

    def submit() -> None:
        go.wait()
        answers.append(http.post("/requests", json=body).json())

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({a["document"]["serial"] for a in answers}) == 1
    assert count_rows(IssuedDocumentRecord) == documents + 1


def test_same_request_id_with_another_body_is_a_conflict(http, request_body, seed_citizens) -> None:
    body = request_body(seed_citizens["Omar"], "birth-certificate")
    assert http.post("/requests", json=body).status_code == 200
    response = http.post("/requests", json={**body, "language": "en"})
    assert response.status_code == 409
    assert response.json() == {"status": "conflict", "reason": "request_id_reused"}


@pytest.mark.parametrize("name, service_code, card, overrides, reason, logged", [
    # A card the registry does not know, an old card of the citizen's: the pre-check's proof fails.
    ("Omar", "civil-status-extract", {"national_number": "09999999999"}, {}, "not_eligible", "unknown_citizen"),
    ("Omar", "civil-status-extract", {"card_number": "SY9999999999"}, {}, "not_eligible", "card_mismatch"),
    ("Omar", "passport", {}, {}, "unknown_service", "unknown_service"),
    ("Omar", "marriage-certificate", {}, {}, "not_eligible", "not_married"),
    ("Mariam", "marriage-certificate", {}, {}, "not_eligible", "not_married"),
    ("فادي", "family-statement", {}, {}, "not_eligible", "no_family"),
    ("Tarek", "good-conduct", {}, {}, "not_eligible", "has_convictions"),
    ("Omar", "driving-licence-statement", {}, {}, "not_eligible", "no_driving_licence"),
    ("محمود", "civil-status-extract", {}, {}, "not_eligible", "card_expired"),   # a deceased citizen's card ran out
    ("Omar", "civil-status-extract", {}, {"payment_id": "pay_doesnotexist"}, "payment_not_found",
     "payment_not_found"),
])
def test_refusals_carry_a_reason_code_and_central_logs_the_precise_one(http, request_body, present, seed_citizens,
                                                                       caplog, name, service_code, card, overrides,
                                                                       reason, logged) -> None:
    citizen = seed_citizens[name]
    caplog.set_level(logging.INFO)
    body = request_body(citizen, service_code, presence_id=present({**citizen, **card}, service_code), **overrides)
    response = http.post("/requests", json=body)
    assert response.status_code == 422
    assert response.json() == {"status": "rejected", "reason": reason}
    assert "reason=%s" % logged in caplog.text
    for private in (citizen["national_number"], citizen["card_number"], citizen["given_name_ar"]):
        assert private not in caplog.text and private not in response.text


def test_declined_payment_is_refused(http, request_body, pay, fees, seed_citizens) -> None:
    declined = pay(fees["civil-status-extract"], status="declined")
    response = http.post("/requests", json=request_body(seed_citizens["Omar"], "civil-status-extract",
                                                        payment_id=declined))
    assert response.json()["reason"] == "payment_not_approved"


def test_payment_of_the_wrong_amount_is_refused(http, request_body, pay, fees, seed_citizens) -> None:
    short = pay(fees["non-conviction"] - 100)
    response = http.post("/requests", json=request_body(seed_citizens["Omar"], "non-conviction", payment_id=short))
    assert response.json()["reason"] == "payment_amount_mismatch"


def test_payment_pays_for_one_document_only(http, request_body, seed_citizens) -> None:
    first = request_body(seed_citizens["Omar"], "civil-status-extract")
    assert http.post("/requests", json=first).status_code == 200
    second = request_body(seed_citizens["Lina"], "civil-status-extract", payment_id=first["payment_id"])
    response = http.post("/requests", json=second)
    assert response.json() == {"status": "rejected", "reason": "payment_already_used"}


def test_refunded_payment_is_refused(http, request_body, pay, acquirer, fees, seed_citizens) -> None:
    payment_id = pay(fees["birth-certificate"])
    acquirer.set_status(payment_id, "refunded")
    response = http.post("/requests", json=request_body(seed_citizens["Omar"], "birth-certificate",
                                                        payment_id=payment_id))
    assert response.json()["reason"] == "payment_refunded"


def test_refusal_is_kept_and_does_not_spend_the_payment(http, request_body, seed_citizens) -> None:
    refused = request_body(seed_citizens["Omar"], "marriage-certificate")
    assert http.post("/requests", json=refused).json()["reason"] == "not_eligible"
    assert http.post("/requests", json=refused).json()["reason"] == "not_eligible"
    # The same payment still pays for a certificate that applies (same fee).
    fine = request_body(seed_citizens["Khaled"], "marriage-certificate", payment_id=refused["payment_id"])
    assert http.post("/requests", json=fine).json()["status"] == "issued"


def test_expired_card_is_refused(http, request_body, central_db_url, seed_citizens, caplog) -> None:
    record = {**seed_citizens["فادي"], "national_number": "07000000001", "card_number": "SY7000000001",
              "card_issued": "2010-01-01", "card_expires": "2020-01-01"}
    database = Database(central_db_url)
    try:
        import_citizens(database, parse_registry({"citizens": [record]}))
    finally:
        database.dispose()
    caplog.set_level(logging.INFO)
    response = http.post("/requests", json=request_body(record, "birth-certificate"))
    assert response.json() == NOT_ELIGIBLE
    assert "presence.refused reason=card_expired" in caplog.text


@pytest.mark.parametrize("change", [
    {"presence_id": "has space"},
    {"presence_id": 1020345671},
    {"device_id": DEVICE_ID},                  # the device is the signature's, never the body's
    {"national_number": "01020345671"},        # and the citizen the card's
    {"card_number": "SY1000000001"},
    {"language": "fr"},
    {"request_id": "has space"},
    {"request_id": "x" * 65},
    {"unexpected": "key"},
])
def test_bad_input_is_a_400_that_names_the_field_not_the_value(http, request_body, seed_citizens,
                                                                change) -> None:
    body = {**request_body(seed_citizens["Khaled"], "civil-status-extract", payment_id="pay_x",
                           presence_id="ch-unused"), **change}
    response = http.post("/requests", json=body)
    assert response.status_code == 400
    answer = response.json()
    assert answer["status"] == "invalid" and answer["reason"] == "invalid_input"
    assert answer["errors"][0]["field"] in change
    for value in change.values():
        assert str(value) not in response.text


def test_body_that_is_not_json_is_a_400(http) -> None:
    response = http.post("/requests", data=b'{"request_id": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["reason"] == "invalid_input"


def test_unknown_path_is_a_404_with_a_reason(http) -> None:
    response = http.get("/nothing-here")
    assert (response.status_code, response.json()["reason"]) == (404, "not_found")


def test_void_voids_the_document_once(http, request_body, seed_citizens) -> None:
    body = request_body(seed_citizens["Ahmad"], "marriage-certificate")
    document = http.post("/requests", json=body).json()["document"]
    first = http.post("/requests/%s/void" % body["request_id"])
    assert first.status_code == 200
    assert first.json()["status"] == "voided" and first.json()["serial"] == document["serial"]
    assert http.post("/requests/%s/void" % body["request_id"]).json() == first.json()
    verdict = http.get("/documents/verify", params={"payload": document["verification"]})
    assert verdict.status_code == 200
    assert verdict.json()["valid"] is False and verdict.json()["status"] == "voided"
    assert verdict.json()["reason"] == "voided" and verdict.json()["voided_at"] == first.json()["voided_at"]


def test_request_replayed_after_its_void_answers_voided_never_the_document(http, request_body,
                                                                           seed_citizens) -> None:
    body = request_body(seed_citizens["Samir"], "birth-certificate")
    document = http.post("/requests", json=body).json()["document"]
    voided = http.post("/requests/%s/void" % body["request_id"]).json()
    for _ in range(2):
        again = http.post("/requests", json=body)
        assert again.status_code == 422
        assert again.json() == {"status": "voided", "reason": "request_voided", "request_id": body["request_id"],
                                "serial": document["serial"], "voided_at": voided["voided_at"]}
        assert document["verification"] not in again.text


def test_rejected_request_stays_rejected_after_a_void(http, request_body, seed_citizens) -> None:
    body = request_body(seed_citizens["Omar"], "marriage-certificate")
    assert http.post("/requests", json=body).json()["reason"] == "not_eligible"
    assert http.post("/requests/%s/void" % body["request_id"]).json()["serial"] is None
    assert http.post("/requests", json=body).json() == NOT_ELIGIBLE


def test_issue_time_is_signed_in_the_kiosks_time_zone(http, request_body, seed_citizens) -> None:
    from datetime import datetime

    body = request_body(seed_citizens["Lina"], "birth-certificate", time_zone="Asia/Damascus")
    document = http.post("/requests", json=body).json()["document"]
    signed = http.get("/documents/verify", params={"payload": document["verification"]}).json()["signed"]
    assert signed["issued_at"].endswith("+03:00")                     # the clock time printed on the paper
    assert datetime.fromisoformat(signed["issued_at"]) == datetime.fromisoformat(
        document["issued_at"].replace("Z", "+00:00"))                # the same moment
    unknown = request_body(seed_citizens["Lina"], "birth-certificate", time_zone="Mars/Olympus")
    assert http.post("/requests", json=unknown).status_code == 400


def test_place_is_signed_into_the_qr_code(http, request_body, seed_citizens) -> None:
    place = {"ar": "دمشق - المزة", "en": "Damascus - Mazzeh"}
    body = request_body(seed_citizens["Lina"], "birth-certificate", place=place)
    first = http.post("/requests", json=body)
    document = first.json()["document"]
    verdict = http.get("/documents/verify", params={"payload": document["verification"]}).json()
    assert verdict["signed"]["place"] == place
    assert http.post("/requests", json=body).content == first.content            # a retry is the same request
    assert http.post("/requests", json={**body, "place": {"ar": "حلب"}}).status_code == 409
    only_english = request_body(seed_citizens["Lina"], "birth-certificate", place={"en": "Damascus"})
    answer = http.post("/requests", json=only_english).json()
    payload = answer["document"]["verification"]
    assert http.get("/documents/verify", params={"payload": payload}).json()["signed"]["place"] == {
        "ar": "", "en": "Damascus"}


@pytest.mark.parametrize("place, field", [
    ({"ar": "دمشق\nحلب"}, "place.ar"),
    ({"en": "Damascus\x00"}, "place.en"),
    ({"en": "\u202eDamascus"}, "place.en"),           # a bidi override would reorder the printed line
    ({"ar": "د" * 41}, "place.ar"),
    ({"en": 5}, "place.en"),
    ({"fr": "Damas"}, "place.fr"),
    ("Damascus", "place"),
])
def test_a_bad_place_is_a_400_that_names_the_field(http, request_body, seed_citizens, place, field) -> None:
    body = request_body(seed_citizens["Lina"], "birth-certificate", payment_id="pay_x", place=place)
    response = http.post("/requests", json=body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


def test_void_before_the_request_arrives_refuses_it_later(http, request_body, seed_citizens, count_rows) -> None:
    body = request_body(seed_citizens["Rania"], "civil-status-extract")
    assert http.post("/requests/%s/void" % body["request_id"]).json()["serial"] is None
    documents = count_rows(IssuedDocumentRecord)
    response = http.post("/requests", json=body)
    assert response.json() == {"status": "rejected", "reason": "request_voided"}
    assert count_rows(IssuedDocumentRecord) == documents


def test_verify_refuses_a_tampered_payload(http, request_body, seed_citizens) -> None:
    document = http.post("/requests", json=request_body(seed_citizens["Lina"], "residence-certificate")).json()[
        "document"]
    signed = bytearray(signing.base45_decode(document["verification"][5:]))
    signed[signed.index(b"residence") + 1] ^= 0x01                 # the kind, one letter
    answer = http.get("/documents/verify", params={"payload": "KSK2:" + signing.base45_encode(bytes(signed))})
    assert answer.status_code == 422
    assert answer.json() == {"status": "invalid", "valid": False, "reason": "bad_signature"}
    assert http.get("/documents/verify", params={"payload": "hello"}).json()["reason"] == "not_ours"
    assert http.get("/documents/verify", params={"payload": "KSK2:A"}).json()["reason"] == "malformed"


def test_verify_refuses_a_payload_signed_by_another_key(http, request_body, seed_citizens) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    document = IssuedDocument.from_json(http.post("/requests", json=request_body(
        seed_citizens["Lina"], "residence-certificate")).json()["document"])
    forged = signing.sign(Ed25519PrivateKey.generate(), serial=document.serial, kind=document.service_code,
                          issued_at=datetime.fromisoformat(document.issued_at), place=None, holder_ar="x",
                          content_digest=document.content_digest())
    assert http.get("/documents/verify", params={"payload": forged}).json()["reason"] == "unknown_key"


def test_signing_key_is_served_as_pem_and_verifies_documents(http, request_body, seed_citizens) -> None:
    public_key = signing.load_public_key_pem(http.get("/signing-key").text)
    document = http.post("/requests", json=request_body(seed_citizens["Yara"], "birth-certificate")).json()[
        "document"]
    assert signing.verify(document["verification"], [public_key]).serial == document["serial"]


def test_logs_carry_no_personal_data(http, request_body, seed_citizens, caplog, count_rows) -> None:
    citizen = seed_citizens["Tarek"]
    with caplog.at_level(logging.DEBUG):
        body = request_body(citizen, "non-conviction")
        http.post("/requests", json=body)
        http.post("/requests", json=body)
        http.post("/requests", json={**body, "card_number": "SY1231231231"})
        http.post("/requests", json={**body, "national_number": "bad"})
        http.post("/requests/%s/void" % body["request_id"])
        http.post("/requests", json=request_body(citizen, "good-conduct"))                 # refused: convictions
        http.post("/requests", json=request_body({**citizen, "card_number": "SY1231231231"}, "non-conviction"))
    assert "request.issued" in caplog.text and "request.replayed" in caplog.text
    assert "reason=has_convictions" in caplog.text and "reason=card_mismatch" in caplog.text
    for secret in (citizen["national_number"], citizen["card_number"], "SY1231231231", citizen["given_name_ar"],
                   citizen["family_name_ar"], citizen["given_name_latin"]):
        assert secret not in caplog.text
    assert count_rows(CertificateRequest) > 0


def test_database_failure_is_a_500_with_a_reason_and_no_personal_data(fresh_db_url, own_central, present,
                                                                      seed_citizens, caplog) -> None:
    with StubAcquirer() as acquirer, own_central(fresh_db_url, acquirer_url=acquirer.url) as (_broken, http):
        presence_id = present(seed_citizens["Khaled"], "non-conviction", client=http)
        database = Database(fresh_db_url)
        try:
            with database.writing() as session:
                session.execute(text("DROP TABLE criminal_records"))
        finally:
            database.dispose()
        payment_id = acquirer.pay(250000)
        with caplog.at_level(logging.INFO):
            response = http.post("/requests", json={
                "request_id": "r-1", "service_code": "non-conviction", "presence_id": presence_id,
                "language": "ar", "payment_id": payment_id})
    assert response.status_code == 500
    assert response.json() == {"status": "error", "reason": "internal_error"}
    assert "http.failed" in caplog.text and "01020345671" not in caplog.text and "Traceback" not in caplog.text


def test_start_on_a_port_in_use_fails_at_once(central) -> None:
    with pytest.raises(OSError):
        start_in_thread("sqlite://", port=central.port)


def test_eligibility_answers_with_centrals_fee_without_storing_anything(http: ApiClient, card_of, seed_citizens,
                                                                         count_rows, caplog) -> None:
    before = count_rows(CertificateRequest)
    catalogue = http.get("/catalogue").json()
    fee = {"amount_minor": 200000, "currency": "SYP"}                 # the marriage certificate's, as seeded
    body = {"service_code": "marriage-certificate", "fee": fee, "catalogue_version": catalogue["version"]}
    caplog.set_level(logging.INFO)
    omar = http.post("/requests/eligibility", json={**body, **card_of(seed_citizens["Omar"]).answer(http)}).json()
    assert omar == {"eligible": False, "reason": "not_eligible", "fee": fee,
                    "catalogue_version": catalogue["version"]}
    assert "request.not_eligible reason=not_married" in caplog.text
    khaled = card_of(seed_citizens["Khaled"])
    answer = khaled.answer(http)
    assert http.post("/requests/eligibility", json={**body, **answer}).json() == {
        "eligible": True, "fee": fee, "catalogue_version": catalogue["version"], "presence_id": answer["challenge_id"]}
    # A kiosk with an old catalogue and another fee in mind is told central's fee.
    stale = {**body, "fee": {"amount_minor": 150000, "currency": "SYP"}, "catalogue_version": "0123456789abcdef"}
    assert http.post("/requests/eligibility", json={**stale, **khaled.answer(http)}).json()["fee"] == fee
    unknown = http.post("/requests/eligibility", json={**body, **khaled.answer(http),
                                                       "service_code": "passport"}).json()
    assert unknown == {"eligible": False, "reason": "not_eligible", "fee": None,
                       "catalogue_version": catalogue["version"]}
    assert "request.not_eligible reason=unknown_service" in caplog.text
    assert count_rows(CertificateRequest) == before


@pytest.mark.parametrize("change", [
    {"fee": None}, {"fee": {"amount_minor": "1500", "currency": "SYP"}}, {"fee": {"amount_minor": 1500.0,
                                                                               "currency": "SYP"}},
    {"fee": {"amount_minor": 0, "currency": "SYP"}}, {"fee": {"amount_minor": 150000, "currency": "GBP"}},
    {"catalogue_version": "has space"}, {"catalogue_version": 5},
])
def test_eligibility_with_a_bad_fee_or_version_is_a_400(http: ApiClient, change) -> None:
    proof = {"ef_id": "AAAA", "ef_id_sig": "AAAA", "signature": "AAAA"}     # never looked at: the body is refused
    body = {"challenge_id": "ch-unused", "card_proof": proof, "service_code": "birth-certificate",
            "fee": {"amount_minor": 150000, "currency": "SYP"}, "catalogue_version": "", **change}
    response = http.post("/requests/eligibility", json=body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"].split(".")[0] == next(iter(change))
    without = {key: value for key, value in body.items() if key not in change}
    assert http.post("/requests/eligibility", json=without).status_code == 400   # both are required
