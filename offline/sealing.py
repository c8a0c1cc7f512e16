"""Personal data sealed at rest: AES-GCM under the kiosk's own device key.

What the outbox keeps about a citizen (a certificate request's national and
card numbers, the issued document with its names) is written to the disk
only sealed, so neither the database file, nor its write-ahead log, nor a
page SQLite freed, ever holds it in clear. The key is 32 random bytes in a
file of its own (0600, in the state directory, which is 0700), made at the
first start and never written into the database: a copy of the database
alone opens nothing.

Each value gets a fresh random 96-bit nonce and is bound to where it is kept
(`where`: the column and the message id, as AES-GCM's associated data), so a
sealed value copied into another row or column does not open. A value that
does not open (another key, damaged bytes) is a `SealError`.

A damaged key file (not 32 bytes) is moved aside, reported, and a new key
made: what was sealed under the old one can no longer be opened, and the
outbox treats such messages as refused (a technician sees them as dead
letters); the kiosk itself keeps working.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import weakref
from pathlib import Path
from typing import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kiosk.atomic_file import sync_directory
from kiosk.errors import QueueError
from offline.database import make_private_dir

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
KEY_FILE = "device.key"
_FORMAT = b"\x01"          # the first byte of every sealed value: how it was sealed
_FILE_MODE = 0o600

Alert = Callable[[str], None]


class SealError(QueueError):
    """A sealed value that does not open: sealed under another key, or damaged."""


class Sealer:
    """Seals and opens JSON values under one key. It keeps the key only inside AES-GCM's
    object, and neither its repr nor an error ever shows a value."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("a device key is %d bytes" % KEY_BYTES)
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "Sealer()"

    @classmethod
    def ephemeral(cls) -> Sealer:
        """A key that lives in memory only: for a database in memory, where nothing is at rest."""
        return cls(AESGCM.generate_key(bit_length=KEY_BYTES * 8))

    @classmethod
    def from_key_file(cls, path: Path | str, *, alert: Alert | None = None) -> Sealer:
        return cls(load_or_create_key(Path(path), alert=alert))

    def seal(self, value: object, *, where: str) -> bytes:
        """`value` as JSON, sealed and bound to `where` (e.g. ``payload:req-1``)."""
        nonce = os.urandom(NONCE_BYTES)
        data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return _FORMAT + nonce + self._aead.encrypt(nonce, data, where.encode("utf-8"))

    def unseal(self, sealed: bytes, *, where: str) -> object:
        """The value sealed with `where`; SealError when it does not open."""
        if not isinstance(sealed, bytes) or len(sealed) < 1 + NONCE_BYTES + 16 or sealed[:1] != _FORMAT:
            raise SealError("not a sealed value (%s)" % where)
        try:
            data = self._aead.decrypt(sealed[1:1 + NONCE_BYTES], sealed[1 + NONCE_BYTES:], where.encode("utf-8"))
        except InvalidTag:
            raise SealError("a sealed value does not open with this kiosk's key (%s)" % where) from None
        return json.loads(data.decode("utf-8"))


_EPHEMERAL: "weakref.WeakKeyDictionary[object, Sealer]" = weakref.WeakKeyDictionary()


def ephemeral_for(owner: object) -> Sealer:
    """One in-memory key per `owner` (a database in memory), so that every store opened on it
    (the next run of a test, on the same database) opens what an earlier one sealed."""
    sealer = _EPHEMERAL.get(owner)
    if sealer is None:
        sealer = _EPHEMERAL[owner] = Sealer.ephemeral()
    return sealer


def default_key_path(database_path: Path | str) -> Path:
    """Where the device key lives when the configuration does not say: beside the database."""
    return Path(database_path).parent / KEY_FILE


def load_or_create_key(path: Path, *, alert: Alert | None = None) -> bytes:
    """The device key in `path`, made (32 random bytes, 0600) when there is none; a damaged one is
    moved aside, reported, and replaced. QueueError when the key can be neither read nor made."""
    try:
        make_private_dir(path.parent)
        try:
            key = path.read_bytes()
        except FileNotFoundError:
            return _create_key(path)
        if path.stat().st_mode & 0o777 != _FILE_MODE:
            os.chmod(path, _FILE_MODE)
        if len(key) == KEY_BYTES:
            return key
        aside = path.with_name("%s.damaged-%s" % (path.name, time.strftime("%Y%m%dT%H%M%S")))
        os.replace(path, aside)
        log.critical("sealing.key_damaged path=%s moved_to=%s: what was sealed under it cannot be opened",
                     path, aside.name)
        if alert is not None:
            alert("state.device_key_replaced")
        return _create_key(path)
    except OSError as exc:
        raise QueueError("cannot read or make the device key at %s: %s" % (path, exc.strerror or exc)) from exc


def _create_key(path: Path) -> bytes:
    """A new key, written whole or not at all: a private temporary file, linked into place only
    if no other process made one meanwhile (then that one is used)."""
    key = os.urandom(KEY_BYTES)
    temporary = path.with_name(".%s.%d.tmp" % (path.name, os.getpid()))
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)
    except FileExistsError:
        key = path.read_bytes()
    finally:
        os.unlink(temporary)
    _sync_dir(path.parent)
    log.info("sealing.key_created path=%s", path)
    return key


def _sync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        sync_directory(directory)

