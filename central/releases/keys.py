"""The release signing keys: Ed25519, each a PKCS#8 PEM file that only its owner reads (0600).

The root keys live offline with central staff (one file each, on their own
media); the online keys of the targets, snapshot and timestamp roles stay in
the repository's `keys/` directory, for `publish` and `refresh`. A file is
written whole or not at all, and never over another key.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner

from kiosk.atomic_file import write_atomically

ROOT = "root"
ONLINE_ROLES = ("targets", "snapshot", "timestamp")
ROLES = (ROOT, *ONLINE_ROLES)
_LARGEST_KEY_FILE = 16 * 1024


class KeyFileError(ValueError):
    """A key file that is missing, unreadable, or not an Ed25519 private key."""


def generate() -> CryptoSigner:
    return CryptoSigner.generate_ed25519()


def short_id(signer_or_keyid: CryptoSigner | str) -> str:
    """The first 16 hex digits of a key id: how a key is named to staff and in its file name."""
    keyid = signer_or_keyid if isinstance(signer_or_keyid, str) else signer_or_keyid.public_key.keyid
    return keyid[:16]


def write(path: Path, signer: CryptoSigner) -> Path:
    """The private key at `path` (0600, its directory made 0700); FileExistsError rather than replace a key."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.exists():
        raise FileExistsError("%s exists already: a key is never written over" % path)
    write_atomically(path, signer.private_bytes, mode=0o600)
    return path


def load(path: Path) -> CryptoSigner:
    """The signer in the PEM file at `path`; KeyFileError naming the file otherwise."""
    try:
        with path.open("rb") as file:
            data = file.read(_LARGEST_KEY_FILE + 1)
    except OSError as exc:
        raise KeyFileError("%s: %s" % (path, exc.strerror or type(exc).__name__)) from None
    try:
        key = load_pem_private_key(data, password=None) if len(data) <= _LARGEST_KEY_FILE else None
    except (ValueError, TypeError):       # TypeError: an encrypted key, and no password given
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError("%s: not an Ed25519 private key (PKCS#8 PEM, unencrypted)" % path)
    return CryptoSigner(key)


def move(source: Path, target: Path) -> None:
    """A pending key takes its role's place (same directory tree: one rename, then the directory synced)."""
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.replace(source, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
