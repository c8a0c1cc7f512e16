"""The staff's second factor: time-based one-time passwords (RFC 6238 over RFC 4226's HOTP).

A code is 6 digits from HMAC-SHA1 over the count of 30-second steps since the epoch, as every
authenticator app makes it from the secret it was given (``otpauth://`` URI, base32 secret). Central
takes a code for the step it is in or the one before or after (a phone's clock a little off, a code
typed as it changed), and each step's code once only: ``accept`` answers the step it matched, which
the caller keeps, and refuses any code of that step or an earlier one after.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import struct
from urllib.parse import quote, urlencode

STEP_S = 30
DIGITS = 6
WINDOW = 1                          # steps either side of now that are still taken
SECRET_BYTES = 20                   # 160 bits, as RFC 4226 recommends
ISSUER = "Kiosk central"


def new_secret() -> str:
    """A random secret, base32 without padding (what authenticator apps are given)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")


def _key(secret: str) -> bytes:
    text = secret.strip().replace(" ", "").upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


def hotp(key: bytes, counter: int, *, digits: int = DIGITS, digest: str = "sha1") -> str:
    """RFC 4226: the code for `counter` under `key` (dynamic truncation of the HMAC)."""
    mac = hmac.new(key, struct.pack(">Q", counter), digest).digest()
    offset = mac[-1] & 0x0F
    number = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10 ** digits).zfill(digits)


def step_at(unix_time: float) -> int:
    return int(unix_time // STEP_S)


def code_at(secret: str, unix_time: float) -> str:
    """The code an authenticator app shows for `secret` at `unix_time`."""
    return hotp(_key(secret), step_at(unix_time))


def accept(secret: str, code: str, unix_time: float, last_step: int | None) -> int | None:
    """The step whose code `code` is, when it is within WINDOW steps of now and later than `last_step`
    (the step of the last code taken); None otherwise."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    key, now = _key(secret), step_at(unix_time)
    matched = None
    for step in range(now - WINDOW, now + WINDOW + 1):
        # Every step compared, in constant time, whatever matched: the answer's timing says nothing.
        if hmac.compare_digest(hotp(key, step), code) and matched is None:
            matched = step
    if matched is None or (last_step is not None and matched <= last_step):
        return None
    return matched


def provisioning_uri(secret: str, username: str, *, issuer: str = ISSUER) -> str:
    """``otpauth://totp/<issuer>:<user>?secret=...``: what an authenticator app reads (often from a QR code)."""
    label = quote("%s:%s" % (issuer, username), safe="")
    query = urlencode({"secret": secret, "issuer": issuer, "algorithm": "SHA1", "digits": DIGITS,
                       "period": STEP_S}, quote_via=quote)
    return "otpauth://totp/%s?%s" % (label, query)
