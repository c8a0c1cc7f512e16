"""Benchmark: "card inserted to identity verified", through the real stack.

    python -m bench.card_read [--runs N]

A simulated card (profile VALID, T=1; and T0) goes into the vpcd slot of
"Virtual PCD 00 00"; the kiosk's driver (`PyscardCardReader`) watches the
reader, connects and authenticates. For every run the clock starts at
`slot.insert()` and is read at the driver's INSERTED event, when `connect()`
returns and when `authenticate()` returns VALID; `authenticate()` and
`read_photo()` are also timed on their own, and `prove()` over a fresh
challenge after them. Median and p95 (nearest rank) over N runs, after one
warm-up run per case that is not counted.

Each transport runs with cards of profile 1.1 (EF.ID carries D1, the digest
of EF.PHOTO: `authenticate()` reads the photo and checks it, `read_photo()`
then costs no APDU) and of profile 1.0 (no D1: the photo is read when
`read_photo()` asks for it), so the cost of checking the photo shows.

APDUs are counted by the driver (`CardReadResult.apdu_count`) and at the
wire (a counting wrapper around the card), and compared with the fewest the
profile allows for the files the card reports in its FCPs:

    T=1: VERIFY + SELECT EF.ID + ceil(|EF.ID| / 256) READ BINARY
         + SELECT EF.ID_SIG + ceil(|EF.ID_SIG| / 256) READ BINARY + INTERNAL AUTHENTICATE
         (1.1: + SELECT EF.PHOTO + ceil(|EF.PHOTO| / 256) READ BINARY)
    T=0: the same + one GET RESPONSE after each case-4 command, which a T=0
         card answers `61xx` (SELECT with FCP, INTERNAL AUTHENTICATE).
         `6Cxx` Le repeats are not forced: the FCP gives the size, so the
         last READ BINARY of a file can ask for exactly the bytes left.

Times depend on the machine and on pcscd's polling; nothing here asserts them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kiosk.card_proof import new_challenge
from kiosk.id_card_data import MalformedCardData
from kiosk.issuer_keys import TrustStore
from kiosk.ports.card_reader import CardEvent, CardVerdict, ConnectResult
from drivers.card_sim.card import CardProfile, SimulatedCard
from drivers.card_sim.issuer import IssuerKey
from drivers.card_sim.pcscd import ensure_pcscd
from drivers.card_sim.registry import load_citizens
from drivers.card_sim.slot import VirtualCardSlot
from drivers.id_card import apdu
from drivers.pyscard_reader import PyscardCardReader

READER = "Virtual PCD 00 00"
VPCD_PORT = 35963
CITIZENS = Path(__file__).resolve().parents[1] / "central" / "seed" / "citizens.json"
CITIZEN = "01020345671"
PIN = "1234"
# (name, card profile, D1 on the card: profile 1.1)
CASES = (("valid", CardProfile.VALID, True), ("t0", CardProfile.T0, True),
         ("valid-1.0", CardProfile.VALID, False), ("t0-1.0", CardProfile.T0, False))
EVENT_TIMEOUT_S = 10.0
WARM_UP_RUNS = 1
FILES = {apdu.FID_ID: "EF.ID", apdu.FID_ID_SIG: "EF.ID_SIG", apdu.FID_PHOTO: "EF.PHOTO"}


class BenchError(RuntimeError):
    """The bench could not run: the reader is busy, or the card was not read as VALID."""


# --- the card, seen at the wire ----------------------------------------------------------

class WireCounter:
    """Wraps a simulated card: counts C-APDUs by instruction, `6Cxx` answers,
    and notes the file sizes the card reports in its FCPs."""

    def __init__(self, card: SimulatedCard) -> None:
        self._card = card
        self.atr_asked: float | None = None  # when vpcd first asked for the ATR (perf_counter)
        self.answer_delay_s = card.answer_delay_s
        self.commands: list[int] = []        # INS of every C-APDU
        self.wrong_le = 0                    # 6Cxx answers (Le repeats asked for)
        self.sizes: dict[str, int] = {}

    @property
    def atr(self) -> bytes:
        if self.atr_asked is None:
            self.atr_asked = time.perf_counter()
        return self._card.atr

    def power_on(self) -> None:
        self._card.power_on()

    def power_off(self) -> None:
        self._card.power_off()

    def reset(self) -> None:
        self._card.reset()

    def transmit(self, command: bytes) -> bytes | None:
        answer = self._card.transmit(command)
        self.commands.append(command[1] if len(command) > 1 else -1)
        if answer is not None and len(answer) >= 2:
            if answer[-2] == apdu.SW1_WRONG_LE:
                self.wrong_le += 1
            elif answer[-2:] == b"\x90\x00" and answer[:1] == b"\x62":
                self._note_fcp(answer[:-2])
        return answer

    def _note_fcp(self, data: bytes) -> None:
        try:
            fcp = apdu.parse_fcp(data)
        except MalformedCardData:
            return
        self.sizes[FILES.get(fcp.fid, "%04X" % fcp.fid)] = fcp.size

    def mark(self) -> int:
        return len(self.commands)

    def since(self, mark: int) -> list[int]:
        return self.commands[mark:]


# --- the profile's minimum ---------------------------------------------------------------

def _reads(size: int) -> int:
    return math.ceil(size / apdu.MAX_LE)


def minimum_apdus(sizes: dict[str, int], *, t0: bool, photo_digest: bool) -> int:
    """The fewest C-APDUs of `authenticate()` for these sizes: VERIFY to INTERNAL
    AUTHENTICATE, and EF.PHOTO too on a card with D1."""
    fewest = 1 + 1 + _reads(sizes["EF.ID"]) + 1 + _reads(sizes["EF.ID_SIG"]) + 1
    fewest += 3 if t0 else 0                 # GET RESPONSE after 2 SELECT-with-FCP and INTERNAL AUTHENTICATE
    return fewest + (minimum_photo_apdus(sizes["EF.PHOTO"], t0=t0) if photo_digest else 0)


def minimum_photo_apdus(size: int, *, t0: bool) -> int:
    """The fewest C-APDUs to read EF.PHOTO of `size` bytes."""
    return 1 + _reads(size) + (1 if t0 else 0)


# --- timing --------------------------------------------------------------------------------

class _Events:
    """The driver's events with the time each arrived."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._seen: list[tuple[CardEvent, float]] = []

    def __call__(self, event: CardEvent) -> None:
        now = time.perf_counter()
        with self._changed:
            self._seen.append((event, now))
            self._changed.notify_all()

    def count(self, event: CardEvent) -> int:
        with self._changed:
            return sum(1 for e, _ in self._seen if e is event)

    def wait(self, event: CardEvent, count: int) -> float:
        """The arrival time of the `count`-th `event`."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.count(event) >= count, EVENT_TIMEOUT_S):
                raise BenchError("no %s event within %.0f s" % (event.name, EVENT_TIMEOUT_S))
            return [t for e, t in self._seen if e is event][count - 1]


def _summary(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return {"median": round(statistics.median(ordered), 2), "p95": round(p95, 2)}


def _reader_is_free() -> bool:
    """True when pcscd reports no card in READER (asked once, without waiting)."""
    from smartcard.scard import (
        SCARD_S_SUCCESS, SCARD_SCOPE_USER, SCARD_STATE_EMPTY, SCARD_STATE_UNAWARE,
        SCardEstablishContext, SCardGetStatusChange, SCardReleaseContext,
    )

    hresult, context = SCardEstablishContext(SCARD_SCOPE_USER)
    if hresult != SCARD_S_SUCCESS:
        return False
    try:
        hresult, states = SCardGetStatusChange(context, 0, [(READER, SCARD_STATE_UNAWARE)])
        return hresult == SCARD_S_SUCCESS and bool(states[0][1] & SCARD_STATE_EMPTY)
    finally:
        SCardReleaseContext(context)


def _one_run(profile: CardProfile, photo_digest: bool, citizen: dict[str, Any], issuer: IssuerKey,
             reader: PyscardCardReader, events: _Events, slot: VirtualCardSlot) -> dict[str, Any]:
    card = WireCounter(SimulatedCard.for_citizen(citizen, issuer=issuer, profile=profile, pin=PIN,
                                                 photo_digest=photo_digest))
    inserted_before = events.count(CardEvent.INSERTED)
    removed_before = events.count(CardEvent.REMOVED)
    started = time.perf_counter()
    slot.insert(card)
    try:
        inserted = events.wait(CardEvent.INSERTED, inserted_before + 1)
        if reader.connect() is not ConnectResult.CONNECTED:
            raise BenchError("%s card: connect failed" % profile.name)
        connected = time.perf_counter()
        mark, wrong_le_mark = card.mark(), card.wrong_le
        result = reader.authenticate(PIN, today=dt.date.today())
        verified = time.perf_counter()
        if result.verdict is not CardVerdict.VALID:
            raise BenchError("%s card: verdict %s, not VALID" % (profile.name, result.verdict.name))
        auth_commands = card.since(mark)
        auth_wrong_le = card.wrong_le - wrong_le_mark
        photo_mark, photo_wrong_le_mark = card.mark(), card.wrong_le
        photo_started = time.perf_counter()
        photo = reader.read_photo()
        photo_done = time.perf_counter()
        if photo is None:
            raise BenchError("%s card: no photo read" % profile.name)
        photo_commands = card.since(photo_mark)
        photo_wrong_le = card.wrong_le - photo_wrong_le_mark
        prove_mark = card.mark()
        prove_started = time.perf_counter()
        proof = reader.prove(new_challenge())
        proved = time.perf_counter()
        if proof is None:
            raise BenchError("%s card: no proof" % profile.name)
        prove_commands = card.since(prove_mark)
    finally:
        reader.disconnect()
        slot.remove()
    events.wait(CardEvent.REMOVED, removed_before + 1)
    atr_asked = inserted if card.atr_asked is None else card.atr_asked
    return {
        "atr_ms": (atr_asked - started) * 1000,
        "inserted_ms": (inserted - started) * 1000,
        "connected_ms": (connected - started) * 1000,
        "verified_ms": (verified - started) * 1000,
        "authenticate_ms": (verified - connected) * 1000,
        "apdus": result.apdu_count,
        "wire_apdus": len(auth_commands),
        "get_responses": auth_commands.count(apdu.INS_GET_RESPONSE),
        "le_repeats": auth_wrong_le,
        "photo_ms": (photo_done - photo_started) * 1000,
        "photo_apdus": len(photo_commands),
        "photo_get_responses": photo_commands.count(apdu.INS_GET_RESPONSE),
        "photo_le_repeats": photo_wrong_le,
        "photo_bytes": len(photo),
        "read_ms": (photo_done - connected) * 1000,       # authenticate() and read_photo(), with the lock between
        "prove_ms": (proved - prove_started) * 1000,
        "prove_apdus": len(prove_commands),
        "sizes": dict(card.sizes),
    }


def bench_profile(profile: CardProfile, runs: int, citizen: dict[str, Any], issuer: IssuerKey,
                  slot: VirtualCardSlot, *, photo_digest: bool = True) -> dict[str, Any]:
    """Figures for one card profile (of profile version 1.1 unless not `photo_digest`) over `runs` timed runs."""
    reader = PyscardCardReader(TrustStore([issuer.public_key]), reader_name=READER)
    events = _Events()
    reader.watch(events)
    try:
        for _ in range(WARM_UP_RUNS):
            _one_run(profile, photo_digest, citizen, issuer, reader, events, slot)
        samples = [_one_run(profile, photo_digest, citizen, issuer, reader, events, slot) for _ in range(runs)]
    finally:
        reader.unwatch()
    last = samples[-1]
    t0 = profile is CardProfile.T0
    fewest = minimum_apdus(last["sizes"], t0=t0, photo_digest=photo_digest)
    photo_fewest = 0 if photo_digest else minimum_photo_apdus(last["sizes"]["EF.PHOTO"], t0=t0)
    return {
        "transport": "T=0" if t0 else "T=1",
        "card_profile": "1.1" if photo_digest else "1.0",
        "runs": runs,
        "atr_ms": _summary([s["atr_ms"] for s in samples]),
        "inserted_ms": _summary([s["inserted_ms"] for s in samples]),
        "connected_ms": _summary([s["connected_ms"] for s in samples]),
        "verified_ms": _summary([s["verified_ms"] for s in samples]),
        "authenticate_ms": _summary([s["authenticate_ms"] for s in samples]),
        "read_ms": _summary([s["read_ms"] for s in samples]),
        "apdus": max(s["apdus"] for s in samples),
        "wire_apdus": max(s["wire_apdus"] for s in samples),
        "apdus_min": fewest,
        "apdu_ratio": round(max(s["apdus"] for s in samples) / fewest, 2),
        "get_responses": last["get_responses"],
        "le_repeats": last["le_repeats"],
        "file_sizes": last["sizes"],
        "photo": {
            "ms": _summary([s["photo_ms"] for s in samples]),
            "apdus": max(s["photo_apdus"] for s in samples),
            "apdus_min": photo_fewest,
            "bytes": last["photo_bytes"],
            "get_responses": last["photo_get_responses"],
            "le_repeats": last["photo_le_repeats"],
        },
        "prove": {
            "ms": _summary([s["prove_ms"] for s in samples]),
            "apdus": max(s["prove_apdus"] for s in samples),
        },
    }


def run(runs: int = 30) -> dict[str, Any]:
    """Benchmark every case in CASES over `runs` runs; the figures as a dict."""
    if runs < 1:
        raise ValueError("runs must be at least 1")
    pcscd = ensure_pcscd(timeout=15.0)
    try:
        if not _reader_is_free():
            raise BenchError("%s holds a card already (another test or `kiosk-sim card serve`?)" % READER)
        citizen = load_citizens(CITIZENS)[CITIZEN]
        issuer = IssuerKey.generate()
        slot = VirtualCardSlot(port=VPCD_PORT)
        try:
            profiles = {name: bench_profile(profile, runs, citizen, issuer, slot, photo_digest=digest)
                        for name, profile, digest in CASES}
        finally:
            slot.remove()
    finally:
        pcscd.stop()
    return {"bench": "card_read", "reader": READER, "runs": runs, "warm_up_runs": WARM_UP_RUNS,
            "profiles": profiles}


def format_table(figures: dict[str, Any]) -> str:
    """The figures as a readable table."""
    row = "%-9s %-4s %-4s %15s %15s %15s %13s %6s %5s %6s %13s %12s %11s %13s %6s"
    lines = ["card inserted to identity verified: %s, %d runs per case (+%d warm-up)"
             % (figures["reader"], figures["runs"], figures["warm_up_runs"]),
             "times in ms, median / p95: from slot.insert() (INSERTED, connect, VALID), or of the call alone;",
             "APDUs of authenticate() (VERIFY to INTERNAL AUTHENTICATE, and EF.PHOTO on a 1.1 card) and of the others",
             ""]
    header = row % ("case", "", "card", "INSERTED event", "connect() done", "VALID verdict", "authenticate",
                    "APDUs", "min", "ratio", "read_photo", "photo APDUs", "auth+photo", "prove()", "APDUs")
    lines += [header, "-" * len(header)]
    for name, p in figures["profiles"].items():
        photo = p["photo"]
        lines.append(row % (
            name, p["transport"], p["card_profile"], _pair(p["inserted_ms"]), _pair(p["connected_ms"]),
            _pair(p["verified_ms"]), _pair(p["authenticate_ms"]), p["apdus"], p["apdus_min"],
            "%.2f" % p["apdu_ratio"], _pair(photo["ms"]), "%d (min %d)" % (photo["apdus"], photo["apdus_min"]),
            _pair(p["read_ms"]), _pair(p["prove"]["ms"]), p["prove"]["apdus"]))
    lines.append("")
    for name, p in figures["profiles"].items():
        sizes = ", ".join("%s %d B" % item for item in sorted(p["file_sizes"].items()))
        lines.append("%s: vpcd first asks the card for its ATR at %s ms; files %s; driver count %d = wire count %d"
                     % (name, _pair(p["atr_ms"]), sizes, p["apdus"], p["wire_apdus"]))
        if p["transport"] == "T=0":
            lines.append("    T=0 extras: %d GET RESPONSE, forced (61xx after each SELECT-with-FCP and "
                         "INTERNAL AUTHENTICATE);" % p["get_responses"])
            lines.append("    %d Le repeats after 6Cxx (the driver asks for exactly the bytes left "
                         "of each file, as its FCP gives them);" % p["le_repeats"])
            lines.append("    photo: %d GET RESPONSE + %d Le repeat"
                         % (p["photo"]["get_responses"], p["photo"]["le_repeats"]))
    return "\n".join(lines)


def _pair(summary: dict[str, float]) -> str:
    return "%.1f / %.1f" % (summary["median"], summary["p95"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.card_read", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="timed runs per profile (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    try:
        figures = run(args.runs)
    except BenchError as exc:
        print("bench.card_read: %s" % exc, file=sys.stderr)
        return 1
    print(json.dumps(figures, indent=2) if args.json else format_table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
