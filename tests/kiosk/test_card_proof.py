"""The card checks of the core (kiosk.card_proof, kiosk.issuer_keys), as the driver and central use them:
issuer key ids and the trust store, passive and active checks, the photo digest, and card proofs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.card_sim.issuer import IssuerKey
from kiosk.card_proof import (
    CHALLENGE_LENGTH, CardProof, CardProofRefused, active_check, check_card_proof, claim_challenge,
    is_der_signature, load_card_key, new_challenge, passive_check, photo_matches, verify_signature,
)
from kiosk.errors import ConfigError
from kiosk.id_card_data import MalformedCardData, encode_identity, photo_digest
from kiosk.issuer_keys import TrustStore, key_id, load_issuer_keys, public_key_der
from kiosk.ports.card_reader import Identity

EF_ID = b"\xc0\x01\x01" + b"\xc2\x0b01020304050"
PHOTO = b"\xff\xd8 a portrait \xff\xd9"
_PUBLIC = ec.generate_private_key(ec.SECP256R1()).public_key()
NATIONAL_NUMBER = "01020304050"


def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


@pytest.fixture(scope="module")
def old_issuer() -> IssuerKey:
    return IssuerKey.generate()


@pytest.fixture(scope="module")
def new_issuer() -> IssuerKey:
    return IssuerKey.generate()


@pytest.fixture(scope="module")
def chip() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


# --- issuer keys --------------------------------------------------------------------------------

def test_key_id_is_sha256_prefix_of_spki(old_issuer: IssuerKey) -> None:
    spki = old_issuer.public_key.public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    assert old_issuer.key_id == hashlib.sha256(spki).digest()[:8] == key_id(old_issuer.public_key)


def test_trust_store_is_a_mapping_by_key_id(old_issuer: IssuerKey, new_issuer: IssuerKey) -> None:
    trust = TrustStore([old_issuer.public_key, new_issuer.public_key])
    assert dict(trust) == {old_issuer.key_id: old_issuer.public_key, new_issuer.key_id: new_issuer.public_key}
    assert trust[bytearray(old_issuer.key_id)] == old_issuer.public_key
    assert old_issuer.key_id in trust and b"\x00" * 8 not in trust and "text" not in trust
    assert trust.get(b"\x00" * 8) is None
    assert repr(trust) == "TrustStore(%s)" % ", ".join(sorted(k.hex() for k in trust))
    with pytest.raises(ConfigError):
        TrustStore([ec.generate_private_key(ec.SECP384R1()).public_key()])


def test_rotated_keys_from_pem_files(tmp_path, old_issuer: IssuerKey, new_issuer: IssuerKey) -> None:
    old_issuer.save(tmp_path / "old.key.pem", tmp_path / "old.pub.pem")
    new_issuer.save(tmp_path / "new.key.pem", tmp_path / "new.pub.pem")
    trust = load_issuer_keys([tmp_path / "old.pub.pem", str(tmp_path / "new.pub.pem")])
    assert len(trust) == 2 and trust.key_ids == {old_issuer.key_id, new_issuer.key_id}
    for issuer in (old_issuer, new_issuer):
        assert passive_check(trust, issuer.key_id, EF_ID, issuer.sign(EF_ID))
    assert IssuerKey.load(tmp_path / "new.key.pem").key_id == new_issuer.key_id
    assert (tmp_path / "new.key.pem").stat().st_mode & 0o077 == 0
    assert len(load_issuer_keys([])) == 0                       # trusts no card


def test_issuer_key_from_a_certificate(tmp_path) -> None:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Card issuer")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(private.public_key()).serial_number(1)
                   .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
                   .sign(private, hashes.SHA256()))
    (tmp_path / "issuer.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    assert load_issuer_keys([tmp_path / "issuer.crt"]).key_ids == {key_id(private.public_key())}


def test_trust_store_refuses_bad_files(tmp_path) -> None:
    (tmp_path / "junk.pem").write_text("not a key")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    (tmp_path / "rsa.pem").write_bytes(rsa_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    (tmp_path / "p384.pem").write_bytes(p384.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    for name in ("junk.pem", "rsa.pem", "p384.pem", "missing.pem"):
        with pytest.raises(ConfigError, match=name):
            load_issuer_keys([tmp_path / name])


# --- passive and active checks --------------------------------------------------------------------

def test_passive_check_accepts_the_issuers_signature(old_issuer: IssuerKey) -> None:
    trust = TrustStore([old_issuer.public_key])
    assert passive_check(trust, old_issuer.key_id, EF_ID, old_issuer.sign(EF_ID))
    assert passive_check(dict(trust), old_issuer.key_id, EF_ID, old_issuer.sign(EF_ID))   # any mapping


def test_passive_check_refuses_altered_data(old_issuer: IssuerKey) -> None:
    trust = TrustStore([old_issuer.public_key])
    signature = old_issuer.sign(EF_ID)
    assert not passive_check(trust, old_issuer.key_id, EF_ID.replace(b"050", b"051"), signature)
    assert not passive_check(trust, old_issuer.key_id, EF_ID + b"\x00", signature)


def test_passive_check_refuses_an_unknown_issuer(old_issuer: IssuerKey) -> None:
    rogue = IssuerKey.generate()
    trust = TrustStore([old_issuer.public_key])
    assert not passive_check(trust, rogue.key_id, EF_ID, rogue.sign(EF_ID))
    # A rogue signature presented under the trusted id does not verify either.
    assert not passive_check(trust, old_issuer.key_id, EF_ID, rogue.sign(EF_ID))


def test_active_check_accepts_the_chip(chip: ec.EllipticCurvePrivateKey) -> None:
    challenge = new_challenge()
    card_key = load_card_key(public_key_der(chip.public_key()))
    assert active_check(card_key, challenge, sign(chip, challenge))


def test_active_check_refuses_another_chip_or_a_replay(chip: ec.EllipticCurvePrivateKey) -> None:
    card_key = load_card_key(public_key_der(chip.public_key()))
    clone = ec.generate_private_key(ec.SECP256R1())
    challenge = new_challenge()
    assert not active_check(card_key, challenge, sign(clone, challenge))
    assert not active_check(card_key, new_challenge(), sign(chip, challenge))
    assert not active_check(card_key, challenge[:31], sign(chip, challenge[:31]))     # not a 32-byte challenge


def test_challenges_are_fresh() -> None:
    challenges = {new_challenge() for _ in range(100)}
    assert len(challenges) == 100 and all(len(c) == CHALLENGE_LENGTH == 32 for c in challenges)


@pytest.mark.parametrize("der", [b"", b"\x30\x00", b"\x00" * 91])
def test_card_key_must_be_p256_spki(der: bytes) -> None:
    with pytest.raises(MalformedCardData):
        load_card_key(der)


def test_card_key_of_another_curve_is_refused() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(MalformedCardData, match="P-256"):
        load_card_key(public_key_der(p384))


def test_photo_matches_only_its_digest() -> None:
    assert photo_matches(photo_digest(PHOTO), PHOTO)
    assert not photo_matches(photo_digest(PHOTO), PHOTO + b"\x00")
    assert not photo_matches(photo_digest(PHOTO), None)
    assert not photo_matches(b"\x00" * 32, PHOTO)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=100))
def test_fuzz_signatures_never_raise(chip_signature: bytes) -> None:
    # Random bytes never verify, and never raise.
    assert verify_signature(_PUBLIC, chip_signature, EF_ID) is False
    is_der_signature(chip_signature)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_card_keys_never_raise_otherwise(der: bytes) -> None:
    try:
        load_card_key(der)
    except MalformedCardData:
        pass


# --- card proofs -----------------------------------------------------------------------------------

def _identity(issuer: IssuerKey, chip: ec.EllipticCurvePrivateKey) -> Identity:
    return Identity(
        card_number="SY0012345678", national_number=NATIONAL_NUMBER, given_name_ar="سامر",
        family_name_ar="الخوري", date_of_birth=dt.date(1988, 3, 14), date_of_expiry=dt.date(2032, 4, 30),
        issuer_key_id=issuer.key_id, card_public_key=public_key_der(chip.public_key()),
        photo_digest=photo_digest(PHOTO))


def make_proof(issuer: IssuerKey, chip: ec.EllipticCurvePrivateKey, challenge: bytes, *,
               signer: ec.EllipticCurvePrivateKey | None = None, ef_id: bytes | None = None) -> CardProof:
    """What a genuine card would give (or, with `signer`/`ef_id`, a clone or altered data)."""
    signed = encode_identity(_identity(issuer, chip))
    return CardProof(ef_id=signed if ef_id is None else ef_id, ef_id_sig=issuer.sign(signed),
                     signature=sign(signer or chip, challenge))


def test_a_proof_gives_the_identity_for_exactly_its_challenge(old_issuer: IssuerKey,
                                                              chip: ec.EllipticCurvePrivateKey) -> None:
    trust = TrustStore([old_issuer.public_key])
    challenge = new_challenge()
    proof = make_proof(old_issuer, chip, challenge)
    identity = check_card_proof(trust, proof, challenge)
    assert identity.national_number == NATIONAL_NUMBER and identity.photo_digest == photo_digest(PHOTO)
    assert check_card_proof(dict(trust), proof, bytearray(challenge)).card_number == "SY0012345678"
    with pytest.raises(CardProofRefused) as refused:
        check_card_proof(trust, proof, new_challenge())
    assert refused.value.reason == "cloned"


def test_a_proof_refused_for_each_reason(old_issuer: IssuerKey, chip: ec.EllipticCurvePrivateKey) -> None:
    trust = TrustStore([old_issuer.public_key])
    challenge = new_challenge()
    good = make_proof(old_issuer, chip, challenge)
    altered = encode_identity(dataclasses.replace(_identity(old_issuer, chip), national_number="01020304051"))
    no_key = encode_identity(dataclasses.replace(_identity(old_issuer, chip), card_public_key=b"\x04" * 65))
    cases = {
        "malformed": [dataclasses.replace(good, ef_id=b"\x00" * 40), dataclasses.replace(good, ef_id=b""),
                      dataclasses.replace(good, ef_id=no_key), dataclasses.replace(good, ef_id=b"\xc0" * 5000)],
        "unknown_issuer": [make_proof(IssuerKey.generate(), chip, challenge)],
        "forged": [dataclasses.replace(good, ef_id=altered), dataclasses.replace(good, ef_id_sig=b""),
                   dataclasses.replace(good, ef_id_sig=good.signature)],
        "cloned": [make_proof(old_issuer, chip, challenge, signer=ec.generate_private_key(ec.SECP256R1())),
                   dataclasses.replace(good, signature=b"\x30\x00"), dataclasses.replace(good, signature=b"")],
    }
    for reason, proofs in cases.items():
        for proof in proofs:
            with pytest.raises(CardProofRefused) as refused:
                check_card_proof(trust, proof, challenge)
            assert refused.value.reason == reason
            assert NATIONAL_NUMBER not in str(refused.value)


@pytest.mark.parametrize("challenge", [b"", b"\x00" * 31, b"\x00" * 33, "0" * 32])
def test_a_challenge_that_is_not_32_bytes_is_the_callers_mistake(challenge, old_issuer: IssuerKey,
                                                                  chip: ec.EllipticCurvePrivateKey) -> None:
    proof = make_proof(old_issuer, chip, new_challenge())
    with pytest.raises(ValueError):
        check_card_proof(TrustStore([old_issuer.public_key]), proof, challenge)


def test_proof_travels_as_base64_json_and_withholds_its_data(old_issuer: IssuerKey,
                                                             chip: ec.EllipticCurvePrivateKey) -> None:
    challenge = new_challenge()
    proof = make_proof(old_issuer, chip, challenge)
    wire = json.loads(json.dumps(proof.to_json()))
    assert set(wire) == {"ef_id", "ef_id_sig", "signature"}
    assert CardProof.from_json(wire) == proof
    check_card_proof(TrustStore([old_issuer.public_key]), CardProof.from_json(wire), challenge)
    assert repr(proof) == str(proof) == "CardProof(<card data withheld>)"
    assert NATIONAL_NUMBER not in repr(proof)
    with pytest.raises(dataclasses.FrozenInstanceError):
        proof.ef_id = b""                                                       # type: ignore[misc]
    assert CardProof(bytearray(b"a"), b"b", b"c").ef_id == b"a"
    with pytest.raises(TypeError):
        CardProof("text", b"", b"")                                             # type: ignore[arg-type]


@pytest.mark.parametrize("wire", [
    None, [], "proof", {}, {"ef_id": "AA==", "ef_id_sig": "AA=="},
    {"ef_id": "AA==", "ef_id_sig": "AA==", "signature": "AA==", "more": "AA=="},
    {"ef_id": "AA==", "ef_id_sig": "AA==", "signature": 12},
    {"ef_id": "not base64!", "ef_id_sig": "AA==", "signature": "AA=="},
    {"ef_id": "AA=", "ef_id_sig": "AA==", "signature": "AA=="},
    {"ef_id": "ٱ", "ef_id_sig": "AA==", "signature": "AA=="},
])
def test_proof_from_anything_else_on_the_wire_is_malformed(wire) -> None:
    with pytest.raises(CardProofRefused) as refused:
        CardProof.from_json(wire)
    assert refused.value.reason == "malformed"


def test_refusal_reasons_are_a_closed_set() -> None:
    assert CardProofRefused.REASONS == ("malformed", "unknown_issuer", "forged", "cloned")
    with pytest.raises(ValueError):
        CardProofRefused("expired")


# --- the challenge of an offline claim ---------------------------------------------------------------

def test_claim_challenge_is_sha256_of_the_documented_encoding() -> None:
    expected = hashlib.sha256(
        b"SY-EID offline claim v1\x00"
        + b"\x00\x00\x00\x05req-1" + b"\x00\x00\x00\x0dbirth-extract" + b"\x00\x00\x00\x142026-01-15T10:00:00Z"
    ).digest()
    assert claim_challenge("req-1", "birth-extract", "2026-01-15T10:00:00Z") == expected
    assert len(expected) == CHALLENGE_LENGTH


def test_claim_challenge_tells_every_field_apart() -> None:
    base = claim_challenge("req-1", "birth-extract", "2026-01-15T10:00:00Z")
    others = {
        claim_challenge("req-2", "birth-extract", "2026-01-15T10:00:00Z"),
        claim_challenge("req-1", "marriage-extract", "2026-01-15T10:00:00Z"),
        claim_challenge("req-1", "birth-extract", "2026-01-15T10:00:01Z"),
        claim_challenge("req-1b", "irth-extract", "2026-01-15T10:00:00Z"),     # the same bytes, other fields
        claim_challenge("", "req-1birth-extract", "2026-01-15T10:00:00Z"),
    }
    assert base not in others and len(others) == 5
    assert claim_challenge("طلب-١", "birth-extract", "2026-01-15T10:00:00Z") != base
    with pytest.raises(TypeError):
        claim_challenge(b"req-1", "birth-extract", "2026-01-15T10:00:00Z")     # type: ignore[arg-type]


def test_a_card_signs_a_claim_and_a_verifier_checks_it(old_issuer: IssuerKey,
                                                       chip: ec.EllipticCurvePrivateKey) -> None:
    challenge = claim_challenge("req-1", "birth-extract", "2026-01-15T10:00:00Z")
    proof = make_proof(old_issuer, chip, challenge)
    trust = TrustStore([old_issuer.public_key])
    assert check_card_proof(trust, proof, challenge).national_number == NATIONAL_NUMBER
    with pytest.raises(CardProofRefused, match="cloned"):
        check_card_proof(trust, proof, claim_challenge("req-1", "birth-extract", "2026-01-15T10:00:01Z"))
