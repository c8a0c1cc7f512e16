"""Document signing: the QR payload verifies, names its key, resists tampering, and stays small."""

from __future__ import annotations

import hashlib
import json
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import qrcode
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from central import signing
from central.certificates import KINDS
from kiosk.wire import PLACE_MAX_LENGTH as PLACE_MAX_CHARS
from kiosk.documents import DocumentField, IssuedDocument, content_digest

DAMASCUS = timezone(timedelta(hours=3))
QR_ALPHANUMERIC = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
FIELDS = (DocumentField({"ar": "الرقم الوطني", "en": "National number"}, "01020345671"),
          DocumentField({"ar": "الاسم", "en": "Given name"}, "خالد"))
TITLE = {"ar": "إخراج قيد فردي", "en": "Civil status extract"}


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def payload(key: Ed25519PrivateKey, **overrides: object) -> str:
    values = {"serial": "2026-ABCDEFGH", "kind": "civil-status-extract",
              "issued_at": datetime(2026, 1, 31, 12, 15, 7, tzinfo=DAMASCUS),
              "place": {"ar": "دمشق - المزة", "en": "Damascus - Mazzeh"}, "holder_ar": "خالد الحداد",
              "content_digest": content_digest(TITLE, FIELDS)}
    values.update(overrides)
    return signing.sign(key, **values)


def test_signed_fields_verify_and_keep_the_issue_time_with_its_offset(key) -> None:
    signed = signing.verify(payload(key), [key.public_key()])
    assert (signed.serial, signed.kind, signed.place_ar, signed.place_en, signed.holder_ar) == (
        "2026-ABCDEFGH", "civil-status-extract", "دمشق - المزة", "Damascus - Mazzeh", "خالد الحداد")
    assert signed.issued_iso() == "2026-01-31T12:15:07+03:00"
    assert signed.content_digest == content_digest(TITLE, FIELDS)
    assert signed.key_id == signing.key_id(key.public_key())
    assert "خالد" not in repr(signed)


def test_key_id_is_the_start_of_the_sha256_of_the_raw_public_key(key) -> None:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert signing.key_id(key.public_key()) == hashlib.sha256(raw).digest()[:8]


def test_payload_is_qr_alphanumeric_and_holds_no_national_number(key) -> None:
    text = payload(key)
    assert text.startswith("KSK2:") and set(text) <= QR_ALPHANUMERIC
    assert b"01020345671" not in signing.base45_decode(text[5:])


def test_no_place_is_signed_as_empty_texts(key) -> None:
    signed = signing.verify(payload(key, place=None), [key.public_key()])
    assert (signed.place_ar, signed.place_en) == ("", "")


def test_a_changed_signed_field_does_not_verify(key) -> None:
    signed = bytearray(signing.base45_decode(payload(key)[5:]))
    at = bytes(signed).index("خالد".encode("utf-8"))
    signed[at + 1] ^= 0x01                       # another Arabic letter in the holder's name
    with pytest.raises(signing.InvalidPayload) as raised:
        signing.verify("KSK2:" + signing.base45_encode(bytes(signed)), [key.public_key()])
    assert raised.value.reason is signing.Problem.BAD_SIGNATURE


def test_a_signature_by_another_key_names_the_unknown_key(key) -> None:
    other = Ed25519PrivateKey.generate()
    with pytest.raises(signing.InvalidPayload) as raised:
        signing.verify(payload(other), [key.public_key()])
    assert raised.value.reason is signing.Problem.UNKNOWN_KEY
    assert signing.key_id(other.public_key()).hex() in str(raised.value)


def test_a_forger_who_copies_our_key_id_fails_the_signature(key) -> None:
    forger = Ed25519PrivateKey.generate()
    genuine = signing.base45_decode(payload(key)[5:])
    claims = genuine[:-64]
    forged = claims + forger.sign(b"KSK2:" + claims)
    with pytest.raises(signing.InvalidPayload) as raised:
        signing.verify("KSK2:" + signing.base45_encode(forged), [key.public_key()])
    assert raised.value.reason is signing.Problem.BAD_SIGNATURE


def test_keys_rotate_a_verifier_holding_both_checks_old_and_new_documents(key) -> None:
    new = Ed25519PrivateKey.generate()
    keys = [new.public_key(), key.public_key()]
    assert signing.verify(payload(key), keys).key_id == signing.key_id(key.public_key())
    assert signing.verify(payload(new), keys).key_id == signing.key_id(new.public_key())


@pytest.mark.parametrize("text, reason", [
    ("", signing.Problem.NOT_OURS),
    ("KSK1.eyJzbiI6MX0.AAAA", signing.Problem.NOT_OURS),          # the old format
    ("https://example.invalid/", signing.Problem.NOT_OURS),
    ("ksk2:ABC", signing.Problem.NOT_OURS),
    ("KSK2:", signing.Problem.MALFORMED),
    ("KSK2:A", signing.Problem.MALFORMED),                          # a lone base45 character
    ("KSK2:::::::", signing.Problem.MALFORMED),                     # groups worth more than two bytes
    ("KSK2:abc", signing.Problem.MALFORMED),                        # not the base45 alphabet
    ("KSK2:" + signing.base45_encode(bytes(100)), signing.Problem.MALFORMED),
    ("KSK2:" + signing.base45_encode(b"\x89" + bytes(70)), signing.Problem.MALFORMED),
])
def test_what_is_not_a_payload_of_ours_fails_with_its_reason(key, text, reason) -> None:
    with pytest.raises(signing.InvalidPayload) as raised:
        signing.verify(text, [key.public_key()])
    assert raised.value.reason is reason


def test_signed_claims_of_the_wrong_shape_are_malformed(key) -> None:
    claims = signing._cbor([signing.key_id(key.public_key()), "2026-ABCDEFGH"])
    text = "KSK2:" + signing.base45_encode(claims + key.sign(b"KSK2:" + claims))
    with pytest.raises(signing.InvalidPayload) as raised:
        signing.verify(text, [key.public_key()])
    assert raised.value.reason is signing.Problem.MALFORMED


@given(st.binary(max_size=300))
def test_any_bytes_after_the_prefix_fail_cleanly(data) -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes(32))
    with pytest.raises(signing.InvalidPayload):
        signing.verify("KSK2:" + signing.base45_encode(data), [key.public_key()])


@given(st.text(alphabet=sorted(QR_ALPHANUMERIC) + ["a", "é"], max_size=200))
def test_any_text_after_the_prefix_fails_cleanly(text) -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes(32))
    with pytest.raises(signing.InvalidPayload):
        signing.verify("KSK2:" + text, [key.public_key()])


@pytest.mark.parametrize("data, text", [(b"AB", "BB8"), (b"Hello!!", "%69 VD92EX0"), (b"base-45", "UJCLQE7W581"),
                                        (b"ietf!", "QED8WEX0"), (b"", "")])
def test_base45_follows_rfc_9285(data, text) -> None:
    assert signing.base45_encode(data) == text
    assert signing.base45_decode(text) == data


def test_content_digest_is_pinned() -> None:
    """The canonical content is a contract with every verifier: a change here breaks printed documents."""
    expected = hashlib.sha256(
        '{"fields":[{"label":{"ar":"الرقم الوطني","en":"National number"},"value":"01020345671"},'
        '{"label":{"ar":"الاسم","en":"Given name"},"value":"خالد"}],'
        '"title":{"ar":"إخراج قيد فردي","en":"Civil status extract"}}'.encode("utf-8")).digest()[:16]
    assert content_digest(TITLE, FIELDS) == expected
    document = IssuedDocument("req-1", "2026-ABCDEFGH", "civil-status-extract", TITLE, FIELDS,
                              "2026-01-31T09:15:07Z", "KSK2:")
    assert document.content_digest() == expected


@pytest.mark.parametrize("change", [
    lambda title, fields: ({**title, "en": "Civil status extract."}, fields),
    lambda title, fields: (title, fields[::-1]),
    lambda title, fields: (title, (DocumentField(fields[0].label, "01020345672"), fields[1])),
    lambda title, fields: (title, (DocumentField({**fields[0].label, "ar": "الرقم"}, fields[0].value), fields[1])),
    lambda title, fields: (title, fields[:1]),
], ids=["title", "order", "value", "label", "field dropped"])
def test_content_digest_changes_with_any_printed_word(change) -> None:
    assert content_digest(*change(TITLE, FIELDS)) != content_digest(TITLE, FIELDS)


def test_payload_stays_small_enough_for_a_qr_code_on_80_mm_paper(key) -> None:
    """A usual payload is well under 400 characters; the longest places and a long name still
    print at 5 dots (0.6 mm) a module on 576 dots of paper at the strongest error correction."""
    usual = payload(key, kind=max(KINDS, key=len), issued_at=datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert len(usual) < 320
    longest = payload(key, kind=max(KINDS, key=len), place={"ar": "ب" * PLACE_MAX_CHARS, "en": "e" * PLACE_MAX_CHARS},
                      holder_ar="عبد الرحمن " * 5)
    for text, most in ((usual, 80), (longest, 576 // 5)):
        code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_H, border=0)
        code.add_data(text.encode("ascii"))
        code.make(fit=True)
        assert code.modules_count <= most


def test_key_is_created_once_private_and_read_back(tmp_path) -> None:
    path = tmp_path / "central.signing-key.pem"
    key = signing.central_key(None, tmp_path / "central.sqlite3", documents_issued=False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = signing.central_key(None, tmp_path / "central.sqlite3", documents_issued=True)
    assert signing.public_key_pem(again.public_key()) == signing.public_key_pem(key.public_key())
    assert list(tmp_path.iterdir()) == [path]


# --- every signature names its key ---------------------------------------------------------

def test_the_qr_payload_carries_the_key_id_as_its_first_signed_claim(key) -> None:
    """The key id is inside the signed bytes (so it cannot be swapped), and verify reports it."""
    signed = signing.base45_decode(payload(key)[len(signing.PREFIX):])
    claims = signing._CborReader(signed[:-signing.SIGNATURE_BYTES]).whole()
    assert claims[0] == signing.key_id(key.public_key())
    assert signing.verify(payload(key), [key.public_key()]).to_json()["key_id"] == signing.key_id(
        key.public_key()).hex()


def test_the_catalogue_signature_carries_the_key_id_a_kiosk_picks_its_key_by(key) -> None:
    from kiosk.catalogue_supply import verify as verify_catalogue

    document = {"version": "v1", "issued_at": "2026-01-31T09:15:00Z", "categories": [], "services": []}
    signed = signing.sign_catalogue(key, document)
    assert signed["signature"]["alg"] == "Ed25519"
    assert signed["signature"]["key_id"] == signing.key_id(key.public_key()).hex()
    other = Ed25519PrivateKey.generate()
    assert verify_catalogue(signed, [other.public_key(), key.public_key()]).catalogue is not None


# --- central's key: never made anew over documents it signed --------------------------------

def _db_path(tmp_path: Path) -> Path:
    return tmp_path / "central.sqlite3"


def test_a_key_path_given_that_does_not_exist_is_refused_not_created(tmp_path) -> None:
    missing = tmp_path / "keys" / "document-key.pem"
    with pytest.raises(signing.SigningKeyError) as raised:
        signing.central_key(missing, _db_path(tmp_path), documents_issued=False)
    assert str(missing) in str(raised.value)
    assert not missing.exists() and not signing.default_key_path(_db_path(tmp_path)).exists()


def test_a_key_path_given_is_read(tmp_path) -> None:
    path = tmp_path / "document-key.pem"
    made = signing.create_key(path)
    read = signing.central_key(path, _db_path(tmp_path), documents_issued=True)
    assert signing.key_id(read.public_key()) == signing.key_id(made.public_key())


def test_the_default_key_is_made_beside_a_database_with_no_document_yet(tmp_path) -> None:
    key = signing.central_key(None, _db_path(tmp_path), documents_issued=False)
    path = tmp_path / "central.signing-key.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = signing.central_key(None, _db_path(tmp_path), documents_issued=True)     # there now: read back
    assert signing.key_id(again.public_key()) == signing.key_id(key.public_key())


def test_a_lost_default_key_is_not_replaced_once_a_document_was_issued(tmp_path) -> None:
    with pytest.raises(signing.SigningKeyError) as raised:
        signing.central_key(None, _db_path(tmp_path), documents_issued=True)
    assert str(tmp_path / "central.signing-key.pem") in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_a_database_without_a_key_file_gets_a_key_for_this_process_only_while_no_document_is_issued() -> None:
    assert isinstance(signing.central_key(None, None, documents_issued=False), Ed25519PrivateKey)
    with pytest.raises(signing.SigningKeyError):
        signing.central_key(None, None, documents_issued=True)


def test_a_key_file_that_is_not_an_ed25519_key_is_refused_naming_it(tmp_path) -> None:
    path = tmp_path / "document-key.pem"
    path.write_text("not a key\n", encoding="ascii")
    with pytest.raises(signing.SigningKeyError, match=str(path)):
        signing.central_key(path, None, documents_issued=False)


def _record_an_issued_document(db_url: str) -> None:
    """One issued document in the database, as the issuer would leave it (only what the table needs)."""
    from central.db import Database
    from central.models import CertificateRequest, IssuedDocumentRecord
    from central.seeding import SEED_DIR

    citizen = json.loads((SEED_DIR / "citizens.json").read_text(encoding="utf-8"))["citizens"][0]
    database = Database(db_url)
    try:
        with database.writing() as session:
            session.add(CertificateRequest(request_id="req-1", body_digest="0" * 64, device_id="kiosk-test-01",
                                           status="issued", http_status=200, answer="{}",
                                           created_at="2026-01-31T09:15:07Z"))
            session.flush()
            session.add(IssuedDocumentRecord(serial="2026-ABCDEFGH", request_id="req-1",
                                             service_code="civil-status-extract",
                                             national_number=citizen["national_number"], payment_id="pay-1",
                                             issued_at="2026-01-31T09:15:07Z", document="{}"))
    finally:
        database.dispose()


@pytest.mark.sqlite_only(reason="the signing key is kept beside the SQLite file")
def test_central_refuses_to_start_when_its_key_beside_the_database_is_lost_after_issuing(fresh_db_url) -> None:
    from central.app import create_app
    from central.db import sqlite_path

    db_url = fresh_db_url
    create_app(db_url).state.database.dispose()               # a new database: its key is made beside it
    key_file = signing.default_key_path(sqlite_path(db_url))
    kept = key_file.read_bytes()
    _record_an_issued_document(db_url)
    key_file.unlink()
    with pytest.raises(signing.SigningKeyError, match=str(key_file)):
        create_app(db_url)
    assert not key_file.exists()
    key_file.write_bytes(kept)                                # restored: central starts under the same key
    create_app(db_url).state.database.dispose()


def test_central_on_postgresql_signs_with_the_key_given_once_documents_are_issued(tmp_path,
                                                                                  postgres_server) -> None:
    """No file beside a PostgreSQL database: a key lives as long as the process until a document is issued,
    and from then on central starts only with --signing-key."""
    from starlette.testclient import TestClient

    from central.app import create_app
    from kiosk import wire

    with postgres_server.database() as db_url:
        create_app(db_url).state.database.dispose()
        _record_an_issued_document(db_url)
        with pytest.raises(signing.SigningKeyError, match="--signing-key"):
            create_app(db_url)
        key = signing.create_key(tmp_path / "document-key.pem")
        with TestClient(create_app(db_url, signing_key_path=tmp_path / "document-key.pem")) as client:
            assert client.get(wire.SIGNING_KEY).text == signing.public_key_pem(key.public_key())


def test_serve_with_a_missing_signing_key_exits_with_one_line_naming_it(tmp_path, capsys) -> None:
    from central import cli

    missing = tmp_path / "document-key.pem"
    assert cli.main(["serve", "--db", "sqlite:///%s" % _db_path(tmp_path), "--signing-key", str(missing)]) == 2
    error = capsys.readouterr().err.splitlines()
    assert len(error) == 1 and str(missing) in error[0] and error[0].startswith("kiosk-central serve: ")
    assert not missing.exists()
