"""The kiosk side of tests/drivers/test_reader_unplugged.py, in a process of its own.

    PCSCLITE_CSOCK_NAME=/tmp/x/pcscd.comm python -m tests.drivers.reader_events_probe \\
        --trust issuer.pem --reader "Virtual PCD 00 00" --today 2026-01-15

libpcsclite reads the socket name once per process, so a driver that talks to
a private pcscd must live in a process started with that environment. This
one builds a `PyscardCardReader`, watches, and prints one line per happening
on stdout (logs go to stderr):

    ready status=no_card
    event inserted status=ready t=12.345678 cpu=0.123456
    read connect=connected verdict=valid
    event reader_lost status=no_reader t=... cpu=...
    unwatched watchers=0

`status` is the driver's status as the event is delivered; `t` (monotonic)
and `cpu` (this process's CPU time) let the test see that nothing spins while
the reader is gone. On INSERTED it connects and authenticates with `--pin`.
A line "quit" on stdin (or its end) unwatches and exits.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import queue
import sys
import threading
import time

from kiosk.ports.card_reader import CardEvent
from kiosk.issuer_keys import load_issuer_keys
from drivers.pyscard_reader import PyscardCardReader

_QUIT = "quit"


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _read_stdin(inbox: queue.SimpleQueue[object]) -> None:
    for line in sys.stdin:
        if line.strip() == _QUIT:
            break
    inbox.put(_QUIT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trust", required=True, help="issuer public key (PEM)")
    parser.add_argument("--reader", default="", help="reader name prefix")
    parser.add_argument("--pin", default="1234")
    parser.add_argument("--today", type=dt.date.fromisoformat, default=dt.date.today())
    parser.add_argument("--apdu-timeout", type=float, default=2.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(threadName)s %(name)s %(message)s")

    reader = PyscardCardReader(load_issuer_keys([args.trust]), reader_name=args.reader,
                               apdu_timeout_s=args.apdu_timeout)
    inbox: queue.SimpleQueue[object] = queue.SimpleQueue()

    def on_event(event: CardEvent) -> None:
        # On the driver's event thread: note the status as delivered, print from main.
        inbox.put("event %s status=%s t=%.6f cpu=%.6f" % (
            event.name.lower(), reader.status.name.lower(), time.monotonic(), time.process_time()))
        if event is CardEvent.INSERTED:
            inbox.put(CardEvent.INSERTED)

    reader.watch(on_event)
    _say("ready status=%s" % reader.status.name.lower())
    threading.Thread(target=_read_stdin, args=(inbox,), name="probe-stdin", daemon=True).start()
    try:
        while True:
            item = inbox.get()
            if item == _QUIT:
                break
            if item is CardEvent.INSERTED:
                connected = reader.connect()
                verdict = reader.authenticate(args.pin, today=args.today).verdict
                reader.disconnect()
                _say("read connect=%s verdict=%s" % (connected.name.lower(), verdict.name.lower()))
            else:
                _say(str(item))
    finally:
        reader.unwatch()
        reader.disconnect()
    watchers = sum(1 for thread in threading.enumerate() if thread.name == "card-watch")
    _say("unwatched watchers=%d" % watchers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
