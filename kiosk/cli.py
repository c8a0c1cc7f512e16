"""`kiosk`: run the kiosk, and the technicians' tools.

    kiosk run [--config C] [--journey J.json --out DIR]
    kiosk config check [--config C]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from kiosk import config as kiosk_config
from kiosk import fonts, logs
from kiosk.errors import KioskError

log = logging.getLogger("kiosk")


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
    run.set_defaults(handler=_run)

    check = commands.add_parser("config", help="configuration tools").add_subparsers(dest="what", required=True)
    check_config = check.add_parser("check", help="validate the configuration and say what is wrong")
    _config_option(check_config)
    check_config.set_defaults(handler=_config_check)

    args = parser.parse_args(argv)
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


def _run(args: argparse.Namespace, started_at: float) -> int:
    config = kiosk_config.load(args.config)
    fonts.check()
    from kiosk.app import build_runtime
    from screens.launch import run

    if args.journey is not None and not args.journey.is_file():
        raise kiosk_config.ConfigError("no journey file %s" % args.journey)
    return run(config, lambda post: build_runtime(config, post), journey=args.journey, out=args.out,
               started_at=started_at)


if __name__ == "__main__":
    sys.exit(main())
