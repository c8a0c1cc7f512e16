"""Staff passwords, kept as salted scrypt hashes with their parameters: ``scrypt$<log2 n>$<r>$<p>$<salt>$<hash>``
(salt and hash in unpadded URL-safe base64): kiosk/scrypt_hash.py, the form of the kiosk's technician PIN too.

scrypt is memory-hard: n = 2**15, r = 8 asks 32 MiB and about a tenth of a second per check, so a
stolen table of hashes is slow to guess through on any hardware. Each password has its own salt;
the parameters are read back from the hash, so they can be raised later without breaking the
accounts already made (``needs_rehash`` says when a hash was made with less).
"""

from __future__ import annotations

import functools
import hmac

from kiosk import scrypt_hash

LOG2_N = scrypt_hash.LOG2_N
R = scrypt_hash.R
MIN_LENGTH = 12
MAX_LENGTH = 1024                                   # scrypt takes any length; a form does not need more


class PasswordError(ValueError):
    """A password that may not be set (too short, too long): the message never holds it."""


def check_strength(password: str) -> None:
    """PasswordError unless `password` is MIN_LENGTH to MAX_LENGTH characters."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise PasswordError("a staff password is %d to %d characters" % (MIN_LENGTH, MAX_LENGTH))


def hash_password(password: str, *, log2_n: int = LOG2_N, salt: bytes | None = None) -> str:
    """The salted scrypt hash of `password`, with its parameters (PasswordError for one too short)."""
    check_strength(password)
    return scrypt_hash.make(password.encode("utf-8"), log2_n=log2_n, salt=salt)


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` is the one `stored` was made from; an unreadable hash matches nothing.
    Slow on purpose; the comparison takes the same time wherever the bytes differ."""
    try:
        log2_n, r, p, salt, digest = scrypt_hash.parse(stored)
    except ValueError:
        return False
    if len(password) > MAX_LENGTH:
        return False
    return hmac.compare_digest(scrypt_hash.derive(password.encode("utf-8"), salt, log2_n, r, p, len(digest)), digest)


def needs_rehash(stored: str) -> bool:
    """Whether `stored` was made with a lower cost than today's (or cannot be read)."""
    try:
        log2_n, r, _p, _salt, _digest = scrypt_hash.parse(stored)
    except ValueError:
        return True
    return log2_n < LOG2_N or r < R


@functools.cache
def unknown_account_hash() -> str:
    """Checked against when no account has the name given, so that an unknown name takes as long as a
    known one."""
    return hash_password("no account has this password", salt=b"\0" * scrypt_hash.SALT_BYTES)
