"""Central's document signing key and the payload a printed QR code carries.

Payload: ``KSK1.<base64url(claims)>.<base64url(signature)>``, no padding,
where the claims are canonical JSON (sorted keys, no spaces, UTF-8) and the
Ed25519 signature covers the ASCII text ``KSK1.<base64url(claims)>``.

Claims, kept short so the QR code stays small (about 230 bytes in all):

    sn   the document serial
    svc  the service code
    iat  issue time, seconds since 1970 (UTC)
    hi   the holder's Arabic initials, e.g. "خ.ح"
    hh   holder hash: base64url of 12 bytes of scrypt(national number,
         salt = serial, n=2**14, r=8, p=1)

The national number never appears in clear. A verifier holding the
citizen's ID card recomputes ``hh`` with :func:`holder_hash`; scrypt makes a
search of all 10**11 national numbers for one document cost years of CPU.
The kiosk's request id is not a claim: the serial names the document, and
central maps it back to the request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from central.wire import canonical_json

log = logging.getLogger(__name__)

PREFIX = "KSK1"
_CLAIM_TYPES: dict[str, type] = {"sn": str, "svc": str, "iat": int, "hi": str, "hh": str}


class InvalidPayload(ValueError):
    """A payload that is malformed (reason "malformed") or forged or altered ("bad_signature")."""

    def __init__(self, reason: str, problem: str) -> None:
        super().__init__(problem)
        self.reason = reason


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in text):
        raise InvalidPayload("malformed", "not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidPayload("malformed", "not base64url") from None


def holder_hash(national_number: str, serial: str) -> str:
    """The ``hh`` claim of the document `serial` for the holder of `national_number`."""
    digest = hashlib.scrypt(national_number.encode("ascii"), salt=serial.encode("utf-8"),
                            n=2 ** 14, r=8, p=1, dklen=12)
    return _b64encode(digest)


def holder_initials(given_name_ar: str, family_name_ar: str) -> str:
    """First letters of the Arabic names, the article "ال" skipped: خالد الحداد -> "خ.ح"."""
    family = family_name_ar.strip()
    if family.startswith("ال") and len(family) > 2:
        family = family[2:]
    return "%s.%s" % (given_name_ar.strip()[:1], family[:1])


def document_claims(*, serial: str, service_code: str, issued_at: datetime, national_number: str,
                    given_name_ar: str, family_name_ar: str) -> dict[str, Any]:
    return {"sn": serial, "svc": service_code, "iat": int(issued_at.timestamp()),
            "hi": holder_initials(given_name_ar, family_name_ar),
            "hh": holder_hash(national_number, serial)}


def sign(claims: dict[str, Any], private_key: Ed25519PrivateKey) -> str:
    """The payload for `claims`."""
    signed = "%s.%s" % (PREFIX, _b64encode(canonical_json(claims)))
    return "%s.%s" % (signed, _b64encode(private_key.sign(signed.encode("ascii"))))


def verify(payload: str, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """The claims of a genuine payload; raises InvalidPayload for anything else."""
    parts = payload.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise InvalidPayload("malformed", "not a %s payload" % PREFIX)
    claims_bytes, signature = _b64decode(parts[1]), _b64decode(parts[2])
    try:
        public_key.verify(signature, ("%s.%s" % (parts[0], parts[1])).encode("ascii"))
    except InvalidSignature:
        raise InvalidPayload("bad_signature", "signature does not verify") from None
    try:
        claims = json.loads(claims_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidPayload("malformed", "claims are not JSON") from None
    if not isinstance(claims, dict) or set(claims) != set(_CLAIM_TYPES) or any(
            type(claims[key]) is not kind for key, kind in _CLAIM_TYPES.items()):
        raise InvalidPayload("malformed", "claims are not the expected set")
    return claims


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def load_public_key_pem(pem: str | bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode("ascii") if isinstance(pem, str) else pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def load_or_create_key(path: Path | None) -> Ed25519PrivateKey:
    """The private key in the PEM file `path`, created (mode 0600) when it does not exist.

    With no path, a key that lives only as long as this process: documents it
    signs cannot be verified after a restart.
    """
    if path is None:
        log.warning("signing.key_ephemeral")
        return Ed25519PrivateKey.generate()
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        # Written whole under a temporary name, then linked into place: a
        # reader never sees half a key, and a key another process made first wins.
        temporary = path.with_name(".%s.%d.tmp" % (path.name, os.getpid()))
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return load_or_create_key(path)
        finally:
            temporary.unlink()
        log.info("signing.key_created path=%s", path)
        return key
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("%s: not an Ed25519 private key" % path)
    return key


def default_key_path(db_path: Path | None) -> Path | None:
    """``central.sqlite3`` keeps its key in ``central.signing-key.pem`` beside it."""
    return None if db_path is None else db_path.with_name(db_path.stem + ".signing-key.pem")
