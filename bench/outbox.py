"""The outbox's figures: enqueue, drain, delivery to central, and memory against the queue's length.

    python -m bench.outbox [--puts N] [--rounds N] [--drain N] [--deliver N] [--pending N]

* durable enqueue: `Outbox.put` (sealed, one transaction, WAL, synchronous FULL) against
  persist-queue's `SQLiteAckQueue.put` at equal durability (WAL, synchronous FULL on both its
  connections, auto-commit: one transaction per put), the two taking turns in each round on the
  same disk; the median rates and their ratio (goal: at least 1.0 x);
* drain: N messages already queued, delivered by the sync worker to a central that answers at
  once with a document: the outbox's own overhead, in messages/s (goal: at least 3,000);
* delivery: N certificate requests to the reference central on loopback (with a stub acquirer)
  through the real client, in messages/s, with the part of central's time in each request spent
  hashing and signing (request digest, content digest, Ed25519 signature, and any scrypt);
* memory: a fresh process opens an outbox holding N pending messages and drains it; its peak
  resident memory against the same with 100 (goal: within 10 MB).

Reports figures and ratios; nothing here passes or fails on them.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

PAYLOAD = {"service_code": "birth-certificate", "national_number": "01020345693", "card_number": "SY1000000003",
           "language": "ar", "payment_id": "pay_0123456789abcdef",
           "place": {"ar": "دمشق - مركز خدمة المواطن في المزة", "en": "Damascus - Mazzeh citizen service centre"},
           "time_zone": "Asia/Damascus"}
DOCUMENT_ANSWER = {"status": "issued", "document": {
    "request_id": "", "serial": "2026-BENCH234", "service_code": "birth-certificate",
    "title": {"ar": "شهادة ولادة", "en": "Birth certificate"},
    "fields": [{"label": {"ar": "الاسم", "en": "Name"}, "value": "عمر الحداد"}] * 12,
    "issued_at": "2026-11-29T10:00:00Z", "verification": "KSK2:" + "A" * 330}}
ENQUEUE_GOAL = 1.0
DRAIN_GOAL = 3000.0
MEMORY_GOAL_MB = 10.0


def _request(i: int) -> tuple[str, dict]:
    request_id = "req-%08d" % i
    return request_id, dict(PAYLOAD, request_id=request_id)


# -- enqueue ----------------------------------------------------------------------------------------------

def _ours(directory: Path, puts: int) -> float:
    from offline.outbox import Outbox
    outbox = Outbox(directory / "outbox.sqlite3")
    try:
        started = time.perf_counter()
        for i in range(puts):
            request_id, payload = _request(i)
            outbox.put(request_id, "certificate_request", payload)
        return puts / (time.perf_counter() - started)
    finally:
        outbox.close()


def _persist_queue(directory: Path, puts: int) -> float:
    from persistqueue import SQLiteAckQueue
    queue = SQLiteAckQueue(str(directory / "persist-queue"), multithreading=True, auto_commit=True)
    for connection in {id(queue._conn): queue._conn, id(queue._putter): queue._putter}.values():
        connection.execute("PRAGMA synchronous=FULL")         # WAL is its default; FULL as ours
    try:
        started = time.perf_counter()
        for i in range(puts):
            queue.put(_request(i)[1])
        return puts / (time.perf_counter() - started)
    finally:
        queue.close()


def enqueue(puts: int, rounds: int) -> dict:
    ours, theirs = [], []
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-enqueue-") as scratch:
        for n in range(rounds):
            first, second = (_ours, _persist_queue) if n % 2 == 0 else (_persist_queue, _ours)
            for measure in (first, second):
                directory = Path(scratch) / ("%s-%d" % (measure.__name__, n))
                directory.mkdir(mode=0o700)
                (ours if measure is _ours else theirs).append(measure(directory, puts))
    return {"puts": puts, "rounds": rounds, "ours": statistics.median(ours), "theirs": statistics.median(theirs)}


# -- drain ------------------------------------------------------------------------------------------------

def _fill(path: Path, count: int) -> None:
    from offline.outbox import Outbox
    outbox = Outbox(path)
    with outbox.database.transaction():
        for i in range(count):
            request_id, payload = _request(i)
            outbox.put(request_id, "certificate_request", payload)
    outbox.close()


def drain(count: int) -> dict:
    from offline.outbox import Outbox
    from offline.sync import SyncWorker
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-drain-") as scratch:
        path = Path(scratch) / "outbox.sqlite3"
        _fill(path, count)
        outbox = Outbox(path)
        worker = SyncWorker(outbox, lambda kind, payload: DOCUMENT_ANSWER, probe=lambda: True)
        started = time.perf_counter()
        report = worker.drain_once()
        elapsed = time.perf_counter() - started
        outbox.close()
    return {"messages": count, "delivered": report.delivered, "per_s": report.delivered / elapsed}


# -- delivery to central ----------------------------------------------------------------------------------

class _Timer:
    """Seconds spent inside the functions it wraps, summed, on any thread."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def wrap(self, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1
        return timed


def deliver(count: int) -> dict:
    """Requests delivered to central through the real client; central's time and its hashing and signing."""
    from central import issuing, signing
    from central.server import start_in_thread
    from kiosk.central_client import CentralClient
    from offline.link_probe import HealthProbe
    from offline.outbox import Outbox
    from offline.sync import SyncWorker
    from tests.central.stub_acquirer import StubAcquirer

    handling, crypto = _Timer(), _Timer()
    originals = (issuing.Issuer.submit, signing.sign, issuing.body_digest, issuing.content_digest, hashlib.scrypt)
    issuing.Issuer.submit = handling.wrap(issuing.Issuer.submit)
    signing.sign = crypto.wrap(signing.sign)
    issuing.body_digest = crypto.wrap(issuing.body_digest)
    issuing.content_digest = crypto.wrap(issuing.content_digest)
    hashlib.scrypt = crypto.wrap(hashlib.scrypt)
    try:
        with tempfile.TemporaryDirectory(prefix="kiosk-bench-deliver-") as scratch, StubAcquirer() as acquirer:
            central = start_in_thread("sqlite:///%s" % (Path(scratch) / "central.sqlite3"), acquirer_url=acquirer.url)
            try:
                client = CentralClient(central.url, device_id="bench-kiosk")
                fee = client.fetch_catalogue().get("birth-certificate").fee
                outbox = Outbox(Path(scratch) / "state" / "outbox.sqlite3")
                for _ in range(count):
                    request_id = "req-" + uuid.uuid4().hex[:16]
                    outbox.put(request_id, "certificate_request", dict(
                        PAYLOAD, request_id=request_id, payment_id=acquirer.pay(fee.amount_minor, fee.currency)))
                handling.seconds = crypto.seconds = 0.0
                worker = SyncWorker(outbox, client.deliver, probe=HealthProbe(central.url))
                started = time.perf_counter()
                report = worker.drain_once()
                elapsed = time.perf_counter() - started
                outbox.close()
                client.close()
            finally:
                central.stop()
    finally:
        (issuing.Issuer.submit, signing.sign, issuing.body_digest, issuing.content_digest, hashlib.scrypt) = originals
    return {"messages": count, "delivered": report.delivered, "per_s": report.delivered / elapsed,
            "round_trip_ms": elapsed / max(1, report.delivered) * 1000,
            "central_ms": handling.seconds / max(1, handling.calls) * 1000,
            "crypto_ms": crypto.seconds / max(1, handling.calls) * 1000}


# -- memory -----------------------------------------------------------------------------------------------

_CHILD = """
import resource, sys
from offline.outbox import Outbox
from offline.sync import SyncWorker
answer = {"status": "issued", "document": {"serial": "2026-BENCH234"}}
outbox = Outbox(sys.argv[1])
report = SyncWorker(outbox, lambda kind, payload: answer, probe=lambda: True).drain_once()
print(report.delivered, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def memory(pending: int) -> dict:
    """Peak resident memory of a fresh process draining an outbox of 100, then of `pending`, messages."""
    peaks = {}
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-memory-") as scratch:
        for count in (100, pending):
            path = Path(scratch) / ("outbox-%d.sqlite3" % count)
            _fill(path, count)
            out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True,
                                 check=True, timeout=600).stdout.split()
            if int(out[0]) != count:
                raise RuntimeError("the child delivered %s of %d messages" % (out[0], count))
            peaks[count] = int(out[1])                    # kilobytes (Linux)
    return {"small": 100, "large": pending, "small_kb": peaks[100], "large_kb": peaks[pending]}


# -- all of it --------------------------------------------------------------------------------------------

def run(puts: int = 1000, rounds: int = 5, drain_count: int = 10_000, deliver_count: int = 200,
        pending: int = 100_000) -> dict:
    logging.getLogger("offline").setLevel(logging.WARNING)
    return {"enqueue": enqueue(puts, rounds), "drain": drain(drain_count), "deliver": deliver(deliver_count),
            "memory": memory(pending)}


def report(figures: dict) -> str:
    e, d, c, m = figures["enqueue"], figures["drain"], figures["deliver"], figures["memory"]
    ratio = e["ours"] / e["theirs"]
    growth_mb = (m["large_kb"] - m["small_kb"]) / 1024
    share = c["crypto_ms"] / c["central_ms"] if c["central_ms"] else 0.0
    return "\n".join([
        "the outbox (state on disk: WAL, synchronous FULL)",
        "  durable enqueue, %d puts x %d rounds   ours %7.0f/s   persist-queue SQLiteAckQueue %7.0f/s   "
        "%.2f x   (goal: at least %.1f x)" % (e["puts"], e["rounds"], e["ours"], e["theirs"], ratio, ENQUEUE_GOAL),
        "  drain of %d queued messages          %7.0f messages/s   (goal: at least %.0f)" % (
            d["messages"], d["per_s"], DRAIN_GOAL),
        "  delivery to central on loopback, %d  %7.1f messages/s   %.1f ms a request; central %.1f ms of it, "
        "hashing and signing %.1f ms (%.0f %% of central's)" % (
            c["messages"], c["per_s"], c["round_trip_ms"], c["central_ms"], c["crypto_ms"], share * 100),
        "  memory draining %d vs %d pending      %7.1f MB vs %.1f MB: %+.1f MB   (goal: within %.0f MB)" % (
            m["large"], m["small"], m["large_kb"] / 1024, m["small_kb"] / 1024, growth_mb, MEMORY_GOAL_MB),
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--puts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--drain", type=int, default=10_000)
    parser.add_argument("--deliver", type=int, default=200)
    parser.add_argument("--pending", type=int, default=100_000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    print(report(run(args.puts, args.rounds, args.drain, args.deliver, args.pending)))


if __name__ == "__main__":
    main()
