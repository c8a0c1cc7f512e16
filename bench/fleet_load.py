"""Load test: a fleet of simulated kiosks against central on PostgreSQL, on loopback, bounded in time.

    python -m bench.fleet_load [--kiosks 1000] [--seconds 60] [--heartbeat-s 60] [--compressed 10,4]
                               [--journey-every 5] [--generators 1] [--threads 32] [--centrals 1]
                               [--not-durable]

What runs, each in a process of its own:

- PostgreSQL: a throwaway cluster from Debian's packages (tests/postgres_server.py, the test suite's),
  reached over TCP on 127.0.0.1 as a database on another machine would be; durable as a real one
  (fsync and synchronous commits on) unless `--not-durable` (the test suite's settings).
- Central: `bench.central_process`, i.e. central.app under uvicorn, one process (central keeps state in
  its process: a write lock, rate limits, see the README's "Deployment"), HTTPS with its own CA as
  deployed, logging a line per request to a file, the kiosks' rate limits at their defaults (the
  public routes' per-address limit is lifted: every kiosk enrols from 127.0.0.1).
  `--centrals N` runs N such processes on the one database, kiosk i talking to process i % N (as a
  balancer that keeps each kiosk on one process): what a second process gives today.
- A stub acquirer (tests/central/stub_acquirer.py) on a thread of this process, which knows every payment
  the kiosks will name.
- The load generator: `--generators` processes (`python -m bench.fleet_load --generator`), each with
  `--threads` threads, driving its share of the kiosks. One is enough on 2 cores: it uses about a
  quarter of the CPU central does, and the report shows both.

Each kiosk is enrolled through central's enrolment route with a code from Devices.issue_code and a key
of its own (Ed25519); every call after that is signed with it (kiosk.central_client.signed_by), as a
kiosk signs, so central checks a signature and keeps a nonce per call. A kiosk has its own HTTP
session (its own connections, which central closes after 5 s idle as it does a real kiosk's).

**The mix.** Every `heartbeat_s` a kiosk does one round, as an idle kiosk does every minute:

    POST /telemetry/heartbeat    its state, devices, queue (kiosk.telemetry.heartbeat_body)
    GET  /catalogue              signed by central (the kiosk refreshes it every catalogue.refresh_s, 60 s)
    GET  /announcements          signed by central (fetched with the catalogue)

and one round in `journey_every` (5: a citizen every 5 minutes at the real pace, a busy kiosk) also
serves a citizen whose card (drivers.fakes.card_reader, issued by the issuer central trusts) proves
itself twice, then pays and gets a birth certificate issued:

    POST /challenges, POST /claims/waiting              documents waiting for the card's holder
    POST /challenges, POST /requests/eligibility        the pre-check before the charge
    POST /requests                                      the paid request (the outbox's delivery): the
                                                        payment looked up at the acquirer, the document
                                                        signed and stored

A round starts at its time whatever the previous one took (the fleet's rounds are spread evenly over
`heartbeat_s`); one that cannot start on time (every thread busy: central or the generator behind)
starts late, and how late is reported. Threads bound the calls in flight, so an overloaded central is
seen as rounds late and slower answers, not as timeouts.

**Phases.** First the real pace (`--heartbeat-s`, 60 s as a kiosk beats), then each `--compressed`
heart-beat period in turn (a period of 6 s with 1,000 kiosks is the load of 10,000 at the real pace)
to find where central stops keeping up. Each phase lasts `--seconds`; no round starts later than its
grace after its end (the hard deadline: `GRACE_S` at the real pace, one period in a compressed phase,
which is overloaded on purpose), the rounds left then are reported as undone (more offered than
served: an error at the real pace), and a generator that has not reported shortly after is killed.

**Figures**, per phase: requests and requests per second per route and overall, latency p50 and p99
(nearest rank, as the kiosk measures a call: signing included), errors (every non-2xx, exception or
answer that is not what a kiosk expects, printed with its reason: there must be none), how late
rounds started, CPU time of central, of PostgreSQL (all its processes) and of the generator as a
share of one core, and PostgreSQL's connections (sampled) and transactions that wrote (the cluster's
transaction ids taken) per second. At the end: whether
every kiosk's heartbeats answered 200 are the ones in central's history, and the heartbeat table's
size per row.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import datetime
import heapq
import json
import math
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from requests.adapters import HTTPAdapter
from sqlalchemy import func, make_url, select as sql_select

from bench import central_process
from central import signing, tls
from central.catalogue_store import load_catalogue
from central.db import Database
from central.devices import Devices
from central.models import KioskHeartbeat
from central.seeding import SEED_DIR
from drivers.card_sim.card import identity_from_record
from drivers.card_sim.issuer import IssuerKey
from drivers.fakes.card_reader import FakeCard, FakeCardReader
from kiosk import wire
from kiosk.central_client import signed_by
from kiosk.provisioning import public_key_hex
from kiosk.telemetry import KioskFacts, MachineFacts, heartbeat_body

ROUTES = {
    "heartbeat": "POST /telemetry/heartbeat",
    "catalogue": "GET /catalogue",
    "announcements": "GET /announcements",
    "challenge": "POST /challenges",
    "claims_waiting": "POST /claims/waiting",
    "eligibility": "POST /requests/eligibility",
    "request": "POST /requests",
}
SERVICE = "birth-certificate"
PLACE = {"ar": "دمشق - مركز خدمة المواطن في المزة", "en": "Damascus - Mazzeh citizen service centre"}
TIME_ZONE = "Asia/Damascus"
GOVERNORATES = ("damascus", "rif-dimashq", "aleppo", "homs", "hama", "latakia", "tartus")
REAL_HEARTBEAT_S = 60.0         # telemetry.heartbeat_s and catalogue.refresh_s, a kiosk's defaults
COMPRESSED_HEARTBEATS_S = (10.0, 4.0)   # the phases after it: 6 and 15 times the real pace
GRACE_S = 60.0                  # a phase's hard deadline: this long after its end
START_TIMEOUT_S = 120.0         # central started, a generator ready
TIMEOUT_S = (3.05, 10.0)        # connect, read: the kiosk's own (kiosk.central_client)
ERRORS_SHOWN = 20


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)] if ordered else float("nan")


# -- the load generator (its own process) --------------------------------------------------------------------

class _Kiosk:
    """One simulated kiosk: its signed session, the catalogue version it shows, its citizens' card."""

    def __init__(self, spec: dict, url: str, ca_file: str) -> None:
        self.device_id: str = spec["device_id"]
        self.index: int = spec["index"]
        self.payments: list[str] = spec["payments"]
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(spec["key"]))
        self.http = requests.Session()
        self.http.auth = signed_by(self.device_id, key)
        self.http.verify = ca_file
        self.http.headers["User-Agent"] = "citizen-kiosk/%s" % self.device_id
        for scheme in ("http://", "https://"):
            self.http.mount(scheme, HTTPAdapter(max_retries=0))
        self.url = url
        self.catalogue_version = ""
        self.heartbeats_ok = 0
        self.journeys = 0
        self.reader: FakeCardReader | None = None


class _Generator:
    """Drives its kiosks' rounds on a schedule with a bounded pool of threads; keeps every figure."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        # Kiosk i talks to central i % N, as a balancer that keeps a kiosk on one process would send it.
        self.kiosks = [_Kiosk(k, spec["urls"][k["index"] % len(spec["urls"])], spec["ca_file"])
                       for k in spec["kiosks"]]
        self.latencies: dict[str, list[float]] = collections.defaultdict(list)
        self.errors: collections.Counter[tuple[str, str]] = collections.Counter()
        self.lateness: list[float] = []
        self.rounds = self.journeys = 0
        self.undone = 0                     # rounds due that no thread started by the hard deadline
        self._lock = threading.Lock()
        self._issuer = IssuerKey.load(spec["issuer_key"])
        self._citizens = spec["citizens"]

    # one call ---------------------------------------------------------------------------------------------

    def _call(self, kiosk: _Kiosk, route: str, method: str, path: str, body: dict | None = None) -> dict | None:
        """One signed call; its JSON answer, or None (the error counted, with its reason)."""
        started = time.perf_counter()
        try:
            # `verify` on each call, as the kiosk passes it: a CA bundle named in the environment would win.
            response = kiosk.http.request(method, kiosk.url + path, json=body, timeout=TIMEOUT_S,
                                          verify=kiosk.http.verify, allow_redirects=False)
            elapsed = (time.perf_counter() - started) * 1000
            answer = response.json() if response.headers.get("content-type", "").startswith(
                "application/json") else None
        except (requests.RequestException, ValueError) as exc:
            self._error(route, "exception %s: %s" % (type(exc).__name__, str(exc)[:160]))
            return None
        with self._lock:
            self.latencies[route].append(elapsed)
        if not 200 <= response.status_code < 300:
            reason = answer.get("reason") if isinstance(answer, dict) else None
            self._error(route, "HTTP %d %s" % (response.status_code, reason or "-"))
            return None
        if not isinstance(answer, dict):
            self._error(route, "answer not a JSON object")
            return None
        return answer

    def _error(self, route: str, reason: str) -> None:
        with self._lock:
            self.errors[(route, reason)] += 1

    # a kiosk's round --------------------------------------------------------------------------------------

    def _round(self, kiosk: _Kiosk, number: int) -> None:
        facts = KioskFacts(state="ready", card_reader="no_card", terminal="ready", printer="ready",
                           queue_depth=0, last_sync_at=time.time() - 30)
        body = heartbeat_body(facts, MachineFacts(disk_free_mb=20_000, memory_available_mb=1_500), version="0.1.0",
                              sent_at=time.time(), last_error=None, alerts=[])
        answer = self._call(kiosk, "heartbeat", "POST", wire.TELEMETRY_HEARTBEAT, body)
        if answer is not None:
            if answer.get("status") == "ok" and isinstance(answer.get("commands"), list):
                kiosk.heartbeats_ok += 1
            else:
                self._error("heartbeat", "answer without status ok and commands")
        catalogue = self._call(kiosk, "catalogue", "GET", wire.CATALOGUE)
        if catalogue is not None:
            if isinstance(catalogue.get("version"), str) and catalogue.get("signature"):
                kiosk.catalogue_version = catalogue["version"]
            else:
                self._error("catalogue", "catalogue without version or signature")
        self._call(kiosk, "announcements", "GET", wire.ANNOUNCEMENTS)
        if (number + kiosk.index) % self.spec["journey_every"] == 0:
            self._journey(kiosk)

    def _reader(self, kiosk: _Kiosk) -> FakeCardReader:
        """The card of the citizen this kiosk serves, in its reader, PIN verified."""
        if kiosk.reader is None:
            record = self._citizens[kiosk.index % len(self._citizens)]
            identity = identity_from_record(record, ec.generate_private_key(ec.SECP256R1()).public_key(),
                                            self._issuer)
            reader = FakeCardReader()
            reader.insert(FakeCard.issued(identity, self._issuer))
            reader.connect()
            reader.authenticate("1234", today=datetime.date.today())
            kiosk.reader = reader
        return kiosk.reader

    def _proven(self, kiosk: _Kiosk) -> dict | None:
        """Central's challenge and the card's proof over it: the body of a question about the citizen."""
        challenge = self._call(kiosk, "challenge", "POST", wire.CHALLENGES, {})
        if challenge is None:
            return None
        proof = self._reader(kiosk).prove(base64.b64decode(challenge["challenge"]))
        if proof is None:
            self._error("challenge", "the card did not sign the challenge")
            return None
        return {"challenge_id": challenge["challenge_id"], "card_proof": proof.to_json()}

    def _journey(self, kiosk: _Kiosk) -> None:
        with self._lock:
            self.journeys += 1
        proven = self._proven(kiosk)
        if proven is None:
            return
        waiting = self._call(kiosk, "claims_waiting", "POST", wire.CLAIMS_WAITING, proven)
        if waiting is None:
            return
        if not isinstance(waiting.get("documents"), list):
            self._error("claims_waiting", "answer without documents")
        proven = self._proven(kiosk)
        if proven is None:
            return
        fee = self.spec["fee"]
        eligible = self._call(kiosk, "eligibility", "POST", wire.ELIGIBILITY, {
            **proven, "service_code": SERVICE, "fee": fee, "catalogue_version": kiosk.catalogue_version})
        if eligible is None:
            return
        if eligible.get("eligible") is not True or eligible.get("fee") != fee:
            self._error("eligibility", "not eligible (%s), or another fee" % eligible.get("reason", "-"))
            return
        if kiosk.journeys >= len(kiosk.payments):
            self._error("request", "no payment left for this kiosk (the schedule ran more journeys than planned)")
            return
        payment_id = kiosk.payments[kiosk.journeys]
        kiosk.journeys += 1
        issued = self._call(kiosk, "request", "POST", wire.REQUESTS, {
            "request_id": "req-%s" % uuid.uuid4().hex[:20], "service_code": SERVICE, "language": "ar",
            "presence_id": eligible["presence_id"], "payment_id": payment_id, "place": PLACE,
            "time_zone": TIME_ZONE})
        if issued is not None and issued.get("status") != "issued":
            self._error("request", "not issued: %s" % issued.get("reason", issued.get("status")))

    # the schedule -----------------------------------------------------------------------------------------

    def run(self, go: float) -> None:
        """Rounds from `go` (wall time) for `seconds`: kiosk i's first at go + heartbeat_s * i / fleet, then
        one every heartbeat_s, each taken by whichever thread is free (none free: it starts late). No round
        starts after the phase's hard deadline (its grace past the end); those left then are `undone`."""
        period, fleet = self.spec["heartbeat_s"], self.spec["fleet"]
        end = go + self.spec["seconds"]
        deadline = end + self.spec["grace_s"]
        firsts = [(go + period * kiosk.index / fleet, n, 0) for n, kiosk in enumerate(self.kiosks)]
        due = [first for first in firsts if first[0] < end]
        expected = sum(math.ceil((end - when) / period) for when, _n, _number in due)
        heapq.heapify(due)
        schedule = threading.Condition()
        to_come = [len(due)]                # kiosks with a round still due or running

        def worker() -> None:
            while True:
                with schedule:
                    while True:
                        now = time.time()
                        if to_come[0] == 0 or now >= deadline:
                            return
                        wait = min(due[0][0], deadline) - now if due else deadline - now
                        if due and due[0][0] <= now:
                            when, n, number = heapq.heappop(due)
                            break
                        schedule.wait(wait)
                with self._lock:
                    self.lateness.append((time.time() - when) * 1000)
                    self.rounds += 1
                try:
                    self._round(self.kiosks[n], number)
                except Exception as exc:  # a fault of the generator's own shows as an error, and the round ends
                    self._error("round", "exception %s: %s" % (type(exc).__name__, exc))
                with schedule:
                    if when + period < end:
                        heapq.heappush(due, (when + period, n, number + 1))
                    else:
                        to_come[0] -= 1
                    schedule.notify_all()

        threads = [threading.Thread(target=worker, name="kiosks-%d" % i, daemon=True)
                   for i in range(self.spec["threads"])]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, deadline + TIMEOUT_S[1] * 2 - time.time()))
        with self._lock:
            self.undone = expected - self.rounds

    def results(self) -> dict:
        with self._lock:      # a round still running past the deadline goes on adding: a copy, taken at once
            return {"latencies": {route: list(times) for route, times in self.latencies.items()},
                    "errors": [[r, why, n] for (r, why), n in self.errors.items()], "lateness": list(self.lateness),
                    "rounds": self.rounds, "undone": self.undone, "journeys": self.journeys,
                    "heartbeats": {k.device_id: k.heartbeats_ok for k in self.kiosks}}



def _generator_main() -> int:
    """`--generator`: one line of JSON on standard input (the spec), `ready` on standard output once the
    kiosks are set up, then a line {"go": wall time}; the figures as one line of JSON at the end."""
    spec = json.loads(sys.stdin.readline())
    generator = _Generator(spec)
    print("ready", flush=True)
    go = json.loads(sys.stdin.readline())["go"]
    cpu_before = os.times()
    generator.run(go)
    cpu_after = os.times()
    results = generator.results()
    results["finished_at"] = time.time()
    results["cpu_s"] = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    print(json.dumps(results), flush=True)
    return 0


# -- measuring the processes --------------------------------------------------------------------------------

_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (field 3, the state, first); None for a process gone."""
    try:
        text = Path("/proc/%d/stat" % pid).read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def _cpu_s(pid: int, *, with_children: bool = False) -> float:
    """CPU seconds (user and system) a process has used, all its threads; with the children it has
    reaped when told (PostgreSQL's ended backends)."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if with_children else 0)
    return ticks * _TICK_S


def _postgres_cpu_s(postmaster: int) -> float:
    """The cluster's CPU seconds: the postmaster, the backends it reaped, and its live children."""
    total = _cpu_s(postmaster, with_children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == postmaster:
                total += _cpu_s(int(entry.name))
    return total


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, every core, since it started."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) * _TICK_S, sum(values[:8]) * _TICK_S


class _ConnectionSampler:
    """PostgreSQL's connections to the database, sampled twice a second on a thread of its own."""

    def __init__(self, connect: dict, dbname: str) -> None:
        self._connect, self._dbname = connect, dbname
        self.samples: list[tuple[int, int, int]] = []       # (open, active, idle in transaction)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-connections", daemon=True)

    def _run(self) -> None:
        with psycopg.connect(**self._connect, autocommit=True) as connection:
            while not self._stop.is_set():
                row = connection.execute(
                    "SELECT count(*), count(*) FILTER (WHERE state = 'active'), "
                    "count(*) FILTER (WHERE state LIKE 'idle in transaction%%') "
                    "FROM pg_stat_activity WHERE datname = %s", (self._dbname,)).fetchone()
                self.samples.append(tuple(row))
                self._stop.wait(0.5)

    def __enter__(self) -> _ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


# -- the orchestration ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Phase:
    name: str
    heartbeat_s: float
    seconds: float
    grace_s: float = GRACE_S      # no round starts later than this after the end


@dataclass
class PhaseReport:
    phase: Phase
    kiosks: int
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: collections.Counter = field(default_factory=collections.Counter)   # (route, reason) -> count
    lateness: list[float] = field(default_factory=list)
    rounds: int = 0
    undone: int = 0             # rounds due that did not start by the hard deadline: more offered than served
    journeys: int = 0
    elapsed_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)      # central, postgresql, generator, machine
    machine_cores: float = 0.0
    connections: list[tuple[int, int, int]] = field(default_factory=list)
    writes: int = 0             # transactions that wrote (took a transaction id)
    heartbeats: dict[str, int] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(len(times) for times in self.latencies.values())

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass
class FleetReport:
    kiosks: int
    centrals: int
    generators: int
    threads: int
    journey_every: int
    postgres_version: str = ""
    durable: bool = False             # fsync and synchronous_commit on: each commit waits for the disk
    enrol_s: float = 0.0
    phases: list[PhaseReport] = field(default_factory=list)
    history_mismatches: list[tuple[str, int, int]] = field(default_factory=list)   # device, answered, kept
    heartbeat_rows: int = 0
    heartbeat_table_bytes: int = 0
    central_log_errors: list[str] = field(default_factory=list)

    @property
    def error_count(self) -> int:
        return sum(phase.error_count for phase in self.phases)


def _repository() -> Path:
    return Path(__file__).resolve().parent.parent


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_repository()), env.get("PYTHONPATH", "")]))
    return env


class _Lines:
    """The lines a child process writes on one of its pipes, read on a thread of their own."""

    def __init__(self, process: subprocess.Popen, stream, what: str) -> None:  # noqa: ANN001
        self._process, self._what = process, what
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), name="lines-" + what, daemon=True).start()

    def _read(self, stream) -> None:  # noqa: ANN001
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def next(self, deadline: float) -> str:
        """The next line before `deadline` (wall time); RuntimeError when none came, or the process ended."""
        try:
            line = self._lines.get(timeout=max(0.0, deadline - time.time()))
        except queue.Empty:
            raise RuntimeError("%s: nothing before its deadline" % self._what) from None
        if line is None:
            raise RuntimeError("%s: ended (exit %s)" % (self._what, self._process.wait(5)))
        return line


def _stop(process: subprocess.Popen, timeout_s: float = 20.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@dataclass(frozen=True)
class _Central:
    url: str
    process: subprocess.Popen
    log: Path


@contextlib.contextmanager
def _centrals(count: int, db_url: str, workdir: Path, tls_files, acquirer_url: str,  # noqa: ANN001
              issuer_pub: Path, signing_key: Path) -> Iterator[list[_Central]]:
    """`count` central processes on one database, each on a port of its own, started one after the other
    (the first migrates and seeds the database); stopped at the end."""
    centrals: list[_Central] = []
    try:
        for number in range(count):
            log_path = workdir / ("central-%d.log" % number)
            with open(log_path, "wb") as log_file:
                process = subprocess.Popen(
                    [sys.executable, "-m", "bench.central_process", "--db", db_url, "--tls-cert",
                     str(tls_files.server_cert), "--tls-key", str(tls_files.server_key), "--signing-key",
                     str(signing_key), "--acquirer", acquirer_url, "--issuer-key", str(issuer_pub)],
                    stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.PIPE, text=True,
                    env=_environment(), cwd=workdir)
            centrals.append(_Central("", process, log_path))
            deadline, said = time.time() + START_TIMEOUT_S, _Lines(process, process.stderr, "central")
            while True:
                line = said.next(deadline)
                if line.startswith(central_process.READY):
                    break
            centrals[-1] = _Central(line[len(central_process.READY):].strip(), process, log_path)
        yield centrals
    finally:
        for central in centrals:
            _stop(central.process)


def _enrol_all(url: str, ca_file: Path, db_url: str, count: int) -> list[tuple[str, Ed25519PrivateKey]]:
    """`count` kiosks enrolled as a technician enrols one: a code from central's staff (Devices.issue_code,
    in its governorate), the kiosk's own key, its public half sent with the code to the enrolment route."""
    database = Database(db_url)
    local = threading.local()

    def enrol(index: int) -> tuple[str, Ed25519PrivateKey]:
        device_id = "kiosk-load-%05d" % index
        code, _expires = Devices(database).issue_code(device_id, governorate=GOVERNORATES[index % len(GOVERNORATES)])
        key = Ed25519PrivateKey.generate()
        if not hasattr(local, "http"):
            local.http = requests.Session()
        response = local.http.post(url + wire.ENROL, timeout=TIMEOUT_S, verify=str(ca_file), json={
            "device_id": device_id, "code": code, "public_key": public_key_hex(key)})
        if response.status_code != 200:
            raise RuntimeError("enrolment of %s refused: HTTP %d %s" % (device_id, response.status_code,
                                                                        response.text[:200]))
        return device_id, key

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(enrol, range(count)))
    finally:
        database.dispose()


def _raw_key(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption()).hex()


def _run_phase(phase: Phase, number: int, *, ca_file: Path, kiosks: list[tuple[str, Ed25519PrivateKey]],
               acquirer, fee: dict, citizens: list[dict], issuer_key: Path,  # noqa: ANN001
               journey_every: int, generators: int, threads: int, centrals: list[_Central], postmaster: int,
               pg_connect: dict, dbname: str) -> PhaseReport:
    rounds_each = math.ceil(phase.seconds / phase.heartbeat_s) + 1
    journeys_each = math.ceil(rounds_each / journey_every) + 1
    shares: list[list[dict]] = [[] for _ in range(generators)]
    for index, (device_id, key) in enumerate(kiosks):
        payments = [acquirer.pay(fee["amount_minor"], fee["currency"],
                                 payment_id="pay-%d-%s-%d" % (number, device_id[-5:], n))
                    for n in range(journeys_each)]
        shares[index % generators].append({"device_id": device_id, "index": index, "key": _raw_key(key),
                                           "payments": payments})
    report = PhaseReport(phase, len(kiosks))
    processes: list[tuple[subprocess.Popen, _Lines]] = []
    try:
        for share in shares:
            process = subprocess.Popen([sys.executable, "-m", "bench.fleet_load", "--generator"],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_environment())
            processes.append((process, _Lines(process, process.stdout, "load generator")))
            process.stdin.write(json.dumps({
                "urls": [central.url for central in centrals], "ca_file": str(ca_file), "kiosks": share, "fleet": len(kiosks), "fee": fee,
                "citizens": citizens, "issuer_key": str(issuer_key), "journey_every": journey_every,
                "heartbeat_s": phase.heartbeat_s, "seconds": phase.seconds, "grace_s": phase.grace_s,
                "threads": threads}) + "\n")
            process.stdin.flush()
        for _process, said in processes:
            if said.next(time.time() + START_TIMEOUT_S).strip() != "ready":
                raise RuntimeError("a load generator did not get ready")
        go = time.time() + 1.0
        cpu_before = {"central": sum(_cpu_s(c.process.pid) for c in centrals),
                      "postgresql": _postgres_cpu_s(postmaster)}
        xid_before = _next_xid(pg_connect)
        with _ConnectionSampler(pg_connect, dbname) as sampler:
            busy_before = _machine_busy()
            for process, _said in processes:
                process.stdin.write(json.dumps({"go": go}) + "\n")
                process.stdin.flush()
            # The generators start no round after the grace past the end, and report; this is the last word.
            deadline = go + phase.seconds + phase.grace_s + 2 * TIMEOUT_S[1] + 30
            finished = []
            for _process, said in processes:
                try:
                    results = json.loads(said.next(deadline))
                except RuntimeError as exc:
                    report.errors[("phase", "stopped at its hard deadline: %s" % exc)] += 1
                    continue
                finished.append(results["finished_at"])
                for route, times in results["latencies"].items():
                    report.latencies.setdefault(route, []).extend(times)
                for route, reason, count in results["errors"]:
                    report.errors[(route, reason)] += count
                report.lateness.extend(results["lateness"])
                report.rounds += results["rounds"]
                report.undone += results["undone"]
                report.journeys += results["journeys"]
                report.heartbeats.update(results["heartbeats"])
                report.cpu_s["generator"] = report.cpu_s.get("generator", 0.0) + results["cpu_s"]
            busy_after = _machine_busy()
            report.cpu_s["central"] = sum(_cpu_s(c.process.pid) for c in centrals) - cpu_before["central"]
            report.cpu_s["postgresql"] = _postgres_cpu_s(postmaster) - cpu_before["postgresql"]
        report.connections = sampler.samples
        report.writes = _next_xid(pg_connect) - xid_before
        report.elapsed_s = max(finished, default=time.time()) - go
        report.cpu_s["machine"] = busy_after[0] - busy_before[0]
        report.machine_cores = (busy_after[1] - busy_before[1]) / max(report.elapsed_s, 1e-9)
    finally:
        for process, _said in processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)
    return report


def _next_xid(pg_connect: dict) -> int:
    """The cluster's next transaction id: how many transactions have written (taken an id) so far. Exact,
    where pg_stat_database's counts lag by up to its flush interval."""
    with psycopg.connect(**pg_connect, autocommit=True) as connection:
        return int(connection.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text").fetchone()[0])


def run(postgres, db_url: str, *, kiosks: int, phases: list[Phase], journey_every: int = 5,  # noqa: ANN001
        generators: int = 1, threads: int = 32, centrals: int = 1) -> FleetReport:
    """The load test on the running PostgreSQL `postgres` (tests/postgres_server.PostgresServer), central's
    database `db_url` (empty); the phases one after the other, on one central and one enrolled fleet."""
    from tests.central.stub_acquirer import StubAcquirer

    # Over TCP on loopback, as central reaches a database on another machine.
    url = make_url(db_url)
    dbname = url.database
    tcp_url = url.set(host="127.0.0.1", port=postgres.port, query={}).render_as_string(hide_password=False)
    pg_connect = {"host": str(postgres.socket_dir), "port": postgres.port, "user": "postgres", "dbname": "postgres"}
    postmaster = int((postgres.data_dir / "postmaster.pid").read_text().split()[0])
    report = FleetReport(kiosks=kiosks, generators=generators, threads=threads, journey_every=journey_every,
                         centrals=centrals)
    with psycopg.connect(**pg_connect) as connection:
        report.postgres_version = connection.execute("SHOW server_version").fetchone()[0]
        report.durable = connection.execute("SHOW fsync").fetchone()[0] == "on" and connection.execute(
            "SHOW synchronous_commit").fetchone()[0] == "on"
    today = datetime.date.today().isoformat()
    citizens = [c for c in json.loads((SEED_DIR / "citizens.json").read_text(encoding="utf-8"))["citizens"]
                if c["card_expires"] > today]
    with tempfile.TemporaryDirectory(prefix="kiosk-fleet-load-") as directory, StubAcquirer() as acquirer:
        workdir = Path(directory)
        tls_files, _new = tls.init(workdir / "tls", ["127.0.0.1"])
        issuer = IssuerKey.generate()
        issuer.save(workdir / "issuer.pem", workdir / "issuer.pub.pem")
        signing.create_key(workdir / "signing-key.pem")
        with _centrals(centrals, tcp_url, workdir, tls_files, acquirer.url, workdir / "issuer.pub.pem",
                       workdir / "signing-key.pem") as running:
            started = time.perf_counter()
            fleet = _enrol_all(running[0].url, tls_files.ca_cert, tcp_url, kiosks)
            report.enrol_s = time.perf_counter() - started
            database = Database(tcp_url)
            try:
                with database.reading() as session:
                    fee = load_catalogue(session).get(SERVICE).fee.to_json()
            finally:
                database.dispose()
            for number, phase in enumerate(phases):
                report.phases.append(_run_phase(
                    phase, number, ca_file=tls_files.ca_cert, kiosks=fleet, acquirer=acquirer,
                    fee=fee, citizens=citizens, issuer_key=workdir / "issuer.pem", journey_every=journey_every,
                    generators=generators, threads=threads, centrals=running, postmaster=postmaster,
                    pg_connect=pg_connect, dbname=dbname))
        report.central_log_errors = [line.strip() for central in running
                                     for line in central.log.read_text(errors="replace").splitlines()
                                     if " ERROR " in line or " CRITICAL " in line]
    database = Database(tcp_url)
    try:
        with database.reading() as session:
            kept = dict(session.execute(sql_select(KioskHeartbeat.device_id, func.count())
                                        .group_by(KioskHeartbeat.device_id)).all())
    finally:
        database.dispose()
    for device_id, _key in fleet:
        answered = sum(phase.heartbeats.get(device_id, 0) for phase in report.phases)
        if kept.get(device_id, 0) != answered:
            report.history_mismatches.append((device_id, answered, kept.get(device_id, 0)))
    with psycopg.connect(**{**pg_connect, "dbname": dbname}) as connection:
        report.heartbeat_rows, report.heartbeat_table_bytes = connection.execute(
            "SELECT count(*), pg_total_relation_size('kiosk_heartbeats') FROM kiosk_heartbeats").fetchone()
    return report


# -- the report ---------------------------------------------------------------------------------------------

def report(fleet: FleetReport) -> str:
    lines = ["fleet load: %d kiosks against central (%s, HTTPS) on PostgreSQL %s (%s), "
             "loopback; load from %d generator process(es) of %d threads"
             % (fleet.kiosks, "one uvicorn process" if fleet.centrals == 1 else
                "%d uvicorn processes, each kiosk kept on one" % fleet.centrals, fleet.postgres_version.split()[0],
                "durable: commits wait for the disk" if fleet.durable else "fsync off: commits do not wait for the disk",
                fleet.generators, fleet.threads),
             "  enrolled %d kiosks through the enrolment route in %.1f s (%.0f a second)"
             % (fleet.kiosks, fleet.enrol_s, fleet.kiosks / max(fleet.enrol_s, 1e-9))]
    for phase in fleet.phases:
        lines.append("  phase %s: a round every %g s per kiosk (the load of %d kiosks beating every 60 s), a citizen "
                     "every %d rounds, for %g s: %d rounds, %d citizens, in %.1f s; rounds offered %.1f a second, "
                     "served %.1f"
                     % (phase.phase.name, phase.phase.heartbeat_s, round(phase.kiosks * 60 / phase.phase.heartbeat_s),
                        fleet.journey_every, phase.phase.seconds, phase.rounds, phase.journeys, phase.elapsed_s,
                        phase.kiosks / phase.phase.heartbeat_s, phase.rounds / max(phase.elapsed_s, 1e-9)))
        lines.append("    %-28s %9s %8s %8s %8s %7s" % ("route", "requests", "req/s", "p50 ms", "p99 ms", "errors"))
        everything: list[float] = []
        for key, route in ROUTES.items():
            times = phase.latencies.get(key, [])
            everything.extend(times)
            errors = sum(n for (r, _why), n in phase.errors.items() if r == key)
            if times or errors:
                lines.append("    %-28s %9d %8.1f %8.1f %8.1f %7d" % (
                    route, len(times), len(times) / max(phase.elapsed_s, 1e-9), _percentile(times, 0.5),
                    _percentile(times, 0.99), errors))
        lines.append("    %-28s %9d %8.1f %8.1f %8.1f %7d" % (
            "all", len(everything), len(everything) / max(phase.elapsed_s, 1e-9), _percentile(everything, 0.5),
            _percentile(everything, 0.99), phase.error_count))
        lines.append("    rounds started late: p50 %.0f ms, p99 %.0f ms, most %.0f ms%s"
                     % (_percentile(phase.lateness, 0.5), _percentile(phase.lateness, 0.99),
                        max(phase.lateness, default=0.0),
                        "; %d rounds due never started by the hard deadline (%g s after the end): more load offered "
                        "than served" % (phase.undone, phase.phase.grace_s) if phase.undone else ""))
        cpu = {name: 100 * seconds / max(phase.elapsed_s, 1e-9) for name, seconds in phase.cpu_s.items()}
        others = cpu.get("machine", 0) - cpu.get("central", 0) - cpu.get("postgresql", 0) - cpu.get("generator", 0)
        lines.append("    CPU, %% of one core: central %.0f%%, PostgreSQL %.0f%%, load generator %.0f%%, anything else "
                     "%.0f%% (this process, its acquirer, other work on the machine); the machine %.0f%% busy of "
                     "its %.0f cores" % (cpu.get("central", 0), cpu.get("postgresql", 0), cpu.get("generator", 0),
                                          max(0.0, others), cpu.get("machine", 0) / max(phase.machine_cores, 1e-9),
                                          phase.machine_cores))
        if phase.connections:
            lines.append("    PostgreSQL: connections open %d to %d (mean %.1f), active at most %d, idle in a "
                         "transaction at most %d; %.0f transactions that wrote a second (%.1f a request)"
                         % (min(c[0] for c in phase.connections), max(c[0] for c in phase.connections),
                            statistics.mean(c[0] for c in phase.connections),
                            max(c[1] for c in phase.connections), max(c[2] for c in phase.connections),
                            phase.writes / max(phase.elapsed_s, 1e-9), phase.writes / max(phase.requests, 1)))
        for (route, why), count in sorted(phase.errors.items(), key=lambda item: -item[1])[:ERRORS_SHOWN]:
            lines.append("    ERROR %s: %s (%d)" % (ROUTES.get(route, route), why, count))
    lines.append("  heartbeats in central's history: %s"
                 % ("every kiosk's, as many as were answered 200" if not fleet.history_mismatches else
                    "%d kiosks differ, e.g. %s answered %d, kept %d" % (len(fleet.history_mismatches),
                                                                          *fleet.history_mismatches[0])))
    if fleet.heartbeat_rows:
        lines.append("  heartbeat history: %d rows, %.0f bytes a row with its indexes"
                     % (fleet.heartbeat_rows, fleet.heartbeat_table_bytes / fleet.heartbeat_rows))
    lines.append("  central logged %d errors%s" % (len(fleet.central_log_errors), "".join(
        "\n    " + line for line in fleet.central_log_errors[:ERRORS_SHOWN])))
    lines.append("  errors: %d" % fleet.error_count)
    return "\n".join(lines)


def phases_of(seconds: float, heartbeat_s: float, compressed: list[float]) -> list[Phase]:
    """The real pace first (when `heartbeat_s` is a kiosk's), then each compressed period, whose grace is one
    period: it is overloaded on purpose, and what it serves in its time is the figure."""
    first = (Phase("real pace", heartbeat_s, seconds) if heartbeat_s == REAL_HEARTBEAT_S
             else Phase("every %gs" % heartbeat_s, heartbeat_s, seconds, grace_s=heartbeat_s))
    return [first] + [Phase("compressed %gs" % h, h, seconds, grace_s=h) for h in compressed]


def run_alone(kiosks: int, phases: list[Phase], *, durable: bool = True, **options: int) -> FleetReport:
    """With a PostgreSQL of its own (tests/postgres_server.py's cluster), durable as a real one unless told."""
    from tests.postgres_server import running_postgres
    with running_postgres(durable=durable) as server, server.database() as db_url:
        return run(server, db_url, kiosks=kiosks, phases=phases, **options)


def _periods(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:] == ["--generator"]:
        return _generator_main()
    parser = argparse.ArgumentParser(prog="bench.fleet_load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kiosks", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0, help="each phase's length (default %(default)s)")
    parser.add_argument("--heartbeat-s", type=float, default=REAL_HEARTBEAT_S,
                        help="a kiosk's round, at the real pace (default %(default)s)")
    parser.add_argument("--compressed", type=_periods, default=list(COMPRESSED_HEARTBEATS_S), metavar="S,S",
                        help="then these rounds, one phase each, to find the ceiling (default %s; '' for none)"
                             % ",".join("%g" % s for s in COMPRESSED_HEARTBEATS_S))
    parser.add_argument("--journey-every", type=int, default=5,
                        help="a citizen served every this many rounds (default %(default)s)")
    parser.add_argument("--generators", type=int, default=1, help="load generator processes (default %(default)s)")
    parser.add_argument("--threads", type=int, default=32,
                        help="each generator's threads: rounds in flight at most (default %(default)s)")
    parser.add_argument("--centrals", type=int, default=1,
                        help="central processes on the one database, kiosk i on process i %% N (default %(default)s)")
    parser.add_argument("--not-durable", action="store_true",
                        help="PostgreSQL as the test suite runs it: fsync, synchronous commits and full-page writes "
                             "off (default: its own settings, commits wait for the disk)")
    args = parser.parse_args(argv)
    fleet = run_alone(args.kiosks, phases_of(args.seconds, args.heartbeat_s, args.compressed),
                      durable=not args.not_durable, journey_every=args.journey_every, generators=args.generators,
                      threads=args.threads, centrals=args.centrals)
    print(report(fleet))
    # Success: no error, every heartbeat kept, and the first phase's every round started (in a compressed
    # phase, rounds undone are the measure of its overload).
    return 0 if fleet.error_count == 0 and not fleet.history_mismatches and not fleet.phases[0].undone else 1


if __name__ == "__main__":
    sys.exit(main())
