"""`kiosk-central`: the reference central service.

    kiosk-central serve [--db URL] [--host 127.0.0.1] [--port 8700] [--signing-key PEM]
    kiosk-central registry import FILE.json [--db URL]
    kiosk-central keys [--db URL] [--signing-key PEM]

A new database gets its tables, the catalogue and a dozen fictional citizens.
The document signing key is kept beside a SQLite database unless
--signing-key names a PEM file (created when missing).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn

from central import signing
from central.app import create_app
from central.db import Database, sqlite_path
from central.registry import RegistryFileError, import_citizens, load_registry_file
from central.seeding import prepare_database
from kiosk import logs

DEFAULT_DB = "sqlite:///central.sqlite3"
DEFAULT_PORT = 8700


def _serve(args: argparse.Namespace) -> int:
    app = create_app(args.db, signing_key_path=args.signing_key)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_config=None, access_log=False)
    uvicorn.Server(config).run()
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


def _keys(args: argparse.Namespace) -> int:
    path = args.signing_key or signing.default_key_path(sqlite_path(args.db))
    if path is None:
        print("kiosk-central keys: the key of a non-SQLite database is only where --signing-key says",
              file=sys.stderr)
        return 2
    print(signing.public_key_pem(signing.load_or_create_key(Path(path)).public_key()), end="")
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
    serve.add_argument("--signing-key", type=Path, help="document signing key, PEM (created when missing)")
    serve.set_defaults(run=_serve)

    registry = commands.add_parser("registry", help="the civil registry").add_subparsers(dest="action",
                                                                                         required=True)
    importing = with_db(registry.add_parser("import", help="upsert citizens from a registry file "
                                                           "(format: central/REGISTRY.md)"))
    importing.add_argument("file", type=Path)
    importing.set_defaults(run=_import_registry)

    keys = with_db(commands.add_parser("keys", help="print the document-verification public key (PEM)"))
    keys.add_argument("--signing-key", type=Path)
    keys.set_defaults(run=_keys)

    args = parser.parse_args(argv)
    # The service logs to stdout for journald; the one-shot commands keep stdout for their output.
    logs.setup(sys.stdout if args.command == "serve" else sys.stderr)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
