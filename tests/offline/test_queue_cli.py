"""`kiosk queue`: what a technician sees of the outbox, through the real command, with no personal data."""

from __future__ import annotations

import json
import stat
import textwrap

import pytest

from kiosk import cli
from kiosk.money import Money
from kiosk.ports.journal import JournalEntry, TxnState
from kiosk.ports.payment_terminal import PaymentMethod, PaymentOutcome, PaymentStatus
from offline.journal import SqliteJournal
from offline.outbox import Outbox

NATIONAL_NUMBER, CARD_NUMBER, NAME = "01020345671", "SY1000000001", "خالد"


@pytest.fixture
def config(tmp_path):
    (tmp_path / "issuer.pub.pem").write_text("not read by the queue tool\n")
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


@pytest.fixture
def outbox(config):
    outbox = Outbox(config.parent / "state" / "kiosk.sqlite3")
    for request_id in ("req-1", "req-2", "req-3"):
        outbox.put(request_id, "certificate_request", {"request_id": request_id, "national_number": NATIONAL_NUMBER,
                                                       "card_number": CARD_NUMBER})
    outbox.put("void-req-2", "void_request", {"request_id": "req-2"})
    outbox.mark_delivered("req-1", {"status": "issued", "document": {"name": NAME}})
    outbox.dead_letter("req-2", "CentralError: central refused certificate_request req-2: HTTP 409, request_id_reused")
    outbox.dead_letter("void-req-2", "CentralError: HTTP 404, not_found")
    outbox.save_link("offline", 1_800_000_000.0)
    yield outbox
    outbox.close()


def queue(capsys, config, *args: str) -> tuple[int, str, str]:
    code = cli.main(["queue", *args, "--config", str(config)])
    captured = capsys.readouterr()
    for secret in (NATIONAL_NUMBER, CARD_NUMBER, NAME):
        assert secret not in captured.out + captured.err
    return code, captured.out, captured.err


def test_status_counts_the_queue_and_says_what_the_kiosk_saw_of_the_link(capsys, config, outbox):
    code, out, _ = queue(capsys, config, "status")
    lines = dict(line.split(None, 1) if not line.startswith(("dead ", "delivered,", "free ")) else
                 (line[:21].strip(), line[21:].strip()) for line in out.splitlines())
    assert code == 0
    assert lines["pending"].startswith("1  (oldest ") and lines["dead letters"] == "2"
    assert lines["delivered, kept"] == "1" and lines["link"].strip() == "offline since 2027-01-15T08:00:00Z"
    assert "MB" in lines["database"]


def test_list_shows_pending_messages_by_id_kind_and_transaction(capsys, config, outbox):
    code, out, _ = queue(capsys, config, "list")
    header, *rows = out.splitlines()
    assert code == 0 and header.split() == ["id", "kind", "transaction", "attempts", "next", "try"]
    assert [row.split() for row in rows] == [["req-3", "certificate_request", "req-3", "0", "now"]]


def test_dead_shows_each_dead_letter_with_why(capsys, config, outbox):
    code, out, _ = queue(capsys, config, "dead")
    letters, settlements = out.split("\n\n")
    rows = letters.splitlines()[1:]
    assert code == 0 and [row.split()[0] for row in rows] == ["req-2", "void-req-2"]
    assert rows[0].endswith("HTTP 409, request_id_reused") and "not_found" in rows[1]
    assert settlements.strip() == "settlements refused by the payment side: 0"


def test_dead_and_status_show_a_settlement_the_payment_side_refused(capsys, config, outbox):
    journal = SqliteJournal(outbox.database)
    journal.open(JournalEntry(txn_id="txn-9", sale_id="txn-9", request_id="kiosk-test-01-txn-9",
                              service_code="civil-status-extract", amount=Money.of(150000, "SYP"),
                              method=PaymentMethod.CARD, state=TxnState.OPENED, run_id="run-1"))
    journal.record_payment("txn-9", PaymentOutcome(PaymentStatus.APPROVED, Money.of(150000, "SYP"), "txn-9",
                                                   payment_id="pay-9"))
    journal.settle("txn-9", "print_failed")
    journal.record_dead("txn-9", "PaymentError: reversal refused: NotFound")
    code, out, _ = queue(capsys, config, "dead")
    (row,) = out.split("\n\n")[1].splitlines()[2:]
    assert code == 0 and row.split()[:4] == ["txn-9", "txn-9", "1,500", "SYP"] and row.endswith("NotFound")
    code, out, _ = queue(capsys, config, "status")
    assert "settlements refused   1  (kiosk queue dead)" in out.splitlines()


def test_retry_puts_a_dead_letter_back_unless_its_personal_data_is_gone(capsys, config, outbox):
    code, out, _ = queue(capsys, config, "retry", "void-req-2")
    assert code == 0 and out.startswith("void-req-2: back in the queue")
    assert [m.message_id for m in outbox.pending()] == ["req-3", "void-req-2"]
    code, _, err = queue(capsys, config, "retry", "req-2")
    assert code == 1 and "personal data was deleted" in err
    code, _, err = queue(capsys, config, "retry", "req-3")
    assert code == 1 and "not a dead letter" in err


def test_export_writes_the_whole_queue_as_json_for_the_kiosks_user_only(capsys, config, outbox, tmp_path):
    target = tmp_path / "queue.json"
    code, out, _ = queue(capsys, config, "export", str(target))
    assert code == 0 and out.strip() == "%s: 1 pending, 2 dead letters" % target
    report = json.loads(target.read_text(encoding="utf-8"))
    assert report["status"]["pending"] == 1 and report["status"]["link"] == "offline"
    assert [m["message_id"] for m in report["pending"]] == ["req-3"]
    assert [(m["message_id"], m["transaction"]) for m in report["dead"]] == [("req-2", "req-2"),
                                                                             ("void-req-2", "req-2")]
    text = target.read_text(encoding="utf-8")
    assert NATIONAL_NUMBER not in text and CARD_NUMBER not in text and NAME not in text
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_no_state_database_is_a_usage_problem(capsys, config):
    code, _, err = queue(capsys, config, "status")
    assert code == 2 and "no state database" in err
    assert not (config.parent / "state").exists()             # looked at, not made
