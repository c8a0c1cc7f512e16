"""What makes a national ID card's data trustworthy, checked anywhere.

Pure code, shared by the kiosk's card driver and central, so that both
check a card the same way (profile 1.1, specs/national-id-card.md):

* passive: EF.ID_SIG verifies over the exact bytes of EF.ID with the
  trusted issuer key named in CF (`passive_check`);
* active: the chip signs a 32-byte challenge with the private key that
  belongs to D0 (`active_check`);
* the photo: EF.PHOTO hashes to D1, when EF.ID carries D1 (`photo_matches`).

All signatures are ECDSA P-256 / SHA-256, DER. A `CardProof` is what a
card in a reader gives a verifier who was not there: EF.ID and EF.ID_SIG as
read, and the chip's signature over the verifier's challenge;
`check_card_proof` turns it into the holder's `Identity` or refuses it.
`claim_challenge` is the challenge of an offline claim, which no verifier
could send: the card signs the claim itself.

EF.ID is personal data: nothing here logs, and no message carries card bytes.
`TrustStore` and `load_issuer_keys` (`kiosk.issuer_keys`) are imported here
too, so that a verifier needs this one module.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from kiosk.errors import KioskError
from kiosk.id_card_data import MAX_EF_ID_SIZE, MalformedCardData, decode_identity, photo_digest
from kiosk.issuer_keys import TrustStore, load_issuer_keys
from kiosk.ports.card_reader import Identity

__all__ = [
    "CHALLENGE_LENGTH", "CardProof", "CardProofRefused", "TrustStore", "active_check", "check_card_proof",
    "claim_challenge", "is_der_signature", "load_card_key", "load_issuer_keys", "new_challenge",
    "passive_check", "photo_matches", "verify_signature",
]

CHALLENGE_LENGTH = 32        # what INTERNAL AUTHENTICATE signs
MAX_SIGNATURE_LENGTH = 72    # DER SEQUENCE of two 33-byte INTEGERs
MIN_SIGNATURE_LENGTH = 8
CLAIM_LABEL = b"SY-EID offline claim v1\x00"

IssuerKeys = Mapping[bytes, ec.EllipticCurvePublicKey]   # a TrustStore, or any mapping key id -> key


# --- the checks -----------------------------------------------------------------------------

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


def passive_check(issuer_keys: IssuerKeys, issuer_key_id: bytes, ef_id: bytes, ef_id_sig: bytes) -> bool:
    """True when a trusted issuer key under `issuer_key_id` signed `ef_id`."""
    issuer_key = issuer_keys.get(bytes(issuer_key_id))
    return issuer_key is not None and verify_signature(issuer_key, ef_id_sig, ef_id)


def active_check(card_key: ec.EllipticCurvePublicKey, challenge: bytes, answer: bytes) -> bool:
    """True when `answer` is the chip's signature over `challenge`."""
    return len(challenge) == CHALLENGE_LENGTH and verify_signature(card_key, answer, challenge)


def photo_matches(digest: bytes, photo: bytes | None) -> bool:
    """True when `photo` (EF.PHOTO) hashes to `digest` (D1); a missing photo never does."""
    return photo is not None and hmac.compare_digest(photo_digest(photo), bytes(digest))


# --- a card's proof, for a verifier who was not there ---------------------------------------

class CardProofRefused(KioskError):
    """A card proof does not prove a card. `reason` is one of REASONS, a
    stable word for the log; the message never carries card data."""

    REASONS = ("malformed", "unknown_issuer", "forged", "cloned")

    def __init__(self, reason: str) -> None:
        if reason not in self.REASONS:
            raise ValueError("not a card proof refusal: %r" % reason)
        super().__init__("card proof refused: %s" % reason)
        self.reason = reason


_PROOF_FIELDS = ("ef_id", "ef_id_sig", "signature")


@dataclass(frozen=True, repr=False)
class CardProof:
    """A card's answer to one challenge: EF.ID and EF.ID_SIG as the reader
    read them, and the chip's DER signature over the challenge. EF.ID is
    personal data: the repr withholds all three, never log them."""

    ef_id: bytes
    ef_id_sig: bytes
    signature: bytes

    def __post_init__(self) -> None:
        for name in _PROOF_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bytearray):
                object.__setattr__(self, name, bytes(value))
            elif not isinstance(value, bytes):
                raise TypeError("CardProof.%s is bytes" % name)

    def __repr__(self) -> str:
        return "CardProof(<card data withheld>)"

    __str__ = __repr__

    def to_json(self) -> dict[str, str]:
        """For the wire: `{"ef_id", "ef_id_sig", "signature"}`, each standard base64."""
        return {name: base64.b64encode(getattr(self, name)).decode("ascii") for name in _PROOF_FIELDS}

    @classmethod
    def from_json(cls, data: Any) -> "CardProof":
        """From `to_json`'s form; CardProofRefused("malformed") for anything else
        (another shape, another member, a value that is not strict base64)."""
        if not isinstance(data, Mapping) or set(data) != set(_PROOF_FIELDS):
            raise CardProofRefused("malformed")
        values = {}
        for name in _PROOF_FIELDS:
            text = data[name]
            if not isinstance(text, str):
                raise CardProofRefused("malformed")
            try:
                values[name] = base64.b64decode(text.encode("ascii"), validate=True)
            except (ValueError, binascii.Error):      # UnicodeEncodeError is a ValueError
                raise CardProofRefused("malformed") from None
        return cls(**values)


def check_card_proof(issuer_keys: IssuerKeys, proof: CardProof, challenge: bytes) -> Identity:
    """The identity on the card that made `proof` over exactly `challenge`.

    Refuses, with CardProofRefused, in this order: "malformed" (EF.ID does
    not decode, or D0 is not a P-256 key), "unknown_issuer" (no trusted key
    under CF), "forged" (EF.ID_SIG does not verify over EF.ID), "cloned"
    (the signature over `challenge` does not verify with the key in D0). The
    expiry and the photo digest are the caller's to compare. A `challenge`
    that is not 32 bytes is the caller's mistake (ValueError)."""
    if not isinstance(challenge, (bytes, bytearray)) or len(challenge) != CHALLENGE_LENGTH:
        raise ValueError("a challenge is %d bytes" % CHALLENGE_LENGTH)
    if not isinstance(proof, CardProof):
        raise TypeError("check_card_proof takes a CardProof")
    if len(proof.ef_id) > MAX_EF_ID_SIZE:
        raise CardProofRefused("malformed")
    try:
        identity = decode_identity(proof.ef_id)
        card_key = load_card_key(identity.card_public_key)
    except MalformedCardData:
        raise CardProofRefused("malformed") from None
    issuer_key = issuer_keys.get(identity.issuer_key_id)
    if issuer_key is None:
        raise CardProofRefused("unknown_issuer")
    if not verify_signature(issuer_key, proof.ef_id_sig, proof.ef_id):
        raise CardProofRefused("forged")
    if not active_check(card_key, bytes(challenge), proof.signature):
        raise CardProofRefused("cloned")
    return identity


def claim_challenge(request_id: str, service_code: str, taken_at: str) -> bytes:
    """The 32 bytes a card signs for an offline claim, which no verifier
    could challenge: SHA-256 over

        "SY-EID offline claim v1" 00
        len(request_id)   (4 bytes, big-endian) || request_id   (UTF-8)
        len(service_code) (4 bytes, big-endian) || service_code (UTF-8)
        len(taken_at)     (4 bytes, big-endian) || taken_at     (UTF-8)

    The strings are taken exactly as sent on the wire (no normalisation):
    kiosk and central must hash the same text. The length prefixes make the
    encoding unambiguous (no two claims give the same bytes), and the label
    keeps a claim's challenge apart from any other 32 bytes a card signs,
    such as central's random challenges."""
    parts = [CLAIM_LABEL]
    for name, value in (("request_id", request_id), ("service_code", service_code), ("taken_at", taken_at)):
        if not isinstance(value, str):
            raise TypeError("%s is a str" % name)
        encoded = value.encode("utf-8")
        parts.append(len(encoded).to_bytes(4, "big") + encoded)
    return hashlib.sha256(b"".join(parts)).digest()
