"""The kiosks central serves: enrolment with a one-time code, the list, revocation.

Central staff issue a code for a device id (`kiosk-central devices enrol-code
DEVICE_ID`); a technician types it on the device (`kiosk provision`), which
makes its key pair and enrols the public key:

    POST /api/v1/devices/enrol {"device_id", "code", "public_key": <hex of the raw Ed25519 key>}
        200 {"device_id", "enrolled_at", "signing_key": <central's public key, PEM>,
             "signing_key_id": <hex>}
        422 {"status": "rejected", "reason": "enrolment_refused"}     (unknown, used, expired, another device's)

A code is 20 characters from an alphabet read aloud without doubt, in groups
of four (about 98 bits); central keeps only its SHA-256, and takes it once,
before it expires. Enrolling a device again (a new code) replaces its key and
lifts a revocation: that is how a repaired kiosk comes back.

A code may name the governorate the kiosk stands in (a code: `damascus`); the device takes it when
it enrols (at once, when it is enrolled already), for the fleet's listings and the dashboard.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import Field
from sqlalchemy import select

from central.db import Database, iso_utc, utc_now
from central.models import Device, EnrolmentCode
from central.wire import Answer, Body, Identifier, rejected

log = logging.getLogger(__name__)

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"   # no 0/O, 1/I/L, U
CODE_GROUPS = 5
DEFAULT_CODE_LIFETIME = timedelta(hours=72)
GOVERNORATE = re.compile(r"[a-z][a-z0-9_-]{0,63}")


class EnrolBody(Body):
    device_id: Identifier
    code: Annotated[str, Field(min_length=8, max_length=40)]
    public_key: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


@dataclass(frozen=True)
class DeviceRow:
    """A device as `kiosk-central devices list` shows it."""

    device_id: str
    enrolled_at: str
    revoked_at: str | None
    last_seen_at: str | None
    governorate: str | None = None


def normalise_code(code: str) -> str:
    """The code as typed (any case, dashes or spaces) to the form whose digest is kept."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


def _digest(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode("ascii", "replace")).hexdigest()


def new_code() -> str:
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(4 * CODE_GROUPS))
    return "-".join(chars[i:i + 4] for i in range(0, len(chars), 4))


class Devices:
    """Enrolment codes and enrolled devices, in central's database."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def issue_code(self, device_id: str, lifetime: timedelta = DEFAULT_CODE_LIFETIME, *,
                   governorate: str | None = None) -> tuple[str, str]:
        """A new one-time code for `device_id` and when it expires (ISO UTC). `governorate` (a code) is the
        device's from its enrolment on, or at once when it is enrolled already; ValueError when not a code."""
        if governorate is not None and GOVERNORATE.fullmatch(governorate) is None:
            raise ValueError("a governorate is a code: lower-case letters, digits, - and _ (e.g. damascus)")
        code, now = new_code(), utc_now()
        expires_at = iso_utc(now + lifetime)
        with self._database.writing() as session:
            session.add(EnrolmentCode(code_digest=_digest(code), device_id=device_id, created_at=iso_utc(now),
                                      expires_at=expires_at, governorate=governorate))
            device = session.get(Device, device_id)
            if device is not None and governorate is not None:
                device.governorate = governorate
        log.info("devices.code_issued device=%s expires_at=%s", device_id, expires_at)
        return code, expires_at

    def enrol(self, body: EnrolBody) -> str | None:
        """Enrol `body.public_key` for `body.device_id`; the time of enrolment, or None (refused: the reason
        goes to the log only, so a code cannot be probed)."""
        now = iso_utc(utc_now())
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(body.public_key))
        except ValueError:
            log.warning("devices.enrol_refused device=%s reason=bad_key", body.device_id)
            return None
        with self._database.writing() as session:
            code = session.get(EnrolmentCode, _digest(body.code))
            reason = ("unknown_code" if code is None else "used_code" if code.used_at is not None
                      else "expired_code" if code.expires_at <= now
                      else "other_device" if code.device_id != body.device_id else None)
            if reason is not None:
                log.warning("devices.enrol_refused device=%s reason=%s", body.device_id, reason)
                return None
            code.used_at = now
            device = session.get(Device, body.device_id)
            if device is None:
                session.add(Device(device_id=body.device_id, public_key=body.public_key, enrolled_at=now,
                                   governorate=code.governorate))
            else:
                device.public_key, device.enrolled_at, device.revoked_at = body.public_key, now, None
                device.governorate = code.governorate or device.governorate
        log.info("devices.enrolled device=%s", body.device_id)
        return now

    def revoke(self, device_id: str) -> bool:
        """Revoke `device_id`; False when no such device is enrolled."""
        with self._database.writing() as session:
            device = session.get(Device, device_id)
            if device is None:
                return False
            if device.revoked_at is None:
                device.revoked_at = iso_utc(utc_now())
                log.info("devices.revoked device=%s", device_id)
            # Its unused codes go too: a stolen code cannot bring it back.
            for code in session.scalars(select(EnrolmentCode).where(EnrolmentCode.device_id == device_id,
                                                                    EnrolmentCode.used_at.is_(None))):
                code.used_at = device.revoked_at
            return True

    def list(self) -> list[DeviceRow]:
        with self._database.reading() as session:
            return [DeviceRow(d.device_id, d.enrolled_at, d.revoked_at, d.last_seen_at, d.governorate)
                    for d in session.scalars(select(Device).order_by(Device.device_id))]

    def enrolment_answer(self, body: EnrolBody, signing_key_pem: str, signing_key_id: str) -> Answer:
        enrolled_at = self.enrol(body)
        if enrolled_at is None:
            return rejected("enrolment_refused")
        return Answer(200, {"device_id": body.device_id, "enrolled_at": enrolled_at,
                            "signing_key": signing_key_pem, "signing_key_id": signing_key_id})
