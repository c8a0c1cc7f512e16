"""Benchmark: what proving who asks costs, against central on loopback (HTTPS, its CA pinned).

    python -m bench.device_auth [--runs N]

Central runs in this process on its own thread, on a fresh SQLite database,
with one kiosk enrolled; the kiosk's own `CentralClient` asks it. Figures are
median and p95 (nearest rank) over N runs after a warm-up:

    health, unsigned          the public health check: TLS, HTTP and FastAPI alone
    catalogue, signed         the catalogue: the kiosk signs (RFC 9421, Ed25519), central checks the
                              signature and keeps its nonce
    signing alone             the kiosk's side of one signature, in process
    checking alone            central's side of one signature (and its nonce written), in process
    pre-check, card proven    a challenge, the card's signature over it (the fake reader's card, which
                              signs with a real chip key), and the pre-check that checks the card's
                              proof: what the citizen waits for before paying, less the card's own time
                              (bench.card_read has that: about half a millisecond on the simulator)

The share that matters is signing and checking over a signed call: what proving
the kiosk adds to each. Both sides share one interpreter, so the times are
upper bounds.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central import tls
from central.db import Database
from central.device_auth import DeviceAuthenticator
from central.devices import Devices
from central.seeding import SEED_DIR
from central.server import start_in_thread
from drivers.card_sim.card import identity_from_record
from drivers.card_sim.issuer import IssuerKey
from drivers.fakes.card_reader import FakeCard, FakeCardReader
from kiosk import wire
from kiosk.central_client import CentralClient, signed_by
from kiosk.provisioning import public_key_hex

DEVICE_ID = "kiosk-bench-01"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _timed(runs: int, call: Callable[[], object]) -> list[float]:
    call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def run(runs: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        issuer = IssuerKey.generate()
        (workdir / "issuer.pub.pem").write_bytes(issuer.public_pem)
        files, _new = tls.init(workdir / "tls", ["127.0.0.1"])
        db_url = "sqlite:///%s" % (workdir / "central.sqlite3")
        with start_in_thread(db_url, tls_cert=files.server_cert, tls_key=files.server_key,
                             issuer_key_paths=[workdir / "issuer.pub.pem"], device_rate_per_s=1e6,
                             device_burst=10 ** 6) as central:
            database = Database(db_url)
            code, _expires = Devices(database).issue_code(DEVICE_ID)
            key = Ed25519PrivateKey.generate()
            requests.post(central.url + wire.ENROL, timeout=10, verify=str(files.ca_cert), json={
                "device_id": DEVICE_ID, "code": code, "public_key": public_key_hex(key)}).raise_for_status()
            citizens = json.loads((SEED_DIR / "citizens.json").read_text(encoding="utf-8"))["citizens"]
            reader = _card_in_reader(citizens[0], issuer)
            figures: dict[str, list[float]] = {}
            with CentralClient(central.url, device_id=DEVICE_ID, ca_file=files.ca_cert, device_key=key) as client:
                plain = requests.Session()
                figures["health, unsigned"] = _timed(runs, lambda: plain.get(
                    central.url + wire.HEALTH, timeout=10, verify=str(files.ca_cert)))
                plain.close()
                figures["catalogue, signed"] = _timed(runs, client.fetch_signed_catalogue)
                signer = signed_by(DEVICE_ID, key)
                prepared = requests.Request("POST", central.url + wire.CHALLENGES, json={}).prepare()
                figures["signing alone"] = _timed(runs, lambda: signer(prepared.copy()))
                checker = DeviceAuthenticator(database)
                figures["checking alone"] = _timed(runs, lambda: _check_one(checker, signer, central.url))
                fee = client.fetch_catalogue().services[0].fee

                def pre_check() -> None:
                    challenge = client.challenge()
                    client.check_eligibility(service_code="birth-certificate", challenge=challenge,
                                             proof=reader.prove(challenge.nonce), fee=fee, catalogue_version="")
                figures["pre-check, card proven"] = _timed(runs, pre_check)
            database.dispose()
    return figures


def _card_in_reader(record: dict, issuer: IssuerKey) -> FakeCardReader:
    """A citizen's card, issued by `issuer`, in a reader, PIN verified: ready to sign challenges."""
    identity = identity_from_record(record, ec.generate_private_key(ec.SECP256R1()).public_key(), issuer)
    reader = FakeCardReader()
    reader.insert(FakeCard.issued(identity, issuer))
    reader.connect()
    reader.authenticate("1234", today=datetime.date.today())
    return reader


def _check_one(checker: DeviceAuthenticator, signer: object, url: str) -> None:
    """One request signed, then checked as central checks it (each has a nonce of its own)."""
    request = signer(requests.Request("POST", url + wire.CHALLENGES, json={}).prepare())
    checker.authenticate(request.method, request.url, list(request.headers.items()), request.body)


def report(figures: dict[str, list[float]]) -> str:
    lines = ["proving who asks: a kiosk's signed calls and a card's proof, central on loopback over HTTPS"]
    for name, times in figures.items():
        lines.append("  %-24s median %7.2f ms   p95 %7.2f ms" % (name, statistics.median(times),
                                                                  _percentile(times, 0.95)))
    added = statistics.median(figures["signing alone"]) + statistics.median(figures["checking alone"])
    lines.append("  signing and checking: %.2f ms, %.0f%% of a signed catalogue call"
                 % (added, 100 * added / statistics.median(figures["catalogue, signed"])))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100)
    print(report(run(parser.parse_args().runs)))


if __name__ == "__main__":
    main()
