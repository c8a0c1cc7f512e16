"""`kiosk-central staff ...`: central's staff accounts, at central's console.

    kiosk-central staff add USER --role publisher|operator|viewer [--db URL]
    kiosk-central staff list | disable USER | reset-totp USER [--db URL]

`add` asks for the password (twice, not echoed, at a terminal; one line on standard input otherwise), at
least 12 characters, and prints the account's second factor once: the otpauth:// URI for an
authenticator app (most read it from a QR code made of it) and the secret, to type in by hand. Central
keeps the password only as its scrypt hash. `disable` ends the account's sessions and refuses it from
then on; `reset-totp` gives a new secret (shown once; the old one stops working, its sessions end, a
lock is lifted). Each is written in the staff audit trail. Exit 2: a bad or taken name, a weak password,
no such account.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from central.dashboard.accounts import AccountError, SecondFactor, StaffAccounts
from central.dashboard.roles import Role
from central.db import Database
from central.seeding import prepare_database

STAFF_HELP = __doc__.split("\n\n", 1)[1]


def _open(db_url: str) -> tuple[Database, StaffAccounts]:
    database = Database(db_url)
    prepare_database(database)
    return database, StaffAccounts(database)


def _read_password() -> str | None:
    """The new password: asked twice at a terminal (None when they differ), else one line of stdin."""
    if sys.stdin.isatty():
        import getpass
        password = getpass.getpass("password for the new account (at least 12 characters): ")
        if getpass.getpass("the same password again: ") != password:
            return None
        return password
    return sys.stdin.readline().rstrip("\r\n")


def _print_factor(factor: SecondFactor) -> None:
    print("second factor for %s (shown once: add it to an authenticator app now)" % factor.username)
    print("uri: %s" % factor.uri)
    print("secret: %s" % factor.secret)


def _add(args: argparse.Namespace) -> int:
    password = _read_password()
    if password is None:
        print("kiosk-central staff add: the two passwords differ", file=sys.stderr)
        return 2
    database, accounts = _open(args.db)
    try:
        factor = accounts.add(args.username, Role(args.role), password)
    except AccountError as exc:
        print("kiosk-central staff add: %s" % exc, file=sys.stderr)
        return 2
    finally:
        database.dispose()
    print("%s: %s account made" % (args.username, args.role))
    _print_factor(factor)
    return 0


def _list(args: argparse.Namespace) -> int:
    database, accounts = _open(args.db)
    try:
        rows = accounts.list()
    finally:
        database.dispose()
    for row in rows:
        state = "disabled %s" % row.disabled_at if row.disabled_at else \
            "locked until %s" % row.locked_until if row.locked_until else "active"
        print("%s\t%s\tmade %s\t%s" % (row.username, row.role, row.created_at, state))
    return 0


def _disable(args: argparse.Namespace) -> int:
    database, accounts = _open(args.db)
    try:
        done = accounts.disable(args.username)
    finally:
        database.dispose()
    if not done:
        print("kiosk-central staff disable: no account %s" % args.username, file=sys.stderr)
        return 2
    print("%s: disabled; its sessions are ended" % args.username)
    return 0


def _reset_totp(args: argparse.Namespace) -> int:
    database, accounts = _open(args.db)
    try:
        factor = accounts.reset_totp(args.username)
    finally:
        database.dispose()
    if factor is None:
        print("kiosk-central staff reset-totp: no account %s" % args.username, file=sys.stderr)
        return 2
    print("%s: a new second factor; the old one no longer works" % args.username)
    _print_factor(factor)
    return 0


def add_parser(commands: argparse._SubParsersAction,
               with_db: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]) -> None:
    """`staff` and its actions, under `kiosk-central` (`with_db` adds its --db option)."""
    staff = commands.add_parser("staff", help="central's staff accounts (the dashboard's)", description=STAFF_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = staff.add_subparsers(dest="action_name", required=True)
    add = with_db(actions.add_parser("add", help="a new account: asks its password, prints its second factor once"))
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[role.value for role in Role])
    add.set_defaults(run=_add)
    with_db(actions.add_parser("list", help="the accounts: name, role, made, state")).set_defaults(run=_list)
    disable = with_db(actions.add_parser("disable", help="refuse the account from now on, ending its sessions"))
    disable.add_argument("username")
    disable.set_defaults(run=_disable)
    reset = with_db(actions.add_parser("reset-totp", help="a new second factor (shown once)"))
    reset.add_argument("username")
    reset.set_defaults(run=_reset_totp)
