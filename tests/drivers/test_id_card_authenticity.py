"""Passive and active authentication, and the issuer trust store."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.card_sim.issuer import IssuerKey
from drivers.id_card.authenticity import (
    active_check, is_der_signature, load_card_key, new_challenge, passive_check, verify_signature,
)
from drivers.id_card.errors import MalformedCardData
from drivers.id_card.trust import TrustStore, key_id, public_key_der
from kiosk.errors import ConfigError

EF_ID = b"\xc0\x01\x01" + b"\xc2\x0b01020304050"
_PUBLIC = ec.generate_private_key(ec.SECP256R1()).public_key()


@pytest.fixture(scope="module")
def old_issuer() -> IssuerKey:
    return IssuerKey.generate()


@pytest.fixture(scope="module")
def new_issuer() -> IssuerKey:
    return IssuerKey.generate()


@pytest.fixture(scope="module")
def chip() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def test_key_id_is_sha256_prefix_of_spki(old_issuer: IssuerKey) -> None:
    spki = old_issuer.public_key.public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    assert old_issuer.key_id == hashlib.sha256(spki).digest()[:8] == key_id(old_issuer.public_key)


def test_passive_check_accepts_the_issuers_signature(old_issuer: IssuerKey) -> None:
    trust = TrustStore([old_issuer.public_key])
    assert passive_check(trust, old_issuer.key_id, EF_ID, old_issuer.sign(EF_ID))


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


def test_rotated_keys_from_pem_files(tmp_path, old_issuer: IssuerKey, new_issuer: IssuerKey) -> None:
    old_issuer.save(tmp_path / "old.key.pem", tmp_path / "old.pub.pem")
    new_issuer.save(tmp_path / "new.key.pem", tmp_path / "new.pub.pem")
    trust = TrustStore.from_pem_files([tmp_path / "old.pub.pem", tmp_path / "new.pub.pem"])
    assert len(trust) == 2 and trust.key_ids == {old_issuer.key_id, new_issuer.key_id}
    for issuer in (old_issuer, new_issuer):
        assert passive_check(trust, issuer.key_id, EF_ID, issuer.sign(EF_ID))
    assert IssuerKey.load(tmp_path / "new.key.pem").key_id == new_issuer.key_id
    assert (tmp_path / "new.key.pem").stat().st_mode & 0o077 == 0


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
            TrustStore.from_pem_files([tmp_path / name])


def test_active_check_accepts_the_chip(chip: ec.EllipticCurvePrivateKey) -> None:
    challenge = new_challenge()
    answer = chip.sign(challenge, ec.ECDSA(hashes.SHA256()))
    card_key = load_card_key(public_key_der(chip.public_key()))
    assert active_check(card_key, challenge, answer)


def test_active_check_refuses_another_chip_or_a_replay(chip: ec.EllipticCurvePrivateKey) -> None:
    card_key = load_card_key(public_key_der(chip.public_key()))
    clone = ec.generate_private_key(ec.SECP256R1())
    challenge = new_challenge()
    assert not active_check(card_key, challenge, clone.sign(challenge, ec.ECDSA(hashes.SHA256())))
    replayed = chip.sign(challenge, ec.ECDSA(hashes.SHA256()))
    assert not active_check(card_key, new_challenge(), replayed)


def test_challenges_are_fresh() -> None:
    challenges = {new_challenge() for _ in range(100)}
    assert len(challenges) == 100 and all(len(c) == 32 for c in challenges)


@pytest.mark.parametrize("der", [b"", b"\x30\x00", b"\x00" * 91])
def test_card_key_must_be_p256_spki(der: bytes) -> None:
    with pytest.raises(MalformedCardData):
        load_card_key(der)


def test_card_key_of_another_curve_is_refused() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(MalformedCardData, match="P-256"):
        load_card_key(public_key_der(p384))


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

