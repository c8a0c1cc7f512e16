"""Central's document signing key and the payload a printed QR code carries.

Payload: ``KSK2:`` followed by the base45 text (RFC 9285) of the signed bytes:
a CBOR array (RFC 8949, definite lengths, shortest heads) of the claims,
followed by the 64-byte Ed25519 signature of ``b"KSK2:" + claims``. Every
character is in the QR code's alphanumeric set, so the code holds 5.5 bits a
character instead of 8, and a certificate's payload of about 330 characters
fits a code that scans off an 80 mm thermal print.

The claims, in this order:

    0  key id          8 bytes: the first 8 bytes of SHA-256 of the raw Ed25519 public key
    1  serial          text, e.g. "2026-ABCDEFGH"
    2  kind            text: the service code
    3  issued          unsigned integer: seconds since 1970 (UTC)
    4  UTC offset      integer: minutes, for showing the issue time as it was on the site
    5  place (ar)      text, "" when the kiosk gave none
    6  place (en)      text, "" when the kiosk gave none
    7  holder          text: the holder's full name in Arabic
    8  content digest  16 bytes: kiosk.documents.content_digest of the title and the fields

The key id lets keys rotate: a verifier holding several public keys picks
the one the payload names.

The same key signs the catalogue central serves (`sign_catalogue`): the
signature goes with the document as ``"signature": {"alg": "Ed25519",
"key_id": <hex>, "value": <base64>}``, over `kiosk.catalogue.signing_bytes`
(a context string, then the canonical JSON of the rest), so a kiosk can keep
the catalogue on its disk and trust it again when central cannot be reached.
Commands to kiosks and the announcements are signed the same way
(`sign_document`), each under a context string of its own (kiosk.wire), so
that no signature of one kind passes for another. The content digest ties the signature to every
printed word: a verifier recomputes it from the document's fields. The
national number is not in the payload.

Central starts with `central_key`, which never makes a key anew over
documents already issued (they would all stop verifying): a key file given
that is not there, or the one beside the database lost after a first
document, stops central from starting with an error naming the file.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.catalogue import SIGNATURE_CONTEXT as CATALOGUE_CONTEXT, signing_bytes
from kiosk.documents import CONTENT_DIGEST_BYTES

log = logging.getLogger(__name__)

PREFIX = "KSK2:"
KEY_ID_BYTES = 8
SIGNATURE_BYTES = 64
BASE45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_BASE45_VALUES = {c: i for i, c in enumerate(BASE45_ALPHABET)}
_CLAIM_COUNT = 9


class Problem(str, enum.Enum):
    """Why a payload is not a genuine document of ours."""

    NOT_OURS = "not_ours"              # not a KSK2 payload at all (another QR code, an old format)
    MALFORMED = "malformed"            # our prefix, but the bytes are not a signed claims array
    UNKNOWN_KEY = "unknown_key"        # signed under a key id the verifier does not hold
    BAD_SIGNATURE = "bad_signature"    # the key is known, the signature does not verify: altered or forged


class InvalidPayload(ValueError):
    """A payload that does not verify; `reason` is the Problem."""

    def __init__(self, reason: Problem, problem: str) -> None:
        super().__init__(problem)
        self.reason = reason


@dataclass(frozen=True, repr=False)
class SignedFields:
    """What a genuine payload says. Holds the holder's name: never log it."""

    key_id: bytes
    serial: str
    kind: str
    issued_at: datetime            # aware, in the UTC offset it was signed with
    place_ar: str
    place_en: str
    holder_ar: str
    content_digest: bytes

    def __repr__(self) -> str:
        return "SignedFields(serial=%s, kind=%s)" % (self.serial, self.kind)

    def issued_iso(self) -> str:
        """The issue time as ISO 8601 with its offset: ``2026-01-31T12:15:00+03:00``."""
        return self.issued_at.isoformat()

    def to_json(self) -> dict[str, Any]:
        return {"serial": self.serial, "kind": self.kind, "issued_at": self.issued_iso(),
                "place": {"ar": self.place_ar, "en": self.place_en}, "holder_ar": self.holder_ar,
                "content_digest": self.content_digest.hex(), "key_id": self.key_id.hex()}


# --- base45 (RFC 9285) -----------------------------------------------------------------

def base45_encode(data: bytes) -> str:
    out = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        out.extend((n % 45, n // 45 % 45, n // 2025))
    if len(data) % 2:
        out.extend((data[-1] % 45, data[-1] // 45))
    return "".join(BASE45_ALPHABET[v] for v in out)


def base45_decode(text: str) -> bytes:
    if len(text) % 3 == 1:
        raise InvalidPayload(Problem.MALFORMED, "not base45")
    try:
        values = [_BASE45_VALUES[c] for c in text]
    except KeyError:
        raise InvalidPayload(Problem.MALFORMED, "not base45") from None
    out = bytearray()
    for i in range(0, len(values), 3):
        group = values[i:i + 3]
        n = sum(v * 45 ** k for k, v in enumerate(group))
        if n > (0xFFFF if len(group) == 3 else 0xFF):
            raise InvalidPayload(Problem.MALFORMED, "not base45")
        out.extend(n.to_bytes(2, "big") if len(group) == 3 else bytes((n,)))
    return bytes(out)


# --- the little CBOR the claims need: integers, byte and text strings, one array ---------

def _cbor_head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes((major << 5 | n,))
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes((major << 5 | info,)) + n.to_bytes(size, "big")
    raise ValueError("integer too large for CBOR")


def _cbor(value: int | bytes | str | list) -> bytes:
    if isinstance(value, bool):
        raise TypeError("no booleans in the claims")
    if isinstance(value, int):
        return _cbor_head(0, value) if value >= 0 else _cbor_head(1, -1 - value)
    if isinstance(value, bytes):
        return _cbor_head(2, len(value)) + value
    if isinstance(value, str):
        encoded = value.encode("utf-8")
        return _cbor_head(3, len(encoded)) + encoded
    if isinstance(value, list):
        return _cbor_head(4, len(value)) + b"".join(_cbor(item) for item in value)
    raise TypeError("not a claim value: %s" % type(value).__name__)


class _CborReader:
    """Reads the claims array back, strictly: anything else is MALFORMED, never an IndexError."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def _take(self, count: int) -> bytes:
        if count > len(self._data) - self._at:
            raise InvalidPayload(Problem.MALFORMED, "claims are cut short")
        chunk = self._data[self._at:self._at + count]
        self._at += count
        return chunk

    def _head(self) -> tuple[int, int]:
        first = self._take(1)[0]
        major, info = first >> 5, first & 31
        if info < 24:
            return major, info
        if info > 27:
            raise InvalidPayload(Problem.MALFORMED, "claims use an unsupported CBOR form")
        n = int.from_bytes(self._take(1 << (info - 24)), "big")
        if n < (24 if info == 24 else 1 << (8 << (info - 25))):
            raise InvalidPayload(Problem.MALFORMED, "claims are not in shortest form")
        return major, n

    def item(self, *, top: bool = False) -> int | bytes | str | list:
        major, n = self._head()
        if major == 0:
            return n
        if major == 1:
            return -1 - n
        if major == 2:
            return self._take(n)
        if major == 3:
            try:
                return self._take(n).decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidPayload(Problem.MALFORMED, "claims hold text that is not UTF-8") from None
        if major == 4 and top:
            if n > len(self._data):
                raise InvalidPayload(Problem.MALFORMED, "claims are cut short")
            return [self.item() for _ in range(n)]
        raise InvalidPayload(Problem.MALFORMED, "claims hold an unexpected CBOR type")

    def whole(self) -> list:
        value = self.item(top=True)
        if self._at != len(self._data) or not isinstance(value, list):
            raise InvalidPayload(Problem.MALFORMED, "claims are not one array")
        return value


_SHAPE = ((bytes, KEY_ID_BYTES), (str, None), (str, None), (int, None), (int, None), (str, None), (str, None),
          (str, None), (bytes, CONTENT_DIGEST_BYTES))


# --- keys, signing, verifying ------------------------------------------------------------

def key_id(public_key: Ed25519PublicKey) -> bytes:
    """The first 8 bytes of SHA-256 of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:KEY_ID_BYTES]


def sign(private_key: Ed25519PrivateKey, *, serial: str, kind: str, issued_at: datetime,
         place: Mapping[str, str] | None, holder_ar: str, content_digest: bytes) -> str:
    """The payload for one document. `issued_at` is aware; its seconds and UTC offset are kept."""
    offset = issued_at.utcoffset()
    if offset is None:
        raise ValueError("issued_at must carry its UTC offset")
    if len(content_digest) != CONTENT_DIGEST_BYTES:
        raise ValueError("the content digest is %d bytes" % CONTENT_DIGEST_BYTES)
    place = place or {}
    claims = _cbor([key_id(private_key.public_key()), serial, kind, int(issued_at.timestamp()),
                    int(offset.total_seconds()) // 60, place.get("ar", ""), place.get("en", ""), holder_ar,
                    bytes(content_digest)])
    signature = private_key.sign(PREFIX.encode("ascii") + claims)
    return PREFIX + base45_encode(claims + signature)


def verify(payload: str, public_keys: Iterable[Ed25519PublicKey]) -> SignedFields:
    """What a genuine payload signs, checked against whichever of `public_keys` it names.

    Raises InvalidPayload, its reason a Problem, for anything else.
    """
    if not isinstance(payload, str) or not payload.startswith(PREFIX):
        raise InvalidPayload(Problem.NOT_OURS, "not a %s payload" % PREFIX.rstrip(":"))
    signed = base45_decode(payload[len(PREFIX):])
    if len(signed) <= SIGNATURE_BYTES:
        raise InvalidPayload(Problem.MALFORMED, "too short to hold a signature")
    claims_bytes, signature = signed[:-SIGNATURE_BYTES], signed[-SIGNATURE_BYTES:]
    claims = _CborReader(claims_bytes).whole()
    if len(claims) != _CLAIM_COUNT or any(
            type(value) is not kind or (size is not None and len(value) != size)
            for value, (kind, size) in zip(claims, _SHAPE)):
        raise InvalidPayload(Problem.MALFORMED, "claims are not the expected array")
    keys = {key_id(key): key for key in public_keys}
    key = keys.get(claims[0])
    if key is None:
        raise InvalidPayload(Problem.UNKNOWN_KEY, "signed by key id %s, not one of these keys" % claims[0].hex())
    try:
        key.verify(signature, PREFIX.encode("ascii") + claims_bytes)
    except InvalidSignature:
        raise InvalidPayload(Problem.BAD_SIGNATURE, "signature does not verify") from None
    key_id_bytes, serial, kind, seconds, offset_minutes, place_ar, place_en, holder_ar, digest = claims
    try:
        if not -24 * 60 < offset_minutes < 24 * 60:
            raise ValueError("offset")
        issued_at = datetime.fromtimestamp(seconds, timezone(timedelta(minutes=offset_minutes)))
    except (ValueError, OverflowError, OSError):
        raise InvalidPayload(Problem.MALFORMED, "issue time out of range") from None
    return SignedFields(key_id=key_id_bytes, serial=serial, kind=kind, issued_at=issued_at, place_ar=place_ar,
                        place_en=place_en, holder_ar=holder_ar, content_digest=digest)


CATALOGUE_ALGORITHM = "Ed25519"


def sign_catalogue(private_key: Ed25519PrivateKey, document: dict) -> dict:
    """`document` (the catalogue as served: its version and issue time in it) with central's
    signature added as its ``signature`` member."""
    return sign_document(private_key, document, context=CATALOGUE_CONTEXT)


def sign_document(private_key: Ed25519PrivateKey, document: dict, *, context: bytes) -> dict:
    """`document` with central's signature over `signing_bytes(document, context)` added as its
    ``signature`` member: the catalogue, a command to a kiosk, the announcements, each under its own
    context (kiosk.wire), so that one is never taken for another."""
    signature = private_key.sign(signing_bytes(document, context))
    return {**document, "signature": {"alg": CATALOGUE_ALGORITHM, "key_id": key_id(private_key.public_key()).hex(),
                                      "value": base64.b64encode(signature).decode("ascii")}}


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def load_public_key_pem(pem: str | bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode("ascii") if isinstance(pem, str) else pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


class SigningKeyError(ValueError):
    """Central has no document signing key it may use, and does not start; the message names the file."""


def load_key(path: Path) -> Ed25519PrivateKey:
    """The private key in the PEM file `path`; SigningKeyError when there is none there, or not an Ed25519 key."""
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        raise SigningKeyError("signing key %s does not exist" % path) from None
    except OSError as exc:
        raise SigningKeyError("signing key %s cannot be read: %s" % (path, exc.strerror or type(exc).__name__)) \
            from None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise SigningKeyError("signing key %s: not an unencrypted PEM private key" % path) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError("signing key %s: not an Ed25519 private key" % path)
    return key


def create_key(path: Path) -> Ed25519PrivateKey:
    """A new key, written to the PEM file `path` (mode 0600); the key already there if another process
    made one first."""
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
        return load_key(path)
    finally:
        temporary.unlink()
    log.info("signing.key_created path=%s", path)
    return key


def central_key(path: Path | None, db_path: Path | None, *, documents_issued: bool) -> Ed25519PrivateKey:
    """The key central signs with, or SigningKeyError: then central must not start.

    A new key leaves every document signed before it failing verification, so
    a key is made only where no document can have been signed yet:

    - `path` given (``--signing-key``): the key must be there; a missing file
      (a mistyped path, a volume not mounted) is never replaced.
    - else the default file beside the SQLite database file `db_path`
      (`default_key_path`): read; made only while the database holds no issued
      document (`documents_issued` False).
    - else (an in-memory or a non-SQLite database): a key that lives as long
      as this process, again only while no document is issued.
    """
    if path is not None:
        if not path.exists():
            raise SigningKeyError("signing key %s does not exist: central makes no new key in place of the one "
                                  "it is given (documents it signed would no longer verify); restore the file or "
                                  "correct the path" % path)
        return load_key(path)
    default = default_key_path(db_path)
    if default is not None and default.exists():
        return load_key(default)
    if documents_issued:
        if default is None:
            raise SigningKeyError("the database holds issued documents and no signing key file is given: give "
                                  "the key that signed them (--signing-key)")
        raise SigningKeyError("signing key %s does not exist, and the database holds issued documents: a new key "
                              "would make every one of them fail verification; restore the file, or give its "
                              "place (--signing-key)" % default)
    if default is None:
        log.warning("signing.key_ephemeral")
        return Ed25519PrivateKey.generate()
    return create_key(default)


def default_key_path(db_path: Path | None) -> Path | None:
    """``central.sqlite3`` keeps its key in ``central.signing-key.pem`` beside it."""
    return None if db_path is None else db_path.with_name(db_path.stem + ".signing-key.pem")
