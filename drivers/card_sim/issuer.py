"""The card issuer's signing key (EC P-256), for simulated cards."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.issuer_keys import key_id


class IssuerKey:
    """An issuer key pair: signs EF.ID; its public half goes in the trust store."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError("an issuer key is EC P-256")
        self._private_key = private_key

    @classmethod
    def generate(cls) -> "IssuerKey":
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def load(cls, private_pem_path: str | os.PathLike[str]) -> "IssuerKey":
        key = serialization.load_pem_private_key(Path(private_pem_path).read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("%s is not an EC private key" % private_pem_path)
        return cls(key)

    def save(self, private_path: str | os.PathLike[str], public_path: str | os.PathLike[str]) -> None:
        """Write the private key (PKCS#8 PEM, mode 0600) and the public key (SPKI PEM)."""
        private_pem = self._private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(private_pem)
        Path(public_path).write_bytes(self.public_pem)

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._private_key.public_key()

    @property
    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)

    @property
    def key_id(self) -> bytes:
        """First 8 bytes of SHA-256 over the DER SubjectPublicKeyInfo (tag CF)."""
        return key_id(self.public_key)

    def sign(self, data: bytes) -> bytes:
        """DER ECDSA P-256 / SHA-256 signature over `data`."""
        return self._private_key.sign(bytes(data), ec.ECDSA(hashes.SHA256()))

    def __repr__(self) -> str:
        return "IssuerKey(key_id=%s)" % self.key_id.hex()
