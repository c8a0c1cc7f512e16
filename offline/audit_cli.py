"""`kiosk audit`: the audit log, for technicians and auditors (the `sqlite` backend's tool, a `kiosk.tools`
entry point).

    kiosk audit verify [--against EXPORT.json] [--config C]
        checks the hash chain from the first entry, then the anchor beside the database, then (with
        --against) that a copy exported earlier is still the log's beginning; one line: `intact: ...`
        (exit 0), or `broken at <seq>: <problem>` naming the first bad sequence number (exit 1)
    kiosk audit export FILE [--config C]
        every entry as JSON (0600), with the anchor, the verdict and the hash encoding, for an auditor
        or for central. Shipping it to central with the telemetry is the telemetry issue's, not this
        tool's; a copy kept away from the kiosk is what catches a rewrite of the whole chain.

The entries hold codes only (`kiosk.ports.audit`), so nothing printed or
exported is personal data. It opens the state database the running kiosk
uses (SQLite allows both) and only reads it. Exit 2 for a usage or
configuration problem.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from kiosk.errors import KioskError
from kiosk.ports.audit import ENCODING, AuditEntry, ChainVerdict, Problem, verify_chain
from offline.audit_log import SqliteAuditLog
from offline.tool_state import open_for_tool

ACTIONS = ("verify", "export")

HASH_ENCODING = ("hash_n = SHA-256(bytes.fromhex(hash_{n-1}) || canonical_n), hash_0 = 32 zero bytes; canonical_n = "
                 "UTF-8 of the JSON array [\"%s\", seq, at, event, device_id, technician, detail] with separators "
                 "',' ':' and non-ASCII escaped (kiosk/ports/audit.py)" % ENCODING)

WHAT = {
    Problem.HASH_MISMATCH: "its hash does not match (an entry edited, inserted or moved, or renumbered after a removal)",
    Problem.MISSING: "missing (an entry removed)",
    Problem.OUT_OF_ORDER: "out of order (a number repeated or going back)",
    Problem.TAIL_MISSING: "missing: the newest entries are gone (the anchor or the copy holds more)",
    Problem.ANCHOR_MISMATCH: "not the entry the anchor holds (the log or its anchor replaced)",
    Problem.ANCHOR_MISSING: "the anchor beside the database is gone: the newest entries cannot be vouched for",
    Problem.LOSS_RECORDED: "lost: the kiosk found its anchor not matching at a start and recorded it (audit.anchor_mismatch)",
    Problem.COPY_MISMATCH: "differs from the exported copy",
}


def run(config_path: Path, action: str, argument: str | None = None, *, against: Path | None = None,
        out: TextIO | None = None) -> int:
    out = out or sys.stdout
    opened = open_for_tool("audit", action, ACTIONS, config_path)
    if opened is None:
        return 2
    config, database = opened
    try:
        audit = SqliteAuditLog(database, config.device_id)
        if action == "verify":
            copy = _read_copy(against) if against is not None else None
            verdict = audit.verify(against=copy)
            print(describe(verdict, anchored=audit.anchor_kept), file=out)
            return 0 if verdict.ok else 1
        return _export(audit, Path(argument or ""), out)
    except KioskError as exc:
        print("kiosk: %s" % exc, file=sys.stderr)
        return 2
    finally:
        database.close()


def describe(verdict: ChainVerdict, *, anchored: bool) -> str:
    if verdict.ok:
        last = "last %d %s" % (verdict.last.seq, verdict.last.hash[:16]) if verdict.last else "empty"
        anchor = "anchored" if verdict.anchored else ("no anchor yet" if anchored else "no anchor kept")
        return "intact: %d entries, %s, %s" % (verdict.entries, last, anchor)
    where = "broken at %d" % verdict.first_bad if verdict.first_bad is not None else "broken"
    problem = verdict.problem or Problem.HASH_MISMATCH
    return "%s: %s (%s)" % (where, problem.value, WHAT[problem])


def _read_copy(path: Path) -> list[AuditEntry]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [AuditEntry.from_json(entry) for entry in data["entries"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KioskError("%s is not an audit export: %s" % (path, type(exc).__name__)) from exc


def _export(audit: SqliteAuditLog, path: Path, out: TextIO) -> int:
    if not path.name:
        raise KioskError("export needs a file to write")
    anchor = audit.anchor()            # read first, as verify does
    entries = list(audit.all_entries())
    verdict = verify_chain(entries, anchor=anchor, anchor_expected=audit.anchor_kept)
    report = {
        "format": ENCODING, "hash_encoding": HASH_ENCODING, "device_id": audit.device_id,
        "exported_at": datetime.fromtimestamp(time.time(), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "anchor": None if anchor is None else {"seq": anchor.seq, "hash": anchor.hash},
        "verdict": {"ok": verdict.ok, "first_bad": verdict.first_bad,
                    "problem": verdict.problem.value if verdict.problem else None},
        "entries": [entry.to_json() for entry in entries],
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(report, file, indent=1)
        file.write("\n")
    print("%s: %d entries (%s)" % (path, len(entries), describe(verdict, anchored=audit.anchor_kept)), file=out)
    return 0
