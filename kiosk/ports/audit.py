"""The audit log: what happened at the kiosk, as codes, in a hash chain anyone can check.

Each entry holds a sequence number (1, 2, 3, ... with no gap), the time (UTC,
ISO 8601 to the millisecond: `2026-11-29T10:00:00.123Z`), the event (a short
dotted code: `card.refused`, `technician.test_print`), the kiosk's device id,
the technician's id when a technician did it, a detail (a code:
`card_forged`, a service code, a count) and its hash.

**Codes only.** Nothing that is not a code is taken: an event is
`[a-z][a-z0-9_]*(.[a-z0-9_]+)+` (at most 64 characters), a detail
`[A-Za-z0-9_.:-]{0,64}`, a technician id `[A-Za-z0-9][A-Za-z0-9_.:-]{0,31}`;
and neither a detail nor a technician id may hold a run of 8 digits or more
(a national number has 11, a card number 10, a bank card 13 to 19). Anything
else is refused (`ValueError`), never stripped: what is left of a name after
stripping is still part of a name. The patterns keep out names (letters of
Arabic, spaces), PINs in a sentence and numbers; a caller still passes codes
only: ids belong to the journal, not here.

**The hash chain** (`ENCODING`, version `kiosk-audit-v1`). Entry n's hash is

    hash_n = SHA-256( raw_32_bytes(hash_{n-1}) || canonical_n )     (lower-case hex, 64 characters)

with hash_0 the 32 zero bytes (`GENESIS`), and canonical_n the UTF-8 bytes
of the JSON array

    ["kiosk-audit-v1", seq, at, event, device_id, technician, detail]

written with no whitespace (separators `,` and `:`), non-ASCII characters
escaped as `\\uXXXX` (Python's `json.dumps(..., separators=(",", ":"),
ensure_ascii=True)`), seq a JSON integer, technician `null` when there is
none. Example: `["kiosk-audit-v1",1,"2026-11-29T10:00:00.000Z","card.refused","kiosk-01",null,"card_forged"]`.

Checking the chain (`verify_chain`) finds an entry edited (its hash no longer
matches), removed (a gap in the numbers, or, renumbered, a hash that no longer
matches), inserted or moved (the hash of the entry in its place, or of the one
after it, no longer matches), and names the first bad sequence number.

**What the chain cannot see.** The chain has no secret: someone who can write
the kiosk's disk can rewrite every entry from the one they change onwards,
with fresh hashes, or drop the newest entries, and the chain alone still
checks. Two things catch that: the *anchor*, the newest (seq, hash) kept in a
second place (a file beside the state database, `offline/audit_log.py`),
which catches the newest entries dropped or a database file put back from an
older copy, as long as the anchor file is left alone; and a copy kept away
from the kiosk (`kiosk audit export`; shipping it to central with the
telemetry is the telemetry issue's), against which any rewrite or truncation
of what it holds shows (`verify_chain(..., against=...)`).
"""

from __future__ import annotations

import abc
import enum
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

ENCODING = "kiosk-audit-v1"
GENESIS = "0" * 64                 # the hash before the first entry

EVENT_MAX = 64
_EVENT = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")
_DETAIL = re.compile(r"[A-Za-z0-9_.:-]{0,64}")
_TECHNICIAN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,31}")
_DIGITS = re.compile(r"[0-9]{8,}")       # a national number, a card's number, a bank card's


def is_event(text: object) -> bool:
    return isinstance(text, str) and len(text) <= EVENT_MAX and _EVENT.fullmatch(text) is not None


def is_detail(text: object) -> bool:
    return isinstance(text, str) and _DETAIL.fullmatch(text) is not None and not _DIGITS.search(text)


def is_technician(text: object) -> bool:
    return isinstance(text, str) and _TECHNICIAN.fullmatch(text) is not None and not _DIGITS.search(text)


def check_codes(event: str, detail: str, technician: str | None) -> None:
    """ValueError naming the field (never its value) that is not a code."""
    if not is_event(event):
        raise ValueError("an audit event must be a short dotted code")
    if not is_detail(detail):
        raise ValueError("an audit detail must be a code (%s, no long numbers)" % _DETAIL.pattern)
    if technician is not None and not is_technician(technician):
        raise ValueError("a technician id must be a code (%s)" % _TECHNICIAN.pattern)


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str                        # UTC, ISO 8601 to the millisecond, `Z`
    event: str
    device_id: str
    technician: str | None
    detail: str
    hash: str                      # chain_hash(previous entry's hash, this entry)

    def to_json(self) -> dict:
        return {"seq": self.seq, "at": self.at, "event": self.event, "device_id": self.device_id,
                "technician": self.technician, "detail": self.detail, "hash": self.hash}

    @classmethod
    def from_json(cls, data: dict) -> AuditEntry:
        return cls(seq=data["seq"], at=data["at"], event=data["event"], device_id=data["device_id"],
                   technician=data.get("technician"), detail=data["detail"], hash=data["hash"])


@dataclass(frozen=True)
class Anchor:
    """The newest entry's (seq, hash), kept apart from the entries."""

    seq: int
    hash: str


def canonical(seq: int, at: str, event: str, device_id: str, technician: str | None, detail: str) -> bytes:
    """The bytes an entry's hash covers (besides the previous hash): see the module's docstring."""
    return json.dumps([ENCODING, seq, at, event, device_id, technician, detail], separators=(",", ":"),
                      ensure_ascii=True).encode("utf-8")


def chain_hash(previous: str, seq: int, at: str, event: str, device_id: str, technician: str | None,
               detail: str) -> str:
    try:
        before = bytes.fromhex(previous)
    except (TypeError, ValueError):
        before = b""                  # a damaged hash: whatever follows cannot match
    return hashlib.sha256(before + canonical(seq, at, event, device_id, technician, detail)).hexdigest()


def entry_hash(previous: str, entry: AuditEntry) -> str:
    return chain_hash(previous, entry.seq, entry.at, entry.event, entry.device_id, entry.technician, entry.detail)


class Problem(enum.Enum):
    """Why a chain does not check, as a code."""

    HASH_MISMATCH = "hash_mismatch"          # an entry edited, inserted, moved, or renumbered after a removal
    MISSING = "missing"                      # a number skipped: an entry removed
    OUT_OF_ORDER = "out_of_order"            # a number repeated or going back
    TAIL_MISSING = "tail_missing"            # the anchor (or the copy) holds entries the log no longer has
    ANCHOR_MISMATCH = "anchor_mismatch"      # the entry at the anchor's number is not the one anchored
    ANCHOR_MISSING = "anchor_missing"        # entries, but the anchor that should vouch for their tail is gone
    LOSS_RECORDED = "loss_recorded"          # the kiosk found its anchor not matching at a start, and wrote so
    COPY_MISMATCH = "copy_mismatch"          # the log differs from a copy exported earlier


# What the kiosk writes in the chain when, at a start, its anchor does not match the log (offline/audit_log.py).
ANCHOR_MISMATCH_EVENT = "audit.anchor_mismatch"
# What the runtime writes in place of an entry it was asked for and refused (not codes).
REFUSED_EVENT = "audit.refused"


@dataclass(frozen=True)
class ChainVerdict:
    entries: int                               # entries read
    last: Anchor | None                        # the newest entry read
    anchored: bool                             # an anchor was there to check the tail against
    first_bad: int | None = None               # the first bad sequence number
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_chain(entries: Iterable[AuditEntry], *, anchor: Anchor | None = None, anchor_expected: bool = False,
                 against: Iterable[AuditEntry] | None = None) -> ChainVerdict:
    """Check `entries` (in the order kept) link up from GENESIS; then that `anchor`, when there is one,
    is an entry of theirs (none where one is expected is a problem too); then that `against` (a copy
    exported earlier) is a beginning of them. The first problem found, with its first bad sequence
    number (None for an anchor gone: which entries it vouched for is not known)."""
    expected = 1
    previous = GENESIS
    hashes: dict[int, str] = {}
    count = 0
    last: Anchor | None = None
    recorded: int | None = None

    def verdict(first_bad: int | None = None, problem: Problem | None = None) -> ChainVerdict:
        return ChainVerdict(count, last, anchor is not None, first_bad, problem)

    for entry in entries:
        if entry.seq > expected:
            return verdict(expected, Problem.MISSING)
        if entry.seq < expected:
            return verdict(entry.seq, Problem.OUT_OF_ORDER)
        if entry_hash(previous, entry) != entry.hash:
            return verdict(entry.seq, Problem.HASH_MISMATCH)
        if entry.event == ANCHOR_MISMATCH_EVENT and recorded is None:
            recorded = _recorded_loss(entry)
        count += 1
        hashes[entry.seq] = previous = entry.hash
        last = Anchor(entry.seq, entry.hash)
        expected += 1
    if anchor is not None:
        if anchor.seq > (last.seq if last else 0):
            return verdict((last.seq if last else 0) + 1, Problem.TAIL_MISSING)
        if anchor.seq < 1:
            return verdict(None, Problem.ANCHOR_MISMATCH)     # an anchor that cannot be read
        if hashes.get(anchor.seq) != anchor.hash:
            return verdict(anchor.seq, Problem.ANCHOR_MISMATCH)
    elif anchor_expected and count:
        return verdict(None, Problem.ANCHOR_MISSING)
    if against is not None:
        for kept in against:
            if kept.seq not in hashes:
                return verdict(kept.seq, Problem.TAIL_MISSING)
            if hashes[kept.seq] != kept.hash:
                return verdict(kept.seq, Problem.COPY_MISMATCH)
    if recorded is not None:
        return verdict(recorded, Problem.LOSS_RECORDED)
    return verdict()


def anchor_mismatch_detail(anchor: Anchor | None, last_seq: int) -> str:
    """The detail of ANCHOR_MISMATCH_EVENT: `anchor:<seq or 'none'>:last:<seq>`."""
    return "anchor:%s:last:%d" % ("none" if anchor is None else anchor.seq, last_seq)


def _recorded_loss(entry: AuditEntry) -> int:
    """The first sequence number the kiosk could no longer vouch for, from ANCHOR_MISMATCH_EVENT's detail."""
    parts = entry.detail.split(":")
    try:
        last = int(parts[3])
        anchored = None if parts[1] == "none" else int(parts[1])
    except (IndexError, ValueError):
        return entry.seq
    if anchored is None or anchored < 1 or anchored > last:
        return last + 1                   # the newest entries were cut (the entries after `last` are new)
    return anchored                       # the entry anchored was changed


class AuditLog(abc.ABC):
    """Append-only, durable; the entries read back in order for checking and export."""

    device_id: str

    @abc.abstractmethod
    def append(self, event: str, detail: str = "", *, technician: str | None = None) -> AuditEntry:
        """Write one entry down (synced to the disk). ValueError when a field is not a code (nothing
        written); QueueError (AuditError) when it cannot be written (a full disk)."""

    @abc.abstractmethod
    def entries(self, *, after: int = 0, limit: int = 500) -> list[AuditEntry]:
        """Up to `limit` entries with a sequence number above `after`, in order."""

    @abc.abstractmethod
    def anchor(self) -> Anchor | None:
        """The anchor as kept in its second place; None when none is kept (or it is gone)."""

    @property
    def anchor_kept(self) -> bool:
        """Whether this log keeps an anchor at all (a database in memory keeps none)."""
        return False

    def all_entries(self) -> Iterator[AuditEntry]:
        after = 0
        while True:
            page = self.entries(after=after, limit=500)
            if not page:
                return
            yield from page
            after = page[-1].seq

    def verify(self, *, against: Iterable[AuditEntry] | None = None) -> ChainVerdict:
        """The anchor is read first: an entry appended meanwhile then never looks like a loss."""
        anchor = self.anchor()
        return verify_chain(self.all_entries(), anchor=anchor, anchor_expected=self.anchor_kept, against=against)
