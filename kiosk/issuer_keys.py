"""The card issuers' public keys a verifier trusts, by key id (tag CF of EF.ID).

Several keys at once, so an issuer key can be rotated: cards signed with the
old key stay valid while new cards carry the new one. The kiosk's card
driver and central both load them from PEM files with `load_issuer_keys`,
and check cards against them (`kiosk.card_proof`). Pure: the only I/O is
reading the PEM files handed in.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.errors import ConfigError
from kiosk.id_card_data import ISSUER_KEY_ID_LENGTH


def public_key_der(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """DER SubjectPublicKeyInfo of `public_key` (as tag D0 holds a card's key)."""
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """An issuer key's id, as tag CF names it: the first 8 bytes of SHA-256
    over its DER SubjectPublicKeyInfo."""
    return hashlib.sha256(public_key_der(public_key)).digest()[:ISSUER_KEY_ID_LENGTH]


def _is_p256(key: object) -> bool:
    return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)


class TrustStore(Mapping[bytes, ec.EllipticCurvePublicKey]):
    """Trusted issuer public keys (EC P-256), a read-only mapping key id -> key.

    Any mapping of key id to key will do where a `TrustStore` is asked for;
    this one checks that each key is P-256 and computes the ids itself.
    """

    def __init__(self, keys: Iterable[ec.EllipticCurvePublicKey] = ()) -> None:
        self._keys: dict[bytes, ec.EllipticCurvePublicKey] = {}
        for key in keys:
            if not _is_p256(key):
                raise ConfigError("an issuer key must be an EC P-256 public key")
            self._keys[key_id(key)] = key

    def __getitem__(self, issuer_key_id: bytes) -> ec.EllipticCurvePublicKey:
        if not isinstance(issuer_key_id, (bytes, bytearray)):
            raise KeyError(issuer_key_id)
        return self._keys[bytes(issuer_key_id)]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def key_ids(self) -> frozenset[bytes]:
        return frozenset(self._keys)

    def __repr__(self) -> str:
        return "TrustStore(%s)" % ", ".join(sorted(k.hex() for k in self._keys))


def load_issuer_keys(paths: Iterable[str | os.PathLike[str]]) -> TrustStore:
    """The issuer keys of these PEM files, one public key (SPKI) or
    certificate each. ConfigError, naming the file, for a file that cannot be
    read or does not hold an EC P-256 key. No paths: an empty store, which
    trusts no card."""
    keys = []
    for path in paths:
        try:
            with open(path, "rb") as handle:
                pem = handle.read()
        except OSError as exc:
            raise ConfigError("issuer key %s cannot be read: %s" % (path, exc.strerror)) from None
        keys.append(_public_key_from_pem(pem, path))
    return TrustStore(keys)


def _public_key_from_pem(pem: bytes, path: str | os.PathLike[str]) -> ec.EllipticCurvePublicKey:
    try:
        if b"BEGIN CERTIFICATE" in pem:
            key = x509.load_pem_x509_certificate(pem).public_key()
        else:
            key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise ConfigError("issuer key %s is not a PEM public key or certificate" % path) from None
    if not _is_p256(key):
        raise ConfigError("issuer key %s is not an EC P-256 key" % path)
    return key  # type: ignore[return-value]
