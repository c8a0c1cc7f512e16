"""Benchmark: what checking for an update and fetching a release cost, against central on loopback.

    python -m bench.updates [--runs N] [--fetch-runs N] [--megabytes 50]

Central runs in this process on its own thread, over HTTPS under its own CA
(pinned by the kiosk, as on a device), serving a release repository with one
release of the size given (random bytes, so nothing compresses). The kiosk's
own `kiosk.updates.fetch` does the work. Figures are median and p95 (nearest
rank) over N runs:

    check, first              a kiosk that has only its firmware's root: timestamp, snapshot and targets
                              downloaded and verified (ngclient), the newest release picked
    check, again              the same kiosk later: the timestamp downloaded, the rest from its disk
    fetch N MB                the bundle downloaded into an empty download directory, then its SHA-256
                              checked against the signed metadata (a refresh comes first, as in `download`)
    of which hashing          the SHA-256 of the N MB file alone, in process

Both sides share one interpreter and one machine, so the times are upper bounds
for loopback and say nothing of a real link's bandwidth.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from central import tls
from central.releases.repository import ReleaseRepository
from central.server import start_in_thread
from kiosk import config as kiosk_config
from kiosk.updates import fetch


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _kiosk(directory: Path, url: str, root: Path, ca_file: Path) -> kiosk_config.KioskConfig:
    directory.mkdir(parents=True)
    issuer = directory / "issuer.pem"
    issuer.write_text("unused here\n")
    return kiosk_config.parse({
        "device_id": "kiosk-bench-01", "central": {"url": url, "ca_file": str(ca_file)},
        "card": {"trusted_issuers": [str(issuer)]}, "printer": {"host": "127.0.0.1"},
        "outbox": {"path": str(directory / "state" / "outbox.sqlite3")},
        "updates": {"trusted_root": str(root), "disk_margin_mb": 0, "metadata_dir": str(directory / "metadata"),
                    "download_dir": str(directory / "downloads")},
    })


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def run(runs: int, fetch_runs: int, megabytes: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"check, first": [], "check, again": [], "fetch %d MB" % megabytes: [],
                                       "of which hashing": []}
    with tempfile.TemporaryDirectory(prefix="bench-updates-") as work:
        workdir = Path(work)
        files, _new = tls.init(workdir / "tls", ["127.0.0.1"])
        repository, _keys = ReleaseRepository.create(workdir / "repo", workdir / "offline")
        bundle = workdir / ("kiosk-9.0.0-%s.tar" % fetch.this_platform())
        with bundle.open("wb") as out:
            for _ in range(megabytes):
                out.write(os.urandom(1024 * 1024))
        repository.publish(bundle, "9.0.0")
        root = repository.metadata_dir / "root.json"
        with start_in_thread("sqlite:///%s" % (workdir / "central.sqlite3"), release_repo=repository.directory,
                             tls_cert=files.server_cert, tls_key=files.server_key) as central:
            for number in range(runs + 1):
                config = _kiosk(workdir / ("kiosk-%d" % number), central.url, root, files.ca_cert)
                first = _timed(lambda: fetch.check(config, running="0.1.0"))
                again = _timed(lambda: fetch.check(config, running="0.1.0"))
                if number:                                   # the first run warms up
                    figures["check, first"].append(first)
                    figures["check, again"].append(again)
            config = _kiosk(workdir / "fetching", central.url, root, files.ca_cert)
            available = fetch.check(config, running="0.1.0")
            download_dir = fetch.UpdateSettings.of(config).download_dir
            for _ in range(fetch_runs):
                shutil.rmtree(download_dir)
                figures["fetch %d MB" % megabytes].append(_timed(lambda: fetch.download(config, available)))
                data = (download_dir / available.target).read_bytes()
                figures["of which hashing"].append(_timed(lambda: hashlib.sha256(data).hexdigest()))
    return figures


def report(figures: dict[str, list[float]]) -> str:
    lines = ["signed updates: a kiosk checking and fetching from central on loopback over HTTPS (CA pinned)"]
    for name, times in figures.items():
        lines.append("  %-18s median %8.1f ms   p95 %8.1f ms   (%d runs)" % (
            name, statistics.median(times), _percentile(times, 0.95), len(times)))
    fetched = next(name for name in figures if name.startswith("fetch"))
    megabytes = int(fetched.split()[1])
    lines.append("  fetch throughput: %.0f MB/s" % (megabytes / (statistics.median(figures[fetched]) / 1000)))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="checks by fresh kiosks (default %(default)s)")
    parser.add_argument("--fetch-runs", type=int, default=5, help="downloads of the bundle (default %(default)s)")
    parser.add_argument("--megabytes", type=int, default=50, help="the bundle's size (default %(default)s)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("central", "uvicorn"):        # central's start-up says what it lacks here (no acquirer, no issuer)
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    print(report(run(args.runs, args.fetch_runs, args.megabytes)))


if __name__ == "__main__":
    main()
