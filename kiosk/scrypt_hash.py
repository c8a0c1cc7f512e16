"""A secret kept only as its salted scrypt hash, with the parameters it was made with:
``scrypt$<log2 n>$<r>$<p>$<salt>$<hash>``, salt and hash in unpadded URL-safe base64.

The kiosk's technician PIN (kiosk/technician.py) and central's staff passwords
(central/dashboard/passwords.py) are kept this way. scrypt is memory-hard: n = 2**15, r = 8 asks
32 MiB and a tenth of a second or more per check. The parameters are read back from the hash, within
bounds that keep one check from stalling or exhausting the machine.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re

LOG2_N = 15
R = 8
P = 1
SALT_BYTES = 16
HASH_BYTES = 32
LOG2_N_RANGE = (14, 20)
MOST_BYTES = 128 * 1024 * 1024          # 128 * r * n: at most 128 MiB for one check (n = 2**17 at r = 8)
_MAXMEM = 2 * MOST_BYTES
SCHEME = "scrypt"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise ValueError("not base64")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None


def derive(secret: bytes, salt: bytes, log2_n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(secret, salt=salt, n=2 ** log2_n, r=r, p=p, maxmem=_MAXMEM, dklen=length)


def make(secret: bytes, *, log2_n: int = LOG2_N, salt: bytes | None = None) -> str:
    """The hash of `secret` under a new random salt (or `salt`), as stored."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    return "%s$%d$%d$%d$%s$%s" % (SCHEME, log2_n, R, P, b64(salt),
                                  b64(derive(secret, salt, log2_n, R, P, HASH_BYTES)))


def parse(text: str) -> tuple[int, int, int, bytes, bytes]:
    """(log2 n, r, p, salt, hash) of a stored scrypt hash; ValueError saying what is wrong, never echoing it."""
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        raise ValueError("not a scrypt hash")
    try:
        log2_n, r, p = (int(v) for v in parts[1:4])
    except ValueError:
        raise ValueError("scrypt parameters are not numbers") from None
    if not LOG2_N_RANGE[0] <= log2_n <= LOG2_N_RANGE[1] or not 1 <= r <= 16 or not 1 <= p <= 4 \
            or 128 * r * 2 ** log2_n > MOST_BYTES:
        raise ValueError("scrypt parameters out of range (log2 n %d to %d, r 1 to 16, p 1 to 4, at most 128 MiB)"
                         % LOG2_N_RANGE)
    salt, digest = unb64(parts[4]), unb64(parts[5])
    check_lengths(salt, digest)
    return log2_n, r, p, salt, digest


def check_lengths(salt: bytes, digest: bytes) -> None:
    if len(salt) < 8 or not 16 <= len(digest) <= 64:
        raise ValueError("salt of at least 8 bytes and a hash of 16 to 64 bytes expected")
