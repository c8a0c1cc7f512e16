"""The issuer public keys the kiosk trusts, by key id.

Several keys at once, so an issuer key can be rotated: cards signed with the
old key stay valid while new cards carry the new one.
"""

from __future__ import annotations

import hashlib
import os
from typing import Iterable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.errors import ConfigError

KEY_ID_LENGTH = 8


def public_key_der(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """DER SubjectPublicKeyInfo of `public_key`."""
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """First 8 bytes of SHA-256 over the DER SubjectPublicKeyInfo."""
    return hashlib.sha256(public_key_der(public_key)).digest()[:KEY_ID_LENGTH]


class TrustStore:
    """Issuer public keys (EC P-256) by key id."""

    def __init__(self, keys: Iterable[ec.EllipticCurvePublicKey] = ()) -> None:
        self._keys: dict[bytes, ec.EllipticCurvePublicKey] = {}
        for key in keys:
            if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
                raise ConfigError("an issuer key must be an EC P-256 public key")
            self._keys[key_id(key)] = key

    @classmethod
    def from_pem_files(cls, paths: Iterable[str | os.PathLike[str]]) -> "TrustStore":
        """Load one PEM public key (or certificate) from each file."""
        keys = []
        for path in paths:
            try:
                with open(path, "rb") as handle:
                    pem = handle.read()
            except OSError as exc:
                raise ConfigError("issuer key %s cannot be read: %s" % (path, exc.strerror)) from None
            keys.append(_public_key_from_pem(pem, path))
        return cls(keys)

    def get(self, issuer_key_id: bytes) -> ec.EllipticCurvePublicKey | None:
        """The key trusted under `issuer_key_id`, or None."""
        return self._keys.get(bytes(issuer_key_id))

    def __contains__(self, issuer_key_id: object) -> bool:
        return isinstance(issuer_key_id, (bytes, bytearray)) and bytes(issuer_key_id) in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def key_ids(self) -> frozenset[bytes]:
        return frozenset(self._keys)

    def __repr__(self) -> str:
        return "TrustStore(%s)" % ", ".join(sorted(k.hex() for k in self._keys))


def _public_key_from_pem(pem: bytes, path: str | os.PathLike[str]) -> ec.EllipticCurvePublicKey:
    try:
        if b"BEGIN CERTIFICATE" in pem:
            from cryptography import x509
            key = x509.load_pem_x509_certificate(pem).public_key()
        else:
            key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise ConfigError("issuer key %s is not a PEM public key or certificate" % path) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError("issuer key %s is not an EC P-256 key" % path)
    return key
