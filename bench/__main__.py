"""`make bench`: the kiosk's figures, measured on the real stack.

    python -m bench [--card-runs N] [--journey-runs N] [--cold-runs N] [--print-runs N] [--memory-journeys N]
                    [--nexo-runs N] [--payment-runs N] [--outbox-pending N] [--auth-runs N]
                    [--fleet-kiosks N] [--fleet-seconds S] [--telemetry-runs N]

Reports wall times and ratios; nothing here passes or fails on a time.
"""

from __future__ import annotations

import argparse
import logging

from bench import (card_read, cold_start, device_auth, fleet_load, journey, memory, nexo_round_trip, outbox,
                   payment_overhead, printing, telemetry, touches)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--card-runs", type=int, default=30)
    parser.add_argument("--journey-runs", type=int, default=3)
    parser.add_argument("--cold-runs", type=int, default=5,
                        help="cold starts of the kiosk and of a bare Kivy app, each (default %(default)s)")
    parser.add_argument("--print-runs", type=int, default=5,
                        help="layouts of each printed document, timed (default %(default)s)")
    parser.add_argument("--memory-journeys", type=int, default=300,
                        help="journeys in one kiosk process for its memory (default %(default)s; about 6 s each)")
    parser.add_argument("--nexo-runs", type=int, default=200,
                        help="sales over nexo against the terminal simulator on loopback (default %(default)s)")
    parser.add_argument("--payment-runs", type=int, default=50,
                        help="journeys timed for the kiosk's own time around a payment (default %(default)s)")
    parser.add_argument("--outbox-pending", type=int, default=100_000,
                        help="pending messages for the outbox's memory figure (default %(default)s)")
    parser.add_argument("--auth-runs", type=int, default=100,
                        help="signed calls and card proofs timed against central on loopback (default %(default)s)")
    parser.add_argument("--telemetry-runs", type=int, default=200,
                        help="heartbeats and audit batches timed against central on loopback (default %(default)s)")
    parser.add_argument("--fleet-kiosks", type=int, default=1000,
                        help="kiosks of the fleet load test against central on PostgreSQL (default %(default)s)")
    parser.add_argument("--fleet-seconds", type=float, default=60.0,
                        help="each of its phases: the real pace, then compressed (default %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    print(card_read.format_table(card_read.run(args.card_runs)))
    print()
    print(journey.report(journey.run(args.journey_runs)))
    print()
    print(cold_start.report(cold_start.run(args.cold_runs)))
    print()
    print(printing.report(printing.run(args.print_runs)))
    print()
    print(touches.report(touches.run()))
    print()
    print(nexo_round_trip.report(nexo_round_trip.run(args.nexo_runs)))
    print()
    print(payment_overhead.report(payment_overhead.run(args.payment_runs)))
    print()
    print(outbox.report(outbox.run(pending=args.outbox_pending)))
    print()
    print(device_auth.report(device_auth.run(args.auth_runs)))
    print()
    print(telemetry.report(telemetry.run(args.telemetry_runs)))
    print()
    print(fleet_load.report(fleet_load.run_alone(args.fleet_kiosks, fleet_load.phases_of(
        args.fleet_seconds, fleet_load.REAL_HEARTBEAT_S, fleet_load.COMPRESSED_HEARTBEATS_S))))
    print()
    print(memory.report(memory.run(args.memory_journeys)))


if __name__ == "__main__":
    main()
