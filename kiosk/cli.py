"""`kiosk`: run the kiosk, and the technicians' tools.

    kiosk run [--config C] [--journey J.json --out DIR]
    kiosk config check [--config C]
    kiosk card check [--config C] [--trust ISSUER.pem ...] [--reader NAME]   (PIN on stdin)
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from kiosk import app, backends
from kiosk import config as kiosk_config
from kiosk import fonts, logs
from kiosk.errors import KioskError

log = logging.getLogger("kiosk")

CARD_CHECK_HELP = """\
Read the card in the ID reader as the kiosk would (power up, SELECT, VERIFY,
EF.ID and EF.ID_SIG, both authenticity checks, the expiry) and print one
line, with no personal data: `valid apdus=7`, `forged apdus=6`, `wrong PIN
(2 tries left) apdus=1`, `no card in reader "NAME"`, `no reader`, ... Exit 0
only for a valid card, 1 for any other verdict, 2 for a usage or
configuration problem. The PIN is read from standard input, never echoed.
The check is the card backend's own tool (`kiosk.tools` entry points)."""


def main(argv: list[str] | None = None) -> int:
    started_at = time.monotonic()
    parser = argparse.ArgumentParser(prog="kiosk", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the kiosk application")
    _config_option(run)
    run.add_argument("--journey", type=Path, help="drive the app through this scripted journey (JSON)")
    run.add_argument("--out", type=Path, default=Path("journey-out"),
                     help="where a journey writes its screenshots and log")
    run.add_argument("--frontend", default="kivy", help="the user interface to start (default %(default)s)")
    run.set_defaults(handler=_run)

    check = commands.add_parser("config", help="configuration tools").add_subparsers(dest="what", required=True)
    check_config = check.add_parser("check", help="validate the configuration and say what is wrong")
    _config_option(check_config)
    check_config.set_defaults(handler=_config_check)

    card = commands.add_parser("card", help="ID card tools").add_subparsers(dest="what", required=True)
    check_card = card.add_parser(
        "check", help="read the card in the ID reader (PIN on stdin) and print one verdict line",
        description=CARD_CHECK_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    check_card.add_argument("--config", type=Path, default=None,
                            help="configuration file (default %s when it exists)" % kiosk_config.DEFAULT_PATH)
    check_card.add_argument("--trust", type=Path, action="append", default=[], metavar="ISSUER.pem",
                            help="trust this issuer public key (PEM) too; repeatable")
    check_card.add_argument("--reader", default=None, metavar="NAME",
                            help="leading part of the ID reader's PC/SC name (overrides the configuration)")
    check_card.add_argument("-v", "--verbose", action="store_true",
                            help="log the driver's events (no card data) on stderr")
    check_card.set_defaults(handler=_card_check)

    args = parser.parse_args(argv)
    if args.command == "card":
        # stdout is kept for the one verdict line; the log goes to stderr, on request.
        logs.setup(sys.stderr, logging.INFO if args.verbose else logging.WARNING)
    else:
        logs.setup()
    try:
        return args.handler(args, started_at)
    except KioskError as exc:
        print("kiosk: %s" % exc, file=sys.stderr)
        return 2


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=kiosk_config.DEFAULT_PATH,
                        help="configuration file (default %(default)s)")


def _config_check(args: argparse.Namespace, _started_at: float) -> int:
    config = kiosk_config.load(args.config)
    fonts.check()
    print("%s: valid (device %s, central %s)" % (args.config, config.device_id, config.central.url))
    return 0


def _card_check(args: argparse.Namespace, _started_at: float) -> int:
    run = backends.load_tool("card-check")
    return run(args.config, args.trust, args.reader)


def _run(args: argparse.Namespace, started_at: float) -> int:
    config = kiosk_config.load(args.config)
    fonts.check()
    if args.journey is not None and not args.journey.is_file():
        raise kiosk_config.ConfigError("no journey file %s" % args.journey)
    run = backends.load_frontend(args.frontend)
    return run(config, lambda post: app.build_runtime(config, post), journey=args.journey, out=args.out,
               started_at=started_at)


if __name__ == "__main__":
    sys.exit(main())
