"""The audit log on the state database: entries chained by SHA-256, checked as an auditor would, after
someone edited the SQLite file by hand; and `kiosk audit` through the real command."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import stat
import textwrap

import pytest

from kiosk import cli
from kiosk.errors import AuditError, QueueError
from kiosk.ports.audit import GENESIS, Anchor, Problem, verify_chain
from offline.audit_log import SqliteAuditLog
from offline.database import StateDatabase

DEVICE = "kiosk-test-01"
EVENTS = [("card.refused", "card_forged", None), ("document.printed", "civil-status-extract", None),
          ("technician.test_print", "printed", "tech-07"), ("payment.declined", "insufficient_funds", None),
          ("document.printed", "birth-certificate", None)]


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        self.now += 1.5
        return self.now


@pytest.fixture
def path(tmp_path):
    return tmp_path / "state" / "kiosk.sqlite3"


def open_log(path, **options) -> SqliteAuditLog:
    return SqliteAuditLog(StateDatabase(path), DEVICE, clock=Clock(), **options)


@pytest.fixture
def written(path):
    """Five entries on a file, the database closed again: what the kiosk leaves for the auditor."""
    audit = open_log(path)
    for event, detail, technician in EVENTS:
        audit.append(event, detail, technician=technician)
    audit.database.close()
    return path


def by_hand(path, *statements: str) -> None:
    """What someone with the file does: the guards dropped, the rows changed."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TRIGGER audit_log_no_update")
    db.execute("DROP TRIGGER audit_log_no_delete")
    for statement in statements:
        db.execute(statement)
    db.close()


def verdict(path):
    audit = SqliteAuditLog(StateDatabase(path, check=False), DEVICE)
    try:
        return audit.verify()
    finally:
        audit.database.close()


# ---------------------------------------------------------------- appending and checking


def test_entries_come_back_in_order_with_their_fields_and_the_chain_checks(written):
    audit = SqliteAuditLog(StateDatabase(written), DEVICE)
    entries = list(audit.all_entries())
    assert [(e.seq, e.event, e.detail, e.technician, e.device_id) for e in entries] == [
        (n, event, detail, technician, DEVICE) for n, (event, detail, technician) in enumerate(EVENTS, 1)]
    assert entries[0].at == "2027-01-15T08:00:01.500Z" and entries[1].at == "2027-01-15T08:00:03.000Z"
    result = audit.verify()
    assert result.ok and result.entries == 5 and result.anchored and result.last == Anchor(5, entries[-1].hash)


def test_the_hash_is_the_documented_encoding(written):
    """An auditor with nothing but the docstring recomputes the first two hashes."""
    first, second = SqliteAuditLog(StateDatabase(written), DEVICE).entries(limit=2)
    canonical = b'["kiosk-audit-v1",1,"2027-01-15T08:00:01.500Z","card.refused","kiosk-test-01",null,"card_forged"]'
    assert first.hash == hashlib.sha256(bytes(32) + canonical).hexdigest()
    canonical = (b'["kiosk-audit-v1",2,"2027-01-15T08:00:03.000Z","document.printed","kiosk-test-01",null,'
                 b'"civil-status-extract"]')
    assert second.hash == hashlib.sha256(bytes.fromhex(first.hash) + canonical).hexdigest()
    assert GENESIS == bytes(32).hex()


def test_entries_survive_closing_and_the_chain_goes_on(written):
    audit = open_log(written)
    entry = audit.append("technician.logout", "")
    assert entry.seq == 6 and audit.verify().ok


@pytest.mark.parametrize("event, detail, technician", [
    ("card refused", "", None),                      # not a dotted code
    ("card", "", None),
    ("card.refused", "Salma Al-Halabi", None),       # a name, with its space
    ("card.refused", "سلمى", None),                  # a name in Arabic
    ("card.refused", "nn:01010012345", None),        # a national number inside a code
    ("card.refused", "x" * 65, None),
    ("technician.login", "", "Salma Al-Halabi"),
    ("technician.login", "", "4111111111111111"),
])
def test_what_is_not_a_code_is_refused_and_nothing_is_written(path, event, detail, technician):
    audit = open_log(path)
    with pytest.raises(ValueError) as refused:
        audit.append(event, detail, technician=technician)
    assert detail not in str(refused.value) or not detail
    assert audit.entries() == []


def test_the_table_refuses_updates_and_deletes_from_the_kiosk_itself(path):
    audit = open_log(path)
    audit.append("card.refused", "card_forged")
    with pytest.raises(QueueError):
        audit.database.run("UPDATE audit_log SET detail = 'card_valid'")
    with pytest.raises(QueueError):
        audit.database.run("DELETE FROM audit_log")
    assert audit.verify().ok


def test_a_full_disk_is_an_audit_error_and_the_log_still_checks(path, monkeypatch):
    audit = open_log(path)
    audit.append("card.refused", "card_forged")
    run = audit.database.run

    def refuse_inserts(sql, parameters=(), *, error=QueueError):
        if sql.lstrip().upper().startswith("INSERT"):
            raise error("the state database cannot insert: database or disk is full")
        return run(sql, parameters, error=error)
    monkeypatch.setattr(audit.database, "run", refuse_inserts)
    with pytest.raises(AuditError):
        audit.append("document.printed", "civil-status-extract")
    monkeypatch.undo()
    assert audit.verify().ok and audit.verify().entries == 1


def test_a_database_in_memory_keeps_no_anchor_and_still_chains():
    audit = SqliteAuditLog(StateDatabase(":memory:"), DEVICE)
    audit.append("card.refused", "card_forged")
    result = audit.verify()
    assert result.ok and not result.anchored and not audit.anchor_kept


# ---------------------------------------------------------------- tampering, found and named


def test_a_field_edited_in_sqlite_is_named(written):
    by_hand(written, "UPDATE audit_log SET detail = 'card_valid' WHERE seq = 1")
    result = verdict(written)
    assert (result.first_bad, result.problem) == (1, Problem.HASH_MISMATCH)


def test_a_hash_edited_too_is_named_by_the_entry_after_it(written):
    """Recomputing entry 3's own hash after editing it moves the break to 4, whose link no longer holds."""
    audit = SqliteAuditLog(StateDatabase(written), DEVICE)
    entries = audit.entries()
    audit.database.close()
    from kiosk.ports.audit import chain_hash
    forged = chain_hash(entries[1].hash, 3, entries[2].at, "technician.test_print", DEVICE, "tech-99", "printed")
    by_hand(written, "UPDATE audit_log SET technician = 'tech-99', hash = '%s' WHERE seq = 3" % forged)
    result = verdict(written)
    assert (result.first_bad, result.problem) == (4, Problem.HASH_MISMATCH)


def test_a_middle_entry_deleted_is_named(written):
    by_hand(written, "DELETE FROM audit_log WHERE seq = 3")
    result = verdict(written)
    assert (result.first_bad, result.problem) == (3, Problem.MISSING)


def test_a_middle_entry_deleted_and_the_rest_renumbered_is_named(written):
    by_hand(written, "DELETE FROM audit_log WHERE seq = 3", "UPDATE audit_log SET seq = seq - 1 WHERE seq > 3")
    result = verdict(written)
    assert (result.first_bad, result.problem) == (3, Problem.HASH_MISMATCH)


def test_two_entries_swapped_and_renumbered_are_named(written):
    by_hand(written, "UPDATE audit_log SET seq = -1 WHERE seq = 2", "UPDATE audit_log SET seq = 2 WHERE seq = 4",
            "UPDATE audit_log SET seq = 4 WHERE seq = -1")
    result = verdict(written)
    assert (result.first_bad, result.problem) == (2, Problem.HASH_MISMATCH)


def test_an_entry_inserted_in_the_middle_is_named(written):
    by_hand(written, "UPDATE audit_log SET seq = seq + 100 WHERE seq >= 3",
            "UPDATE audit_log SET seq = seq - 99 WHERE seq >= 103",
            "INSERT INTO audit_log VALUES (3, '2027-01-15T08:00:04.000Z', 'technician.login', '%s', 'tech-01', '', '%s')"
            % (DEVICE, "ab" * 32))
    result = verdict(written)
    assert (result.first_bad, result.problem) == (3, Problem.HASH_MISMATCH)


def test_an_entry_inserted_with_a_correct_hash_is_caught_at_the_next(written):
    """Whoever knows the encoding can make a valid entry 3; the old 3, now 4, no longer links to it."""
    audit = SqliteAuditLog(StateDatabase(written), DEVICE)
    second = audit.entries()[1]
    audit.database.close()
    from kiosk.ports.audit import chain_hash
    at = "2027-01-15T08:00:04.000Z"
    forged = chain_hash(second.hash, 3, at, "technician.login", DEVICE, "tech-01", "")
    by_hand(written, "UPDATE audit_log SET seq = seq + 100 WHERE seq >= 3",
            "UPDATE audit_log SET seq = seq - 99 WHERE seq >= 103",
            "INSERT INTO audit_log VALUES (3, '%s', 'technician.login', '%s', 'tech-01', '', '%s')"
            % (at, DEVICE, forged))
    result = verdict(written)
    assert (result.first_bad, result.problem) == (4, Problem.HASH_MISMATCH)


def test_the_newest_entries_deleted_are_caught_by_the_anchor(written):
    by_hand(written, "DELETE FROM audit_log WHERE seq >= 4")
    result = verdict(written)
    assert (result.first_bad, result.problem) == (4, Problem.TAIL_MISSING)


def test_an_older_copy_of_the_database_put_back_is_caught_by_the_anchor(path):
    audit = open_log(path)
    audit.append("card.refused", "card_forged")
    audit.database.close()
    older = path.read_bytes()
    audit = open_log(path)
    audit.append("document.printed", "civil-status-extract")
    audit.database.reclaim_space()                 # everything in the main file, the write-ahead log emptied
    audit.database.close()
    path.write_bytes(older)
    result = verdict(path)
    assert (result.first_bad, result.problem) == (2, Problem.TAIL_MISSING)


def test_the_anchor_deleted_is_named_as_gone(written):
    written.with_name(written.name + ".audit-anchor").unlink()
    result = verdict(written)
    assert result.problem is Problem.ANCHOR_MISSING and result.first_bad is None


def test_a_whole_rewritten_tail_with_its_anchor_is_caught_only_by_an_exported_copy(written):
    """The limit, said plainly: with the table and the anchor both rewritten, only a copy kept elsewhere tells."""
    audit = SqliteAuditLog(StateDatabase(written), DEVICE)
    copy = list(audit.all_entries())
    audit.database.close()
    by_hand(written, "DELETE FROM audit_log WHERE seq >= 4")
    anchor = written.with_name(written.name + ".audit-anchor")
    anchor.write_text(json.dumps({"seq": 3, "hash": copy[2].hash}))
    assert verdict(written).ok                       # the chain and the anchor agree: nothing to see here
    audit = SqliteAuditLog(StateDatabase(written, check=False), DEVICE)
    result = audit.verify(against=copy)
    assert (result.first_bad, result.problem) == (4, Problem.TAIL_MISSING)


def test_a_kiosk_started_after_its_newest_entries_went_writes_the_loss_into_the_chain(written):
    by_hand(written, "DELETE FROM audit_log WHERE seq >= 4")
    alerts: list[str] = []
    audit = open_log(written, alert=alerts.append)
    assert audit.check_anchor() is False and alerts == ["audit.anchor_mismatch"]
    audit.append("card.refused", "card_expired")                 # the kiosk goes on
    (recorded, _next) = audit.entries(after=3)
    assert (recorded.seq, recorded.event, recorded.detail) == (4, "audit.anchor_mismatch", "anchor:5:last:3")
    result = audit.verify()
    assert (result.first_bad, result.problem) == (4, Problem.LOSS_RECORDED)     # and stays found


def test_a_power_cut_before_the_anchor_is_written_is_no_loss(written):
    audit = SqliteAuditLog(StateDatabase(written), DEVICE)
    fourth = audit.entries()[3]
    audit.database.close()
    written.with_name(written.name + ".audit-anchor").write_text(json.dumps({"seq": 4, "hash": fourth.hash}))
    assert verdict(written).ok
    audit = open_log(written)
    assert audit.check_anchor() is True and audit.anchor().seq == 5


def test_the_pure_check_finds_a_reordered_export():
    """What central does with an export: the same check, on the entries alone."""
    audit = SqliteAuditLog(StateDatabase(":memory:"), DEVICE, clock=Clock())
    for event, detail, technician in EVENTS:
        audit.append(event, detail, technician=technician)
    entries = audit.entries()
    assert verify_chain(entries).ok
    result = verify_chain([entries[0], entries[2], entries[1], *entries[3:]])
    assert (result.first_bad, result.problem) == (2, Problem.MISSING)
    result = verify_chain(entries + [entries[4]])
    assert (result.first_bad, result.problem) == (5, Problem.OUT_OF_ORDER)


# ---------------------------------------------------------------- kiosk audit


@pytest.fixture
def config(tmp_path, written):
    (tmp_path / "issuer.pub.pem").write_text("not read by the audit tool\n")
    path = tmp_path / "kiosk.toml"
    path.write_text(textwrap.dedent("""\
        device_id = "kiosk-test-01"
        [central]
        url = "https://central.invalid"
        [card]
        trusted_issuers = ["issuer.pub.pem"]
        [printer]
        host = "192.0.2.10"
        [outbox]
        path = "state/kiosk.sqlite3"
        """), encoding="utf-8")
    return path


def kiosk_audit(capsys, config, *args: str) -> tuple[int, str, str]:
    code = cli.main(["audit", *args, "--config", str(config)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_verify_says_intact_and_exits_0(capsys, config):
    code, out, _ = kiosk_audit(capsys, config, "verify")
    assert code == 0 and out.startswith("intact: 5 entries, last 5 ") and out.rstrip().endswith("anchored")


def test_verify_names_the_first_bad_entry_and_exits_1(capsys, config, written):
    by_hand(written, "UPDATE audit_log SET event = 'card.accepted' WHERE seq = 2")
    code, out, _ = kiosk_audit(capsys, config, "verify")
    assert code == 1 and out.startswith("broken at 2: hash_mismatch")


def test_export_writes_every_entry_as_json_that_checks_against_the_log(capsys, config, tmp_path, written):
    target = tmp_path / "audit.json"
    code, out, _ = kiosk_audit(capsys, config, "export", str(target))
    assert code == 0 and out.startswith("%s: 5 entries (intact" % target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    report = json.loads(target.read_text())
    assert report["format"] == "kiosk-audit-v1" and report["device_id"] == DEVICE
    assert [e["seq"] for e in report["entries"]] == [1, 2, 3, 4, 5] and report["anchor"]["seq"] == 5
    assert report["entries"][2]["technician"] == "tech-07" and report["verdict"]["ok"] is True
    # later, the newest entries and the anchor both rewritten: the exported copy still tells
    by_hand(written, "DELETE FROM audit_log WHERE seq = 5")
    written.with_name(written.name + ".audit-anchor").write_text(json.dumps(
        {"seq": 4, "hash": report["entries"][3]["hash"]}))
    assert kiosk_audit(capsys, config, "verify")[0] == 0
    code, out, _ = kiosk_audit(capsys, config, "verify", "--against", str(target))
    assert code == 1 and out.startswith("broken at 5: tail_missing")


def test_no_state_database_is_a_usage_problem(capsys, config, written):
    written.unlink()
    code, _, err = kiosk_audit(capsys, config, "verify")
    assert code == 2 and "no state database" in err
