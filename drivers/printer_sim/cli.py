"""`kiosk-sim printer`: run the simulated network printer until interrupted."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from drivers.printer_sim.server import PrinterSimulator


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "printer", help="a network ESC/POS printer that writes each job as a PNG",
        description="A network ESC/POS printer on TCP: each job is written as job-NNNN.png and job-NNNN.bin.")
    parser.add_argument("--out", type=Path, required=True, help="directory for the job files")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9100, help="TCP port (default 9100)")
    parser.set_defaults(run=run)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM (systemd's stop), printing a line per job."""
    signal.signal(signal.SIGTERM, _interrupt)
    simulator = PrinterSimulator(args.out, host=args.host, port=args.port)
    try:
        simulator.start()
    except OSError as error:
        print("cannot listen on %s:%d: %s" % (args.host, args.port, error.strerror or error))
        return 1
    print("printer simulator on %s:%d, writing jobs to %s" % (args.host, simulator.port, args.out), flush=True)
    printed = 0
    try:
        while True:
            try:
                jobs = simulator.wait_for_jobs(printed + 1, timeout=1.0)
            except TimeoutError:
                continue
            for job in jobs[printed:]:
                print("%s  %d bytes  %d image(s)  %d QR  %d text line(s)%s" % (
                    job.png_path, len(job.raw), len(job.images), len(job.qr_codes), len(job.text_lines),
                    "" if job.complete else "  (no cut: connection ended)"), flush=True)
            printed = len(jobs)
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
    return 0
