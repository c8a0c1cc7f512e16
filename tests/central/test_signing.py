"""Document signing: the QR payload verifies, resists tampering, and stays small."""

from __future__ import annotations

import base64
import stat
from datetime import UTC, datetime

import pytest
import qrcode
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central import signing
from central.certificates import KINDS


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def claims(**overrides: object) -> dict:
    values = signing.document_claims(serial="2026-ABCDEFGH", service_code="civil-status-extract",
                                     issued_at=datetime(2026, 1, 31, 9, 15, tzinfo=UTC),
                                     national_number="01020345671", given_name_ar="خالد", family_name_ar="الحداد")
    return {**values, **overrides}


def test_signed_claims_verify(key) -> None:
    assert signing.verify(signing.sign(claims(), key), key.public_key()) == claims()


def test_national_number_is_not_in_the_payload_but_the_holder_can_be_checked(key) -> None:
    payload = signing.sign(claims(), key)
    decoded = base64.urlsafe_b64decode(payload.split(".")[1] + "==").decode("utf-8")
    assert "01020345671" not in decoded and "01020345671" not in payload
    verified = signing.verify(payload, key.public_key())
    assert verified["hh"] == signing.holder_hash("01020345671", verified["sn"])
    assert verified["hh"] != signing.holder_hash("01020345672", verified["sn"])
    assert verified["hi"] == "خ.ح"


def test_tampered_claims_fail(key) -> None:
    prefix, body, signature = signing.sign(claims(), key).split(".")
    other = signing.sign(claims(svc="non-conviction"), key).split(".")[1]
    with pytest.raises(signing.InvalidPayload) as raised:
        signing.verify("%s.%s.%s" % (prefix, other, signature), key.public_key())
    assert raised.value.reason == "bad_signature"


def test_signature_of_another_key_fails(key) -> None:
    payload = signing.sign(claims(), Ed25519PrivateKey.generate())
    with pytest.raises(signing.InvalidPayload):
        signing.verify(payload, key.public_key())


@pytest.mark.parametrize("payload", ["", "KSK1", "KSK1.a.b.c", "KSK2.abc.def", "KSK1.!!!.abc", "KSK1..",
                                     "KSK1.e30." + "A" * 86])
def test_malformed_payloads_fail(key, payload) -> None:
    with pytest.raises(signing.InvalidPayload):
        signing.verify(payload, key.public_key())


def test_signed_garbage_claims_fail(key) -> None:
    signed = "KSK1.%s" % base64.urlsafe_b64encode(b'{"sn": 1}').rstrip(b"=").decode()
    payload = "%s.%s" % (signed, base64.urlsafe_b64encode(key.sign(signed.encode())).rstrip(b"=").decode())
    with pytest.raises(signing.InvalidPayload) as raised:
        signing.verify(payload, key.public_key())
    assert raised.value.reason == "malformed"


def test_payload_stays_small_enough_for_a_small_qr_code(key) -> None:
    longest_code = max(KINDS, key=len)
    payload = signing.sign(claims(svc=longest_code, iat=4102444800), key)
    assert len(payload.encode("utf-8")) < 240
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(payload)
    code.make(fit=True)
    assert code.version <= 11   # 61 x 61 modules


def test_key_is_created_once_private_and_read_back(tmp_path) -> None:
    path = tmp_path / "central.signing-key.pem"
    key = signing.load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = signing.load_or_create_key(path)
    assert signing.public_key_pem(again.public_key()) == signing.public_key_pem(key.public_key())
    assert list(tmp_path.iterdir()) == [path]
