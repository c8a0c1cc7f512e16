"""Where the kiosk's catalogue comes from: central when it answers, else the signed copy the kiosk kept.

Central signs the catalogue it serves (Ed25519, see kiosk.catalogue's
`signing_bytes`); the kiosk holds central's public key (``central.catalogue_key``)
and checks the signature of every catalogue it gets, fresh or kept:

* central answers with a catalogue whose signature verifies: it is used, and
  kept on the disk (`CatalogueCache`) with the time it was fetched, when it
  differs from the copy kept or the copy is an hour older;
* central cannot be reached (or answers with a catalogue that does not
  verify): the newest copy the kiosk holds, in memory or on the disk, is used
  when its signature verifies and central signed it less than
  ``catalogue.max_age_h`` ago; a copy altered on the disk, signed by a key
  the kiosk does not hold, or too old, is not used, and the kiosk says why
  in its log (``catalogue.copy_refused reason=...``). With no usable copy the
  catalogue it showed is dropped: the kiosk is out of service, as with no
  catalogue at all.

A kiosk without central's key (no ``central.catalogue_key``) checks nothing
and keeps nothing: central's catalogue is used as it comes, and while central
cannot be reached the one in memory stays (as before catalogues were signed).

The age is the kiosk's clock less central's signing time (``issued_at``, in
the signed document), so it cannot be made younger on the disk; a copy
signed more than `CLOCK_SKEW_S` in the future is refused too (a clock that
is wrong either way). No personal data is in a catalogue.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.catalogue import SIGNATURE_CONTEXT, Catalogue, signing_bytes
from kiosk.central_client import catalogue_from_json
from kiosk.errors import CentralError, ConfigError, QueueError
from kiosk.ports.catalogue_cache import CachedCatalogue, CatalogueCache
from kiosk.ports.central import Central

log = logging.getLogger(__name__)

ALGORITHM = "Ed25519"
KEY_ID_BYTES = 8
CLOCK_SKEW_S = 600.0             # a copy signed this far in the future is still taken (clocks differ a little)
REWRITE_AFTER_S = 3600.0         # the same catalogue is written again once the copy kept is this much older


class Refusal(str, enum.Enum):
    """Why a catalogue (fresh or kept) is not used."""

    MALFORMED = "malformed"          # not a signed catalogue document
    UNKNOWN_KEY = "unknown_key"      # signed by a key the kiosk does not hold
    BAD_SIGNATURE = "bad_signature"  # the key is known, the signature does not verify: altered
    TOO_OLD = "too_old"              # signed longer ago than catalogue.max_age_h
    FROM_THE_FUTURE = "from_the_future"


class CatalogueRefused(ValueError):
    def __init__(self, reason: Refusal, problem: str = "") -> None:
        super().__init__("%s%s" % (reason.value, ": " + problem if problem else ""))
        self.reason = reason


@dataclass(frozen=True)
class SignedCatalogue:
    catalogue: Catalogue
    issued_at: float                 # when central signed it (wall time, seconds)
    document: dict                   # as central served it, for the disk


@dataclass(frozen=True)
class Supplied:
    """What one load gave: the catalogue to show (None: none), whether it is the kiosk's own copy
    (central could not be reached), and whether what was shown before must go (too old, refused)."""

    catalogue: Catalogue | None
    cached: bool = False
    expired: bool = False


def key_id(public_key: Ed25519PublicKey) -> bytes:
    """As central names its keys: the first 8 bytes of SHA-256 of the raw public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:KEY_ID_BYTES]


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Central's public key from a PEM file; ConfigError naming the file when it is not one."""
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except FileNotFoundError:
        raise ConfigError("`central.catalogue_key`: no such file %s (`kiosk provision` writes it)" % path) from None
    except (OSError, ValueError) as exc:
        raise ConfigError("`central.catalogue_key`: %s is not a PEM public key (%s)" % (path, type(exc).__name__)) \
            from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError("`central.catalogue_key`: %s is not an Ed25519 public key" % path)
    return key


def check_signature(document: object, keys: Iterable[Ed25519PublicKey], *,
                    context: bytes = SIGNATURE_CONTEXT) -> dict:
    """`document` when it is a dict whose ``signature`` is central's over `signing_bytes(document,
    context)`, by one of `keys`; CatalogueRefused (its `reason` a Refusal) otherwise. The one check of
    what central signs: the catalogue, a command (kiosk/commands.py), the announcements, each under
    its own context (kiosk.wire)."""
    if not isinstance(document, dict) or not isinstance(document.get("signature"), dict):
        raise CatalogueRefused(Refusal.MALFORMED, "no signature")
    signature = document["signature"]
    if signature.get("alg") != ALGORITHM:
        raise CatalogueRefused(Refusal.MALFORMED, "not an Ed25519 signature")
    try:
        named = bytes.fromhex(str(signature.get("key_id", "")))
        value = base64.b64decode(str(signature.get("value", "")), validate=True)
    except (ValueError, binascii.Error):
        raise CatalogueRefused(Refusal.MALFORMED, "signature not readable") from None
    key = {key_id(k): k for k in keys}.get(named)
    if key is None:
        raise CatalogueRefused(Refusal.UNKNOWN_KEY, "key id %s" % named.hex())
    try:
        key.verify(value, signing_bytes(document, context))
    except InvalidSignature:
        raise CatalogueRefused(Refusal.BAD_SIGNATURE) from None
    return document


def verify(document: object, keys: Iterable[Ed25519PublicKey]) -> SignedCatalogue:
    """The catalogue `document` holds, when central's signature over it verifies with one of `keys`;
    CatalogueRefused (its `reason` a Refusal) otherwise. The age is not looked at here."""
    document = check_signature(document, keys)
    try:
        issued = datetime.fromisoformat(str(document.get("issued_at", "")))
        if issued.tzinfo is None:
            raise ValueError("no time zone")
        catalogue = catalogue_from_json(document)
    except ValueError as exc:
        raise CatalogueRefused(Refusal.MALFORMED, str(exc)) from None
    return SignedCatalogue(catalogue, issued.timestamp(), document)


class CatalogueSupply:
    def __init__(self, central: Central, *, keys: Iterable[Ed25519PublicKey] = (),
                 cache: CatalogueCache | None = None, max_age_s: float = 72 * 3600.0,
                 clock: Callable[[], float] = time.time) -> None:
        """`keys`: central's public keys (none: nothing is checked or kept); `cache`: where the copy
        is kept (None: in memory only); `clock`: wall time."""
        self._central = central
        self._keys = tuple(keys)
        self._cache = cache if self._keys else None
        self._max_age_s = max_age_s
        self._clock = clock
        self._held: SignedCatalogue | None = None       # the last one that verified: fresh, or read back
        self._written: tuple[str, float] | None = None  # (version, issued_at) of the copy on the disk

    def load(self) -> Supplied:
        """Central's catalogue now, else the copy; called on the runtime's catalogue worker."""
        if not self._keys:
            try:
                return Supplied(self._central.fetch_catalogue())
            except CentralError as exc:
                log.warning("catalogue.unavailable error=%s", type(exc).__name__)
                return Supplied(None)
        try:
            fresh = verify(self._central.fetch_signed_catalogue(), self._keys)
        except CentralError as exc:
            log.warning("catalogue.unavailable error=%s", type(exc).__name__)
        except CatalogueRefused as exc:
            log.error("catalogue.refused source=central reason=%s", exc.reason.value)
        else:
            self._held = fresh
            self._keep(fresh)
            return Supplied(fresh.catalogue)
        return self._kept()

    # -- the copy -------------------------------------------------------------------------------------

    def _keep(self, fresh: SignedCatalogue) -> None:
        """Write the fresh catalogue to the disk when it differs from the copy, or the copy is old."""
        if self._cache is None:
            return
        if self._written is None:
            on_disk = self._read()
            self._written = (on_disk.catalogue.version, on_disk.issued_at) if on_disk is not None else None
        if self._written is not None and self._written[0] == fresh.catalogue.version \
                and fresh.issued_at - self._written[1] < REWRITE_AFTER_S:
            return
        try:
            self._cache.save(CachedCatalogue(fresh.document, self._clock()))
        except QueueError as exc:
            log.error("catalogue.copy_unwritten error=%s", exc)
            return
        self._written = (fresh.catalogue.version, fresh.issued_at)
        log.info("catalogue.copy_kept version=%s", fresh.catalogue.version)

    def _read(self) -> SignedCatalogue | None:
        """The copy on the disk when its signature verifies (its age aside); None otherwise."""
        if self._cache is None:
            return None
        kept = self._cache.load()
        if kept is None:
            return None
        try:
            return verify(kept.document, self._keys)
        except CatalogueRefused as exc:
            log.error("catalogue.copy_refused reason=%s", exc.reason.value)
            return None

    def _kept(self) -> Supplied:
        """Central could not be reached: the newest copy held that is young enough, or none (and what
        was shown goes)."""
        candidates = [c for c in (self._held, self._read()) if c is not None]
        if not candidates:
            log.warning("catalogue.no_copy")
            return Supplied(None, expired=True)
        newest = max(candidates, key=lambda c: c.issued_at)
        age = self._clock() - newest.issued_at
        if age > self._max_age_s:
            log.error("catalogue.copy_refused reason=%s age_h=%.1f", Refusal.TOO_OLD.value, age / 3600)
            return Supplied(None, expired=True)
        if age < -CLOCK_SKEW_S:
            log.error("catalogue.copy_refused reason=%s", Refusal.FROM_THE_FUTURE.value)
            return Supplied(None, expired=True)
        self._held = newest
        log.info("catalogue.copy_used version=%s age_h=%.1f", newest.catalogue.version, age / 3600)
        return Supplied(newest.catalogue, cached=True)
