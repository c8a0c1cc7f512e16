"""Who is asking: every kiosk call is signed with its device key (HTTP Message Signatures, RFC 9421).

The kiosk signs the method, the authority and the target URI, and its body
through the Content-Digest field (RFC 9530), with Ed25519, its device id as
the ``keyid``, a ``created`` time and a ``nonce`` (requests-http-signature on
the kiosk, http-message-signatures here). Central looks the key up by that
id among enrolled devices, so the device id comes from the credential, never
from a body. A signature older than `wire.SIGNATURE_MAX_AGE_S` (or more than
a few seconds in the future) is refused, and a nonce already seen within that
age is a replay.

Refusals are 401 ``{"status": "error", "reason": "unauthenticated" |
"unknown_device" | "replayed"}`` and 403 ``device_revoked``; the kiosk shows
itself out of service on all but a replay (which it only sends again, signed
anew). A device that asks too often gets 429 (central/limits.py).
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import Request
from fastapi.responses import JSONResponse
from http_message_signatures import HTTPSignatureKeyResolver
from http_message_signatures.exceptions import HTTPMessageSignaturesException
from requests_http_signature import HTTPSignatureAuth, algorithms
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from central.db import Database, iso_utc, utc_now
from central.models import Device, SeenSignature
from kiosk import wire

log = logging.getLogger(__name__)

LAST_SEEN_EVERY_S = 60      # a device's last_seen_at is written at most this often


class DeviceRefused(Exception):
    """The caller is not a kiosk central serves now: `reason` is one of `wire.DEVICE_REFUSALS`."""

    def __init__(self, reason: str, http_status: int = 401, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.http_status = http_status
        self.retry_after_s = retry_after_s


def refusal_response(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DeviceRefused)
    headers = {"Retry-After": "%d" % max(1, round(exc.retry_after_s))} if exc.retry_after_s is not None else None
    return JSONResponse({"status": "error", "reason": exc.reason}, status_code=exc.http_status, headers=headers)


class _EnrolledKeys(HTTPSignatureKeyResolver):
    """Public keys of enrolled devices, by device id; remembers the row it found for the caller."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self.device: Device | None = None

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey:
        if not wire.is_id(key_id):
            raise DeviceRefused("unknown_device")
        with self._database.reading() as session:
            self.device = session.get(Device, key_id)
        if self.device is None:
            raise DeviceRefused("unknown_device")
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(self.device.public_key))

    def resolve_private_key(self, key_id: str) -> None:
        raise NotImplementedError("central signs nothing with a device's key")


class DeviceAuthenticator:
    """Checks a request's signature and its freshness; the device id it proves.

    `take_turn` (a rate limiter's ``take``) answers None to let the device go on, or the seconds it
    must wait (429)."""

    def __init__(self, database: Database, *, take_turn: Callable[[str], float | None] | None = None,
                 max_age_s: float = wire.SIGNATURE_MAX_AGE_S, clock: Callable[[], float] = time.time) -> None:
        self._database = database
        self._take_turn = take_turn
        self._max_age_s = max_age_s
        self._clock = clock

    async def __call__(self, request: Request) -> str:
        """A FastAPI dependency: the authenticated device id, or DeviceRefused."""
        if "signature" not in request.headers or "signature-input" not in request.headers:
            raise DeviceRefused("unauthenticated")
        body = await request.body()
        # The path as sent, percent-encoding and all (the kiosk signed that), not as decoded for routing.
        raw_path = request.scope.get("raw_path")
        url = request.url.replace(path=raw_path.decode("latin-1")) if raw_path else request.url
        return await run_in_threadpool(self.authenticate, request.method, str(url), request.headers.items(), body)

    def authenticate(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> str:
        message = requests.Request(method, url, headers=dict(headers), data=body).prepare()
        keys = _EnrolledKeys(self._database)
        try:
            result = HTTPSignatureAuth.verify(message, signature_algorithm=algorithms.ED25519, key_resolver=keys,
                                              require_components=wire.SIGNED_COMPONENTS,
                                              max_age=datetime.timedelta(seconds=self._max_age_s))
        except DeviceRefused:
            raise
        except (HTTPMessageSignaturesException, ValueError, KeyError, TypeError) as exc:
            if isinstance(exc.__cause__, DeviceRefused):   # the key resolver's refusal, wrapped by the verifier
                log.warning("auth.refused reason=%s", exc.__cause__.reason)
                raise exc.__cause__ from None
            log.warning("auth.refused reason=bad_signature error=%s", type(exc).__name__)
            raise DeviceRefused("unauthenticated") from None
        device = keys.device
        if device is None or result.parameters.get("keyid") != device.device_id:
            raise DeviceRefused("unauthenticated")
        if device.revoked_at is not None:
            log.warning("auth.refused reason=revoked device=%s", device.device_id)
            raise DeviceRefused("device_revoked", 403)
        nonce, created = result.parameters.get("nonce"), result.parameters.get("created")
        if not isinstance(nonce, str) or not 16 <= len(nonce) <= 64 or not isinstance(created, int):
            log.warning("auth.refused reason=no_nonce device=%s", device.device_id)
            raise DeviceRefused("unauthenticated")
        self._remember(device, nonce, created)
        if self._take_turn is not None:
            wait = self._take_turn(device.device_id)
            if wait is not None:
                log.warning("auth.rate_limited device=%s", device.device_id)
                raise DeviceRefused("rate_limited", 429, retry_after_s=wait)
        return device.device_id

    def _remember(self, device: Device, nonce: str, created: int) -> None:
        """The nonce kept (a replay within the age limit is refused); older ones forgotten."""
        now = self._clock()
        try:
            with self._database.writing() as session:
                session.execute(delete(SeenSignature).where(SeenSignature.created < now - 2 * self._max_age_s))
                session.add(SeenSignature(device_id=device.device_id, nonce=nonce, created=created))
                if device.last_seen_at is None or device.last_seen_at < iso_utc(
                        utc_now() - datetime.timedelta(seconds=LAST_SEEN_EVERY_S)):
                    row = session.get(Device, device.device_id)
                    if row is not None:
                        row.last_seen_at = iso_utc(utc_now())
        except IntegrityError:
            log.warning("auth.refused reason=replayed device=%s", device.device_id)
            raise DeviceRefused(wire.REPLAYED) from None
