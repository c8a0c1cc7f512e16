"""Central served by uvicorn in a process of its own, for the load test (bench/fleet_load.py).

    python -m bench.central_process --db URL --tls-cert PEM --tls-key PEM --signing-key PEM
                                    --acquirer URL --issuer-key PEM [--device-rate 2 --device-burst 60]

What `kiosk-central serve` runs (central.app.create_app under uvicorn, one process: central keeps
state in its process, see the README's "Deployment"), with the one difference a load test on loopback
needs: every kiosk enrols from 127.0.0.1, so the public routes' per-address rate (enrolment's) is set
out of reach. The kiosks' own rate (`--device-rate`, `--device-burst`) is central's default unless told.
It logs as `serve` does, one line per request, to standard output; it prints nothing else there but,
once it accepts connections, one line ``serving URL`` on standard error. It stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from central.app import DEVICE_BURST, DEVICE_RATE_PER_S
from central.server import start_in_thread
from kiosk import logs

READY = "serving "


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.central_process", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True)
    parser.add_argument("--tls-cert", type=Path, required=True)
    parser.add_argument("--tls-key", type=Path, required=True)
    parser.add_argument("--signing-key", type=Path, required=True)
    parser.add_argument("--acquirer", required=True)
    parser.add_argument("--issuer-key", type=Path, required=True)
    parser.add_argument("--device-rate", type=float, default=DEVICE_RATE_PER_S)
    parser.add_argument("--device-burst", type=int, default=DEVICE_BURST)
    args = parser.parse_args(argv)
    logs.setup(sys.stdout)
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)      # uvicorn's thread inherits the mask: sigwait gets them
    central = start_in_thread(args.db, tls_cert=args.tls_cert, tls_key=args.tls_key,
                              signing_key_path=args.signing_key, acquirer_url=args.acquirer,
                              issuer_key_paths=[args.issuer_key], public_rate_per_s=1e6, public_burst=10 ** 6,
                              device_rate_per_s=args.device_rate, device_burst=args.device_burst)
    print(READY + central.url, file=sys.stderr, flush=True)
    signal.sigwait(stop)
    central.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
