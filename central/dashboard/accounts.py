"""Central's staff accounts: made, listed, disabled and given a new second factor at the console
(`kiosk-central staff ...`), and checked at sign-in: the password, then a TOTP code.

A sign-in fails the same way for an unknown name, a wrong password, a wrong code, a disabled account
and a locked one, and takes as long (a password is always hashed, against a stand-in hash when no
account has the name). MAX_FAILURES failures in a row, password or code, lock the account for
LOCKOUT; while it is locked even the right password is refused. Only a whole sign-in (the code
accepted) clears the count.

The TOTP secret is kept as it was given (an authenticator app needs the same one to make codes):
whoever reads the database can make codes, but still needs the password, which is kept only hashed.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from central.dashboard import passwords, totp
from central.dashboard.audit import CONSOLE, Outcome, add_entry
from central.dashboard.roles import Role
from central.db import Database, iso_utc, utc_now
from central.models import StaffAccount, StaffSession

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


class AccountError(ValueError):
    """An account that cannot be made or changed as asked; the message says why (never a password)."""


class Verdict(enum.Enum):
    ACCEPTED = "accepted"
    WRONG = "wrong"                  # wrong password or code (or a code used already)
    LOCKED_NOW = "locked_now"        # wrong, and that failure locked the account
    LOCKED = "locked"                # refused without looking: the account is locked
    UNKNOWN = "unknown"              # no account has the name
    DISABLED = "disabled"

    @property
    def accepted(self) -> bool:
        return self is Verdict.ACCEPTED


@dataclass(frozen=True)
class SecondFactor:
    """A new TOTP secret for `username`, shown once: the URI an authenticator app reads, and the secret."""

    username: str
    secret: str
    uri: str


@dataclass(frozen=True)
class AccountRow:
    username: str
    role: str
    created_at: str
    disabled_at: str | None
    locked_until: str | None


def _factor(username: str, secret: str) -> SecondFactor:
    return SecondFactor(username, secret, totp.provisioning_uri(secret, username))


class StaffAccounts:
    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._database = database
        self._clock = clock

    # --- the console -------------------------------------------------------------------------------

    def add(self, username: str, role: Role, password: str) -> SecondFactor:
        """A new account; its TOTP secret, to show once. AccountError for a bad or taken name, or a weak
        password."""
        if not USERNAME.match(username):
            raise AccountError("a username is 2 to 64 characters: lowercase letters, digits, . _ -, first a "
                               "letter or digit")
        try:
            password_hash = passwords.hash_password(password)
        except passwords.PasswordError as exc:
            raise AccountError(str(exc)) from None
        secret, now = totp.new_secret(), self._clock()
        with self._database.writing() as session:
            if session.get(StaffAccount, username) is not None:
                raise AccountError("there is an account %s already" % username)
            session.add(StaffAccount(username=username, role=role.value, password_hash=password_hash,
                                     totp_secret=secret, failed_attempts=0, created_at=iso_utc(now)))
            add_entry(session, now, CONSOLE, "staff.add", Outcome.OK, username, "role=%s" % role.value)
        return _factor(username, secret)

    def list(self) -> list[AccountRow]:
        with self._database.reading() as session:
            return [AccountRow(a.username, a.role, a.created_at, a.disabled_at, a.locked_until)
                    for a in session.scalars(select(StaffAccount).order_by(StaffAccount.username))]

    def disable(self, username: str) -> bool:
        """Disable the account and end its sessions; False when there is no such account."""
        now = self._clock()
        with self._database.writing() as session:
            account = session.get(StaffAccount, username)
            if account is None:
                return False
            account.disabled_at = account.disabled_at or iso_utc(now)
            session.execute(delete(StaffSession).where(StaffSession.username == username))
            add_entry(session, now, CONSOLE, "staff.disable", Outcome.OK, username)
        return True

    def reset_totp(self, username: str) -> SecondFactor | None:
        """A new TOTP secret for the account (the old one stops working, its sessions end, a lock is
        lifted); None when there is no such account."""
        secret, now = totp.new_secret(), self._clock()
        with self._database.writing() as session:
            account = session.get(StaffAccount, username)
            if account is None:
                return None
            account.totp_secret, account.totp_last_step = secret, None
            account.failed_attempts, account.locked_until = 0, None
            session.execute(delete(StaffSession).where(StaffSession.username == username))
            add_entry(session, now, CONSOLE, "staff.reset_totp", Outcome.OK, username)
        return _factor(username, secret)

    # --- signing in ----------------------------------------------------------------------------------

    def check_password(self, username: str, password: str) -> Verdict:
        """The password of `username`: hashed outside the write lock, the count kept inside it."""
        with self._database.reading() as session:
            account = session.get(StaffAccount, username) if USERNAME.match(username) else None
            stored = account.password_hash if account is not None else passwords.unknown_account_hash()
        matches = passwords.verify_password(password, stored)
        if account is None:
            return Verdict.UNKNOWN
        return self._settle(username, matches, step=None)

    def check_code(self, username: str, code: str) -> Verdict:
        """The TOTP code of `username`, once its password was accepted."""
        with self._database.reading() as session:
            account = session.get(StaffAccount, username)
            if account is None:
                return Verdict.UNKNOWN
            secret, last_step = account.totp_secret, account.totp_last_step
        step = totp.accept(secret, code, self._clock().timestamp(), last_step)
        return self._settle(username, step is not None, step=step)

    def _settle(self, username: str, matched: bool, *, step: int | None) -> Verdict:
        now = self._clock()
        with self._database.writing() as session:
            account = session.get(StaffAccount, username)
            if account is None:
                return Verdict.UNKNOWN
            if account.disabled_at is not None:
                return Verdict.DISABLED
            if account.locked_until is not None and account.locked_until > iso_utc(now):
                return Verdict.LOCKED
            if matched and step is not None and account.totp_last_step is not None \
                    and step <= account.totp_last_step:
                matched = False          # the same code taken by another sign-in meanwhile
            if matched and step is None:
                # The password alone clears nothing: else a thief of the password could guess codes,
                # MAX_FAILURES - 1 at a time, between sign-ins.
                return Verdict.ACCEPTED
            if matched:
                account.failed_attempts, account.locked_until, account.totp_last_step = 0, None, step
                return Verdict.ACCEPTED
            account.failed_attempts += 1
            if account.failed_attempts >= MAX_FAILURES:
                account.failed_attempts, account.locked_until = 0, iso_utc(now + LOCKOUT)
                return Verdict.LOCKED_NOW
            return Verdict.WRONG

    def role_of(self, username: str) -> Role | None:
        """The role of an enabled account; None for none or a disabled one."""
        with self._database.reading() as session:
            account = session.get(StaffAccount, username)
            if account is None or account.disabled_at is not None:
                return None
            return Role(account.role)
