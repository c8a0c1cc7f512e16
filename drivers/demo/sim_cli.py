"""`kiosk-sim`: the simulators that stand in for hardware at the wire.

    kiosk-sim card ...      a national ID card on the vpcd socket (pcscd's virtual reader)
    kiosk-sim printer ...   a network ESC/POS printer that writes each job as a PNG
    kiosk-sim terminal ...  a nexo payment terminal with its own acquirer
"""

from __future__ import annotations

import argparse
import sys

from drivers.card_sim import cli as card_cli
from drivers.printer_sim import cli as printer_cli
from drivers.terminal_sim import cli as terminal_cli
from kiosk import logs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiosk-sim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    card_cli.register(commands)
    printer_cli.register(commands)
    terminal_cli.register(commands)
    args = parser.parse_args(argv)
    logs.setup()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
