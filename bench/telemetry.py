"""Benchmark: a kiosk's heartbeat to central on loopback, there and back (HTTPS, central's CA pinned).

    python -m bench.telemetry [--runs N]

Central runs in this process on its own thread, on a fresh SQLite database, with one kiosk enrolled;
the kiosk's own `CentralClient.send_telemetry` sends what `kiosk/telemetry.py` builds. Figures are
median and p95 (nearest rank) over N runs after a warm-up:

    heartbeat                a heartbeat with nothing new: signed, checked, kept (history and status)
    heartbeat, 5 alerts      one carrying five alerts, each kept once
    audit batch of 100       the audit log's largest batch: each hash checked, the entries kept

Both sides share one interpreter, so the times are upper bounds of what a kiosk waits.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.device_auth import _percentile, _timed
from central import tls
from central.db import Database
from central.devices import Devices
from central.server import start_in_thread
from kiosk import wire
from kiosk.central_client import CentralClient
from kiosk.ports.telemetry import KeptAlert
from kiosk.provisioning import public_key_hex
from kiosk.telemetry import KioskFacts, MachineFacts, heartbeat_body, iso_utc
from offline.audit_log import SqliteAuditLog
from offline.database import StateDatabase

DEVICE_ID = "kiosk-bench-01"


def run(runs: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        files, _new = tls.init(workdir / "tls", ["127.0.0.1"])
        db_url = "sqlite:///%s" % (workdir / "central.sqlite3")
        with start_in_thread(db_url, tls_cert=files.server_cert, tls_key=files.server_key, device_rate_per_s=1e6,
                             device_burst=10 ** 6) as central:
            database = Database(db_url)
            code, _expires = Devices(database).issue_code(DEVICE_ID)
            database.dispose()
            key = Ed25519PrivateKey.generate()
            requests.post(central.url + wire.ENROL, timeout=10, verify=str(files.ca_cert), json={
                "device_id": DEVICE_ID, "code": code, "public_key": public_key_hex(key)}).raise_for_status()
            facts = KioskFacts("ready", card_reader="no_card", terminal="ready", printer="ready",
                               last_sync_at=time.time())
            machine = MachineFacts(20480, 1500)
            numbers = itertools.count()

            def alerts(count: int) -> list[KeptAlert]:
                return [KeptAlert(0, "printer.paper_low", iso_utc(1_700_000_000 + next(numbers) / 1000,
                                                                  milliseconds=True)) for _ in range(count)]

            audit = SqliteAuditLog(StateDatabase(":memory:"), DEVICE_ID, anchor_path=None)
            for number in range(100 * (runs + 1)):
                audit.append("technician.test_print", "page_%d" % number)
            batches = iter(range(runs + 1))
            figures: dict[str, list[float]] = {}
            with CentralClient(central.url, device_id=DEVICE_ID, ca_file=files.ca_cert, device_key=key) as client:
                def beat(count: int) -> None:
                    reply = client.send_telemetry(wire.TELEMETRY_HEARTBEAT, heartbeat_body(
                        facts, machine, version="0.1.0", sent_at=time.time(), last_error=None, alerts=alerts(count)))
                    assert reply is not None and reply.http_status == 200, reply

                def ship() -> None:
                    entries = audit.entries(after=100 * next(batches), limit=100)
                    reply = client.send_telemetry(wire.TELEMETRY_AUDIT, {"entries": [e.to_json() for e in entries]})
                    assert reply is not None and reply.http_status == 200, reply

                figures["heartbeat"] = _timed(runs, lambda: beat(0))
                figures["heartbeat, 5 alerts"] = _timed(runs, lambda: beat(5))
                figures["audit batch of 100"] = _timed(runs, ship)
    return figures


def report(figures: dict[str, list[float]]) -> str:
    lines = ["telemetry: a kiosk's heartbeat to central and back, on loopback over HTTPS (signed)"]
    for name, times in figures.items():
        lines.append("  %-24s median %7.2f ms   p95 %7.2f ms" % (name, statistics.median(times),
                                                                  _percentile(times, 0.95)))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    print(report(run(parser.parse_args().runs)))


if __name__ == "__main__":
    main()
