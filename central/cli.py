"""`kiosk-central`: the reference central service.

    kiosk-central serve [--db URL] [--host 127.0.0.1] [--port 8700] [--signing-key PEM]
                        [--acquirer URL [--acquirer-ca PEM]] [--tls-cert PEM --tls-key PEM]
                        [--issuer-key PEM ...] [--telemetry-days 90]
    kiosk-central registry import FILE.json [--db URL]
    kiosk-central catalogue set-fee SERVICE_CODE AMOUNT_MINOR [--db URL]
    kiosk-central catalogue set-offline SERVICE_CODE online_only|claim [--max-fee MINOR --daily-cap MINOR] [--db URL]
    kiosk-central keys [--db URL] [--signing-key PEM]
    kiosk-central verify --key PUBLIC.pem [--key OLDER.pem ...] [--document DOC.json] FILE
    kiosk-central tls init DIR --host NAME_OR_IP [--host NAME_OR_IP ...]
    kiosk-central devices enrol-code DEVICE_ID [--hours H] [--governorate G] | list | status | revoke DEVICE_ID
                          [--db URL]
    kiosk-central db upgrade | current [--db URL]
    kiosk-central command send ACTION (--device ID ... | --governorate G | --all) [--expires-minutes 60]
    kiosk-central command list [--device ID] [--batch B] | logs COMMAND_ID [--db URL]
    kiosk-central announce --text-ar TEXT --text-en TEXT [--governorate G] [--until WHEN] [--db URL]
    kiosk-central announcements list | withdraw ID [--db URL]
    kiosk-central staff add USER --role publisher|operator|viewer | list | disable USER | reset-totp USER [--db URL]
    kiosk-central release keys init|rotate|sign-root|renew-root ..., release publish|refresh|status [--repo DIR]
    kiosk-central rollout start VERSION [--platform P] (--percent N | --governorate G | --device ID ...) [--repo DIR]
    kiosk-central rollout widen ID (--percent N | ...) | pause ID | resume ID | rollback ID [--to V] | list | show ID

A new database gets its tables, the catalogue and fourteen fictional citizens.
Any SQLAlchemy URL is a --db: SQLite (the default) or PostgreSQL
(postgresql+psycopg://USER:PASSWORD@HOST/DBNAME). Central migrates its
database to the newest schema whenever it starts (Alembic, central/migrations/);
`db upgrade` does only that; `db current` prints the database's revision,
`none` for a database never migrated, and `(head)` when it is the newest.
The document signing key is kept beside a SQLite database unless
--signing-key names a PEM file. A key is made only where no document can have
been signed yet (beside a database that holds no issued document); a named
key that is missing, or a default key lost after documents were issued,
stops central from starting: a new key would make every earlier document fail
verification.

Kiosks are enrolled with a one-time code from `devices enrol-code DEVICE_ID`
(shown once, kept only hashed, valid --hours), which a technician types into
`kiosk provision` on the device; `devices list` shows them, `devices revoke`
refuses a kiosk from its next request on (a new code enrols it again).
`enrol-code --governorate G` names the governorate the kiosk stands in (a code,
`damascus`): the kiosk takes it when it enrols, and `list` shows it. `devices
status` lists each kiosk's latest heartbeat: its state (and why, when out of
service), when central last heard it, paper, door, version, queue and dead
letters. What kiosks report (heartbeats, alerts, self-test reports) is kept
`serve --telemetry-days` days (90); their audit logs are kept.
Cards are checked against the issuer public keys given with --issuer-key.

`command send ACTION` sends central's staff's command (out-of-service,
in-service, reboot, resync, selftest, collect-logs) to kiosks named by id, by
governorate or all: one signed envelope each, in the answer to the kiosk's
next heartbeat, carried out between two citizens before it expires; `command
list` shows what became of each (sent, delivered, done, refused and why,
expired), `command logs` the lines a collect-logs command brought back.
`announce` puts a text on the attract screens (everywhere or in a governorate,
until a time); `announcements list` and `withdraw` manage them.

`rollout start VERSION` offers a published release to a first cohort of
kiosks (a percentage of the fleet by a hash of each kiosk's id, a governorate,
or ids); `widen` adds cohorts (10% then 50% keeps the first 10%), `pause` and
`resume` stop and restart the offer, and a kiosk that reports a failure pauses
its rollout at once. `rollback ID` stops a rollout for good; `--to V` also
rolls its cohorts forward to V, the old code published under a newer version
(a kiosk never goes down a version). `list` and `show` count each cohort's
kiosks offered, installed, proven and failed (central/rollouts.py).

`staff add USER --role R` makes an account of central's staff dashboard
(/dashboard): it asks the password and prints the second factor (TOTP) once;
`staff list`, `staff disable USER` and `staff reset-totp USER` manage them
(central/dashboard/staff_cli.py).

Central serves HTTPS with `serve --tls-cert PEM --tls-key PEM`; without them
it serves plain HTTP only on a loopback address (development), and refuses
to start on any other. `tls init DIR --host ...` makes central's own CA and a
server certificate for the hosts and IP addresses the kiosks reach it by:
DIR/ca.pem (every kiosk pins it, `[central] ca_file`), DIR/server.pem and
DIR/server-key.pem (for --tls-cert and --tls-key), and DIR/ca-key.pem, the
CA's key, kept (0600, as server-key.pem) so that `tls init` on the same DIR
later issues a new server certificate under the same CA. Exit 2: a host that
is neither a name nor an IP address, or a CA in DIR without its key.

Central approves no payment: `serve --acquirer URL` names the acquirer where
each request's payment is looked up before a document is issued (its
certificate checked against --acquirer-ca when given). Without it, central
starts, logs an error, and answers every certificate request 503
payment_unverifiable, which the kiosks send again later.

`catalogue set-fee` changes a service's fee (in minor units of its currency)
for every kiosk from the next catalogue or pre-check on; it prints the fee
before and after and the catalogue's new version. Exit 2: no such service,
or an amount that is not a positive whole number. `catalogue set-offline`
sets what a kiosk that cannot reach central may do for a service: nothing
(`online_only`), or take a claim for a fee up to --max-fee, within a daily
cap per kiosk of --daily-cap (minor units); the catalogue's version changes.

`verify` checks a printed document offline, with nothing but central's public
key (`keys` prints it): FILE is a text file holding the scanned QR payload, or
a photo or scan of the document (PNG or JPEG), whose QR code is read here. It
prints the signed fields one a line and exits 0 for a genuine payload; else
it prints one line naming the reason (not_ours, malformed, unknown_key,
bad_signature, no_qr_code, content_mismatch) and exits 1. Exit 2: a key, FILE
or --document that cannot be read. --document also checks that a document's
fields (its JSON as central issued it) are the ones the payload signs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import timedelta
from pathlib import Path

import uvicorn
from sqlalchemy import select

from central import migrate, signing, tls
from central.announcements import add_parsers as add_announcement_parsers
from central.app import create_app
from central.commands import add_parser as add_command_parser
from central.rollouts import add_parser as add_rollout_parser
from central.dashboard.staff_cli import add_parser as add_staff_parser
from central.catalogue_store import find_service, load_catalogue, save_offline_policies, set_fee
from central.db import Database, sqlite_path
from central.devices import GOVERNORATE, Devices
from central.models import IssuedDocumentRecord
from central.releases import cli as release_cli
from central.registry import RegistryFileError, import_citizens, load_registry_file
from central.seeding import prepare_database
from central.telemetry import DEFAULT_KEEP_DAYS, Telemetry
from kiosk import logs, wire
from kiosk.documents import IssuedDocument
from kiosk.errors import KioskError

DEFAULT_DB = "sqlite:///central.sqlite3"
DEFAULT_PORT = 8700
_LARGEST_FEE = 10 ** 12                 # as central/wire.py's AmountMinor
_LARGEST_TEXT = 64 * 1024              # a payload is a few hundred characters
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")   # PNG, JPEG

_PROBLEMS = {
    signing.Problem.NOT_OURS: "this is not a document payload of ours",
    signing.Problem.MALFORMED: "the payload is damaged or incomplete",
    signing.Problem.UNKNOWN_KEY: "signed by a key that is none of the keys given",
    signing.Problem.BAD_SIGNATURE: "the signature does not verify: the payload was altered or forged",
}


def _serve(args: argparse.Namespace) -> int:
    try:
        tls.check_serving(args.host, args.tls_cert, args.tls_key)
    except tls.TlsError as exc:
        print("kiosk-central serve: %s" % exc, file=sys.stderr)
        return 2
    try:
        app = create_app(args.db, signing_key_path=args.signing_key, acquirer_url=args.acquirer,
                         acquirer_ca_file=args.acquirer_ca, issuer_key_paths=args.issuer_key,
                         telemetry_days=args.telemetry_days, release_repo=args.release_repo)
    except (ValueError, FileNotFoundError, KioskError) as exc:    # a bad --acquirer, --acquirer-ca, --issuer-key
        print("kiosk-central serve: %s" % exc, file=sys.stderr)
        return 2
    config = uvicorn.Config(app, host=args.host, port=args.port, log_config=None, access_log=False,
                            ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key)
    uvicorn.Server(config).run()
    return 0


def _days(text: str) -> int:
    days = int(text)
    if not 1 <= days <= 3650:
        raise argparse.ArgumentTypeError("between 1 and 3650 days")
    return days


def _devices(db_url: str) -> tuple[Database, Devices]:
    database = Database(db_url)
    prepare_database(database)
    return database, Devices(database)


def _enrol_code(args: argparse.Namespace) -> int:
    if not wire.is_id(args.device_id):
        print("kiosk-central devices enrol-code: %r is not a device id (letters, digits, . _ : -; at most 64)"
              % args.device_id, file=sys.stderr)
        return 2
    if not 0 < args.hours <= 24 * 30:
        print("kiosk-central devices enrol-code: --hours must be above 0 and at most 720", file=sys.stderr)
        return 2
    if args.governorate is not None and GOVERNORATE.fullmatch(args.governorate) is None:
        print("kiosk-central devices enrol-code: --governorate is a code: lower-case letters, digits, - and _ "
              "(e.g. damascus)", file=sys.stderr)
        return 2
    database, devices = _devices(args.db)
    try:
        code, expires_at = devices.issue_code(args.device_id, timedelta(hours=args.hours),
                                              governorate=args.governorate)
    finally:
        database.dispose()
    print("%s\t%s\texpires %s" % (args.device_id, code, expires_at))
    return 0


def _list_devices(args: argparse.Namespace) -> int:
    database, devices = _devices(args.db)
    try:
        rows = devices.list()
    finally:
        database.dispose()
    for row in rows:
        print("%s\tenrolled %s\t%s\tlast seen %s\tgovernorate %s" % (
            row.device_id, row.enrolled_at, "revoked %s" % row.revoked_at if row.revoked_at else "active",
            row.last_seen_at or "never", row.governorate or "-"))
    return 0


def _device_status(args: argparse.Namespace) -> int:
    database = Database(args.db)
    try:
        prepare_database(database)
        rows = Telemetry(database).statuses()
    finally:
        database.dispose()
    for row in rows:
        if row.state is None:
            print("%s\t%s\tno heartbeat yet%s" % (row.device_id, row.governorate or "-",
                                                    "\trevoked" if row.revoked else ""))
            continue
        print("%s\t%s\t%s\tlast heartbeat %s\tpaper %s\tdoor %s\tversion %s\tqueue %d\tdead %d%s" % (
            row.device_id, row.governorate or "-", "%s (%s)" % (row.state, row.reason) if row.reason else row.state,
            row.received_at, row.paper, row.door, row.version, row.queue_depth, row.dead_letters,
            "\trevoked" if row.revoked else ""))
    return 0


def _revoke_device(args: argparse.Namespace) -> int:
    database, devices = _devices(args.db)
    try:
        revoked = devices.revoke(args.device_id)
    finally:
        database.dispose()
    if not revoked:
        print("kiosk-central devices revoke: no device %s is enrolled" % args.device_id, file=sys.stderr)
        return 2
    print("%s: revoked; its next request is refused" % args.device_id)
    return 0


def _tls_init(args: argparse.Namespace) -> int:
    try:
        files, new_ca = tls.init(args.directory, args.host)
    except tls.TlsError as exc:
        print("kiosk-central tls init: %s" % exc, file=sys.stderr)
        return 2
    certificate = tls.load_certificate(files.server_cert)
    print("%s: %s CA; every kiosk pins it ([central] ca_file)" % (files.ca_cert, "a new" if new_ca else "the same"))
    print("%s: the CA's key (0600): keep it secret, to issue server certificates later" % files.ca_key)
    print("%s: for %s, until %s" % (files.server_cert, ", ".join(tls.certificate_hosts(certificate)),
                                    certificate.not_valid_after_utc.date().isoformat()))
    print("%s: its key (0600)" % files.server_key)
    print("serve with: kiosk-central serve --tls-cert %s --tls-key %s" % (files.server_cert, files.server_key))
    return 0


def _import_registry(args: argparse.Namespace) -> int:
    try:
        records = load_registry_file(args.file)
    except RegistryFileError as exc:
        print("%s: %s" % (args.file, exc), file=sys.stderr)
        return 2
    database = Database(args.db)
    try:
        prepare_database(database)
        summary = import_citizens(database, records)
    except RegistryFileError as exc:
        print("%s: %s" % (args.file, exc), file=sys.stderr)
        return 2
    finally:
        database.dispose()
    print("%s: %d citizens imported (%d new, %d updated)" % (args.file, len(records), summary.created,
                                                               summary.updated))
    return 0


def _set_fee(args: argparse.Namespace) -> int:
    if not 0 < args.amount_minor <= _LARGEST_FEE:
        print("kiosk-central catalogue set-fee: the fee is a positive whole number of minor units "
              "(150000 is 1,500.00)", file=sys.stderr)
        return 2
    database = Database(args.db)
    try:
        prepare_database(database)
        with database.writing() as session:
            changed = set_fee(session, args.service_code, args.amount_minor)
        with database.reading() as session:
            version = load_catalogue(session).version
    finally:
        database.dispose()
    if changed is None:
        print("kiosk-central catalogue set-fee: no service %s in the catalogue" % args.service_code,
              file=sys.stderr)
        return 2
    before, after = changed
    print("%s: fee %s %s -> %s %s; catalogue version %s" % (args.service_code, before.major_text(),
                                                             before.currency, after.major_text(),
                                                             after.currency, version))
    return 0


def _set_offline(args: argparse.Namespace) -> int:
    from kiosk.catalogue import Catalogue, OfflineMode, OfflinePolicy

    if args.mode == OfflineMode.CLAIM.value:
        if not (0 < args.max_fee <= _LARGEST_FEE and args.max_fee <= args.daily_cap <= _LARGEST_FEE):
            print("kiosk-central catalogue set-offline: a claim needs --max-fee and --daily-cap, positive whole "
                  "numbers of minor units, the cap at least the fee", file=sys.stderr)
            return 2
        policy = OfflinePolicy(OfflineMode.CLAIM, args.max_fee, args.daily_cap)
    else:
        policy = OfflinePolicy()
    database = Database(args.db)
    try:
        prepare_database(database)
        with database.writing() as session:
            service = find_service(session, args.service_code)
            if service is not None:
                save_offline_policies(session, Catalogue((dataclasses.replace(service, offline=policy),)))
        with database.reading() as session:
            version = load_catalogue(session).version
    finally:
        database.dispose()
    if service is None:
        print("kiosk-central catalogue set-offline: no service %s in the catalogue" % args.service_code,
              file=sys.stderr)
        return 2
    print("%s: offline %s; catalogue version %s" % (args.service_code, json.dumps(policy.to_json()), version))
    return 0


def _keys(args: argparse.Namespace) -> int:
    path = args.signing_key or signing.default_key_path(sqlite_path(args.db))
    if path is None:
        print("kiosk-central keys: the key of a non-SQLite database is only where --signing-key says",
              file=sys.stderr)
        return 2
    database = Database(args.db)
    try:
        migrate.upgrade_engine(database.engine)
        with database.reading() as session:
            issued = session.scalar(select(IssuedDocumentRecord.serial).limit(1)) is not None
        key = signing.central_key(args.signing_key, sqlite_path(args.db), documents_issued=issued)
    except signing.SigningKeyError as exc:
        print("kiosk-central keys: %s" % exc, file=sys.stderr)
        return 2
    finally:
        database.dispose()
    print(signing.public_key_pem(key.public_key()), end="")
    return 0


class _Unreadable(Exception):
    """An input of `verify` that cannot be read (exit 2)."""


class _NoPayload(Exception):
    """An image without a QR code (exit 1)."""


def _scanned_payload(path: Path) -> str:
    """The payload in FILE: the QR code of an image, else the text, without its line ending."""
    try:
        with path.open("rb") as file:
            head = file.read(_LARGEST_TEXT + 1)
    except OSError as exc:
        raise _Unreadable("%s: %s" % (path, exc.strerror or type(exc).__name__)) from None
    if head.startswith(_IMAGE_MAGIC):
        return _qr_payload(path)
    if len(head) > _LARGEST_TEXT:
        raise _Unreadable("%s: neither an image nor a payload (too large)" % path)
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _Unreadable("%s: neither a PNG or JPEG image nor UTF-8 text" % path) from None
    # A payload may start or end with a space (base45 has one): only line ends are dropped.
    return text.lstrip().rstrip("\r\n")


def _qr_payload(path: Path) -> str:
    """The text of the QR code in the image at `path` (ours first, when it holds several)."""
    try:
        import zxingcpp
        from PIL import Image, UnidentifiedImageError
    except ImportError as exc:
        raise _Unreadable("reading images needs %s (pip install zxing-cpp)" % exc.name) from None
    try:
        with Image.open(path) as image:
            codes = zxingcpp.read_barcodes(image.convert("L"), formats=zxingcpp.BarcodeFormat.QRCode)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise _Unreadable("%s: unreadable image (%s)" % (path, type(exc).__name__)) from None
    texts = [code.text for code in codes if code.text]
    if not texts:
        raise _NoPayload()
    return next((text for text in texts if text.startswith(signing.PREFIX)), texts[0])


def _document_file(path: Path) -> IssuedDocument:
    """A document's JSON, as central issued it (the answer's "document", or the whole answer)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return IssuedDocument.from_json(data.get("document", data) if isinstance(data, dict) else data)
    except OSError as exc:
        raise _Unreadable("%s: %s" % (path, exc.strerror or type(exc).__name__)) from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise _Unreadable("%s: not a document's JSON" % path) from None


def _verify(args: argparse.Namespace) -> int:
    def refused(reason: str, explanation: str) -> int:
        print("not genuine: %s: %s" % (reason, explanation))
        return 1

    try:
        keys = []
        for key_path in args.key:
            try:
                keys.append(signing.load_public_key_pem(key_path.read_bytes()))
            except OSError as exc:
                raise _Unreadable("%s: %s" % (key_path, exc.strerror or type(exc).__name__)) from None
            except ValueError:
                raise _Unreadable("%s: not an Ed25519 public key in PEM" % key_path) from None
        document = _document_file(args.document) if args.document else None
        payload = _scanned_payload(args.file)
    except _Unreadable as exc:
        print("kiosk-central verify: %s" % exc, file=sys.stderr)
        return 2
    except _NoPayload:
        return refused("no_qr_code", "no QR code found in %s" % args.file)
    try:
        signed = signing.verify(payload, keys)
    except signing.InvalidPayload as exc:
        detail = " (%s)" % exc if exc.reason is signing.Problem.UNKNOWN_KEY else ""
        return refused(exc.reason.value, _PROBLEMS[exc.reason] + detail)
    if document is not None and (document.serial, document.service_code) != (signed.serial, signed.kind):
        return refused("content_mismatch", "the document given is another one than the payload signs")
    if document is not None and document.content_digest() != signed.content_digest:
        return refused("content_mismatch", "the document's fields are not the ones the payload signs")
    place = " / ".join(text for text in (signed.place_ar, signed.place_en) if text) or "-"
    print("genuine")
    for label, value in (("serial", signed.serial), ("kind", signed.kind), ("issued", signed.issued_iso()),
                         ("place", place), ("holder", signed.holder_ar),
                         ("content digest", signed.content_digest.hex()), ("key id", signed.key_id.hex())):
        print("%s: %s" % (label, value))
    if document is not None:
        print("document: its fields are the signed ones")
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    migrate.upgrade(args.db)
    return _db_current(args)


def _db_current(args: argparse.Namespace) -> int:
    revision, head = migrate.current(args.db), migrate.head()
    print("%s (%s)" % (revision or "none", "head" if revision == head else "head is %s" % head))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiosk-central", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    def with_db(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
        command.add_argument("--db", default=DEFAULT_DB, help="SQLAlchemy URL (default %(default)s)")
        return command

    serve = with_db(commands.add_parser("serve", help="run the service"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--signing-key", type=Path, help="document signing key, PEM (must exist)")
    serve.add_argument("--acquirer", metavar="URL",
                       help="the acquirer's base URL, where payments are looked up (without it every "
                            "certificate request is answered 503 payment_unverifiable)")
    serve.add_argument("--acquirer-ca", type=Path, metavar="PEM",
                       help="the acquirer's certificate authority, PEM (default: the system's)")
    serve.add_argument("--tls-cert", type=Path, metavar="PEM",
                       help="serve HTTPS with this certificate (server.pem of `tls init`); without it and "
                            "--tls-key, plain HTTP on a loopback --host only")
    serve.add_argument("--tls-key", type=Path, metavar="PEM", help="the certificate's private key (server-key.pem)")
    serve.add_argument("--issuer-key", type=Path, action="append", default=[], metavar="PEM",
                       help="a card issuer's public key (EC P-256, PEM) that central trusts; again for more "
                            "(without any, no card proves itself)")
    serve.add_argument("--telemetry-days", type=_days, default=DEFAULT_KEEP_DAYS, metavar="DAYS",
                       help="keep the kiosks' heartbeats, alerts and self-test reports this long "
                            "(default %(default)s)")
    serve.add_argument("--release-repo", type=Path, metavar="DIR",
                       help="serve this release repository (`release keys init`) read-only under /tuf")
    serve.set_defaults(run=_serve)

    registry = commands.add_parser("registry", help="the civil registry").add_subparsers(dest="action",
                                                                                         required=True)
    importing = with_db(registry.add_parser("import", help="upsert citizens from a registry file "
                                                           "(format: central/REGISTRY.md)"))
    importing.add_argument("file", type=Path)
    importing.set_defaults(run=_import_registry)

    catalogue = commands.add_parser("catalogue", help="the services and their fees").add_subparsers(
        dest="action", required=True)
    fee = with_db(catalogue.add_parser("set-fee", help="change a service's fee, in minor units of its currency"))
    fee.add_argument("service_code")
    fee.add_argument("amount_minor", type=int, help="the new fee in minor units (150000 SYP is 1,500.00)")
    fee.set_defaults(run=_set_fee)
    offline = with_db(catalogue.add_parser("set-offline", help="what a kiosk that cannot reach central may do "
                                                               "for a service"))
    offline.add_argument("service_code")
    offline.add_argument("mode", choices=("online_only", "claim"))
    offline.add_argument("--max-fee", type=int, default=0, help="a claim's largest fee, minor units")
    offline.add_argument("--daily-cap", type=int, default=0, help="a kiosk's claims in a day, minor units")
    offline.set_defaults(run=_set_offline)

    keys = with_db(commands.add_parser("keys", help="print the document-verification public key (PEM)"))
    keys.add_argument("--signing-key", type=Path)
    keys.set_defaults(run=_keys)

    verify = commands.add_parser("verify", help="check a printed document's QR payload offline")
    verify.add_argument("--key", type=Path, action="append", required=True,
                        help="central's document-verification public key, PEM (again for older keys)")
    verify.add_argument("--document", type=Path, help="also check this document's fields (its JSON)")
    verify.add_argument("file", type=Path, help="the scanned payload as text, or a PNG or JPEG of the document")
    verify.set_defaults(run=_verify)

    tls_commands = commands.add_parser("tls", help="central's own CA and HTTPS certificate").add_subparsers(
        dest="action", required=True)
    init_help = ("write DIR/ca.pem, DIR/server.pem and DIR/server-key.pem, and keep the CA's key in "
                 "DIR/ca-key.pem (0600) to issue more later: a CA already in DIR is used again")
    tls_init = tls_commands.add_parser("init", help=init_help, description=init_help)
    tls_init.add_argument("directory", type=Path, metavar="DIR")
    tls_init.add_argument("--host", action="append", required=True, metavar="NAME_OR_IP",
                          help="a host name or IP address the kiosks reach central by (again for more; "
                               "127.0.0.1 for loopback)")
    tls_init.set_defaults(run=_tls_init)

    device_commands = commands.add_parser("devices", help="the kiosks central serves").add_subparsers(
        dest="action", required=True)
    enrol_code = with_db(device_commands.add_parser(
        "enrol-code", help="a one-time code for a kiosk's `kiosk provision` (shown once, kept only hashed)"))
    enrol_code.add_argument("device_id")
    enrol_code.add_argument("--hours", type=float, default=72.0, help="the code's lifetime (default %(default)s)")
    enrol_code.add_argument("--governorate", metavar="G", help="the governorate the kiosk stands in (a code)")
    enrol_code.set_defaults(run=_enrol_code)
    with_db(device_commands.add_parser("list", help="enrolled kiosks: id, enrolled, revoked, last seen, governorate")
            ).set_defaults(run=_list_devices)
    with_db(device_commands.add_parser("status", help="each kiosk's latest heartbeat: state, when, paper, door, "
                                                      "version")).set_defaults(run=_device_status)
    revoke = with_db(device_commands.add_parser("revoke", help="refuse a kiosk from its next request on"))
    revoke.add_argument("device_id")
    revoke.set_defaults(run=_revoke_device)

    db_commands = commands.add_parser("db", help="the database's schema (Alembic migrations)").add_subparsers(
        dest="action", required=True)
    with_db(db_commands.add_parser("upgrade", help="migrate the database to the newest schema")
            ).set_defaults(run=_db_upgrade)
    with_db(db_commands.add_parser("current", help="the database's revision, and the newest one")
            ).set_defaults(run=_db_current)

    release_cli.add_parser(commands)
    add_command_parser(commands, with_db)
    add_rollout_parser(commands, with_db)
    add_announcement_parsers(commands, with_db)
    add_staff_parser(commands, with_db)

    args = parser.parse_args(argv)
    # The service logs to stdout for journald; the one-shot commands keep stdout for their output.
    logs.setup(sys.stdout if args.command == "serve" else sys.stderr)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
