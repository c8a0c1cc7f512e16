"""Announcements for the kiosks' attract screens: a text in Arabic and English, everywhere or in one
governorate, until a time.

    kiosk-central announce --text-ar TEXT --text-en TEXT [--governorate G] [--until WHEN]
    kiosk-central announcements list | withdraw ID

Kiosks fetch them as a document signed like the catalogue (central/signing.py's
`sign_document`, under `wire.ANNOUNCEMENTS_CONTEXT`):

    GET /api/v1/announcements        (a kiosk's signed call)
        200 {"announcements": [{"id", "text": {"ar", "en"}, "governorate", "created_at", "until"}],
             "version", "issued_at", "signature"}

A kiosk asks for it whenever it asks for the catalogue (between sessions, every
`catalogue.refresh_s`), keeps the last one that verified, and shows the newest
announcement for its governorate (or for everywhere) until its time. The
document holds the announcements current when it is served (not withdrawn, not
past their time), every governorate's: like the catalogue's services, a kiosk
picks its own. `version` is the first 16 hex digits of the SHA-256 of the
announcements' canonical JSON: the same announcements, the same version.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import or_, select

from central import signing
from central.db import Database, iso_utc, utc_now
from central.devices import GOVERNORATE as _GOVERNORATE
from central.models import Announcement
from central.wire import canonical_json
from kiosk import wire

log = logging.getLogger(__name__)

TEXT_MAX = wire.ANNOUNCEMENT_MAX_CHARS
VERSION_LENGTH = 16


class AnnouncementError(ValueError):
    """An announcement that cannot be made as asked; says what is wrong (never echoing a long text)."""


@dataclass(frozen=True)
class AnnouncementRow:
    announcement_id: str
    text_ar: str
    text_en: str
    governorate: str             # "" everywhere
    created_at: str
    until: str | None
    withdrawn_at: str | None

    def to_json(self) -> dict:
        return {"id": self.announcement_id, "text": {"ar": self.text_ar, "en": self.text_en},
                "governorate": self.governorate, "created_at": self.created_at, "until": self.until}

    def line(self) -> str:
        state = "withdrawn %s" % self.withdrawn_at if self.withdrawn_at else "until %s" % (self.until or "withdrawn")
        return "\t".join((self.announcement_id, self.governorate or "everywhere", self.created_at, state,
                          self.text_en))


def _row(row: Announcement) -> AnnouncementRow:
    return AnnouncementRow(row.announcement_id, row.text_ar, row.text_en, row.governorate, row.created_at,
                           row.until, row.withdrawn_at)


def checked_text(text: str, language: str) -> str:
    text = text.strip()
    if not text or len(text) > TEXT_MAX:
        raise AnnouncementError("the %s text must be 1 to %d characters" % (language, TEXT_MAX))
    if not wire.is_plain_text(text):
        raise AnnouncementError("the %s text holds a control or direction character" % language)
    return text


def parse_until(text: str, *, now: datetime | None = None) -> str:
    """`--until`: a date (to the end of that day, UTC) or a time (ISO 8601; without an offset, UTC), in
    the future; as stored (``2026-12-31T23:59:59Z``). AnnouncementError otherwise."""
    now = now or utc_now()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
            moment = datetime.combine(date.fromisoformat(text.strip()), time(23, 59, 59), UTC)
        else:
            moment = datetime.fromisoformat(text.strip())
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise AnnouncementError("--until must be a date (2026-12-31) or a time (2026-12-31T18:00+03:00)") from None
    if moment <= now:
        raise AnnouncementError("--until is in the past")
    return iso_utc(moment)


def announcements_version(items: list[dict]) -> str:
    return hashlib.sha256(canonical_json(items)).hexdigest()[:VERSION_LENGTH]


class Announcements:
    def __init__(self, database: Database) -> None:
        self._database = database

    def announce(self, text_ar: str, text_en: str, *, governorate: str = "", until: str | None = None,
                 ) -> AnnouncementRow:
        """A new announcement, shown from the kiosks' next fetch on; AnnouncementError for a text or a
        governorate that cannot be taken. `until` as `parse_until` gives it."""
        if governorate and not _GOVERNORATE.fullmatch(governorate):
            raise AnnouncementError("--governorate is a code of lower-case letters, digits, _ and -: damascus")
        row = Announcement(announcement_id=secrets.token_hex(8), text_ar=checked_text(text_ar, "Arabic"),
                           text_en=checked_text(text_en, "English"), governorate=governorate,
                           created_at=iso_utc(utc_now()), until=until)
        with self._database.writing() as session:
            session.add(row)
        log.info("announcements.made id=%s governorate=%s until=%s", row.announcement_id, governorate or "-",
                 until or "-")
        return _row(row)

    def withdraw(self, announcement_id: str) -> bool:
        """Withdraw it from the kiosks' next fetch on; False when there is no such announcement."""
        with self._database.writing() as session:
            row = session.get(Announcement, announcement_id)
            if row is None:
                return False
            if row.withdrawn_at is None:
                row.withdrawn_at = iso_utc(utc_now())
                log.info("announcements.withdrawn id=%s", announcement_id)
        return True

    def list(self) -> list[AnnouncementRow]:
        """Every announcement, newest first."""
        with self._database.reading() as session:
            return [_row(row) for row in session.scalars(
                select(Announcement).order_by(Announcement.created_at.desc(), Announcement.announcement_id))]

    def current(self, now: datetime | None = None) -> list[AnnouncementRow]:
        """The announcements the kiosks show now, newest first."""
        at = iso_utc(now or utc_now())
        with self._database.reading() as session:
            return [_row(row) for row in session.scalars(
                select(Announcement).where(Announcement.withdrawn_at.is_(None),
                                           or_(Announcement.until.is_(None), Announcement.until > at))
                .order_by(Announcement.created_at.desc(), Announcement.announcement_id))]

    def version(self, now: datetime | None = None) -> str:
        return announcements_version([row.to_json() for row in self.current(now)])

    def served(self, signing_key: Ed25519PrivateKey, now: datetime | None = None) -> dict:
        """The document GET /announcements serves, signed."""
        now = now or utc_now()
        items = [row.to_json() for row in self.current(now)]
        return signing.sign_document(signing_key, {"announcements": items, "version": announcements_version(items),
                                                   "issued_at": iso_utc(now)}, context=wire.ANNOUNCEMENTS_CONTEXT)


# -- `kiosk-central announce`, `kiosk-central announcements ...` -------------------------------------------

ANNOUNCE_HELP = """\
An announcement for the kiosks' attract screens, in Arabic and English, shown from each kiosk's next
fetch of central's documents (between two citizens, every catalogue.refresh_s) on: everywhere, or in
one governorate (--governorate damascus), until --until (a date, to the end of that day UTC, or a
time: 2026-12-31T18:00+03:00), or until withdrawn. A kiosk shows the newest one for its governorate.
Prints its id. Exit 2: a text empty or over %d characters, or holding a control or direction
character; a governorate that is not a code; an --until that cannot be read or is past.""" % TEXT_MAX


def _open(db_url: str) -> tuple[Database, Announcements]:
    from central.seeding import prepare_database

    database = Database(db_url)
    prepare_database(database)
    return database, Announcements(database)


def _cli_announce(args: argparse.Namespace) -> int:
    try:
        until = parse_until(args.until) if args.until else None
        if args.governorate and not _GOVERNORATE.fullmatch(args.governorate):
            raise AnnouncementError("--governorate is a code of lower-case letters, digits, _ and -: damascus")
        checked_text(args.text_ar, "Arabic"), checked_text(args.text_en, "English")
    except AnnouncementError as exc:
        print("kiosk-central announce: %s" % exc, file=sys.stderr)
        return 2
    database, announcements = _open(args.db)
    try:
        row = announcements.announce(args.text_ar, args.text_en, governorate=args.governorate or "", until=until)
    finally:
        database.dispose()
    print("%s\t%s\tuntil %s" % (row.announcement_id, row.governorate or "everywhere", row.until or "withdrawn"))
    return 0


def _cli_list(args: argparse.Namespace) -> int:
    database, announcements = _open(args.db)
    try:
        rows = announcements.list()
    finally:
        database.dispose()
    for row in rows:
        print(row.line())
    return 0


def _cli_withdraw(args: argparse.Namespace) -> int:
    database, announcements = _open(args.db)
    try:
        found = announcements.withdraw(args.announcement_id)
    finally:
        database.dispose()
    if not found:
        print("kiosk-central announcements withdraw: no announcement %s" % args.announcement_id, file=sys.stderr)
        return 2
    print("%s: withdrawn; the kiosks stop showing it at their next fetch" % args.announcement_id)
    return 0


def add_parsers(commands: argparse._SubParsersAction,
                with_db: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]) -> None:
    """`announce` and `announcements list | withdraw`, under `kiosk-central` (`with_db` adds --db)."""
    announce = with_db(commands.add_parser("announce", help="an announcement for the attract screens",
                                           description=ANNOUNCE_HELP,
                                           formatter_class=argparse.RawDescriptionHelpFormatter))
    announce.add_argument("--text-ar", required=True, metavar="TEXT")
    announce.add_argument("--text-en", required=True, metavar="TEXT")
    announce.add_argument("--governorate", metavar="G", help="only the kiosks of governorate G (default: all)")
    announce.add_argument("--until", metavar="WHEN", help="a date or an ISO 8601 time (default: until withdrawn)")
    announce.set_defaults(run=_cli_announce)
    actions = commands.add_parser("announcements", help="the announcements: list, withdraw").add_subparsers(
        dest="action", required=True)
    with_db(actions.add_parser("list", help="every announcement, newest first")).set_defaults(run=_cli_list)
    withdraw = with_db(actions.add_parser("withdraw", help="stop showing an announcement"))
    withdraw.add_argument("announcement_id")
    withdraw.set_defaults(run=_cli_withdraw)
