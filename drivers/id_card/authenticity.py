"""The two authenticity checks of the profile.

Passive: EF.ID_SIG verifies over the exact bytes of EF.ID with the trusted
issuer key named in CF. Active: the chip signs a fresh challenge with the
private key that belongs to D0. Both are ECDSA P-256 / SHA-256, DER.
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from drivers.id_card.apdu import CHALLENGE_LENGTH
from drivers.id_card.errors import MalformedCardData
from drivers.id_card.trust import TrustStore

MAX_SIGNATURE_LENGTH = 72   # DER SEQUENCE of two 33-byte INTEGERs
MIN_SIGNATURE_LENGTH = 8


def new_challenge() -> bytes:
    """32 fresh random bytes for INTERNAL AUTHENTICATE."""
    return secrets.token_bytes(CHALLENGE_LENGTH)


def load_card_key(der: bytes) -> ec.EllipticCurvePublicKey:
    """The card's public key from D0; MalformedCardData unless EC P-256 SPKI."""
    try:
        key = serialization.load_der_public_key(bytes(der))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise MalformedCardData("D0 is not a DER public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise MalformedCardData("D0 is not an EC P-256 key")
    return key


def is_der_signature(signature: bytes) -> bool:
    """True when `signature` is a DER `SEQUENCE { r, s }` of plausible size."""
    if not MIN_SIGNATURE_LENGTH <= len(signature) <= MAX_SIGNATURE_LENGTH:
        return False
    try:
        decode_dss_signature(bytes(signature))
    except ValueError:
        return False
    return True


def verify_signature(public_key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    """ECDSA P-256 / SHA-256 over `data`; False for anything that does not verify."""
    if not is_der_signature(signature):
        return False
    try:
        public_key.verify(bytes(signature), bytes(data), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def passive_check(trust: TrustStore, issuer_key_id: bytes, ef_id: bytes, ef_id_sig: bytes) -> bool:
    """True when a trusted issuer key under `issuer_key_id` signed `ef_id`."""
    issuer_key = trust.get(issuer_key_id)
    return issuer_key is not None and verify_signature(issuer_key, ef_id_sig, ef_id)


def active_check(card_key: ec.EllipticCurvePublicKey, challenge: bytes, answer: bytes) -> bool:
    """True when `answer` is the chip's signature over `challenge`."""
    return len(challenge) == CHALLENGE_LENGTH and verify_signature(card_key, answer, challenge)
