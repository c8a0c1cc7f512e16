"""The `sqlite` local-state backend: outbox, journal and reconciler on one state database."""

from __future__ import annotations

from pathlib import Path

from drivers.fakes.payment_terminal import FakePaymentTerminal
from kiosk.config import CardConfig, CentralConfig, KioskConfig, OutboxConfig, PrinterConfig
from kiosk.money import Money
from kiosk.ports.journal import JournalEntry, TxnState
from kiosk.ports.payment_terminal import PaymentMethod
from offline.delivery import from_config, open_state
from offline.journal import SqliteJournal
from offline.outbox import Outbox
from offline.reconciler import Reconciler

FEE = Money.of(150000, "SYP")


def config(tmp_path: Path) -> KioskConfig:
    return KioskConfig(device_id="kiosk-test-01", central=CentralConfig(url="https://central.invalid"),
                       card=CardConfig(trusted_issuers=(tmp_path / "issuer.pem",)),
                       printer=PrinterConfig(host="192.0.2.10"),
                       outbox=OutboxConfig(path=tmp_path / "state" / "kiosk.sqlite3"))


def test_open_state_puts_the_outbox_and_the_journal_in_one_file(tmp_path: Path) -> None:
    database, store, journal = open_state(config(tmp_path))
    assert isinstance(store, Outbox) and isinstance(journal, SqliteJournal)
    assert store.database is database and journal.database is database
    tables = {row[0] for row in database.run("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"outbox", "journal"} <= tables
    assert database.path == tmp_path / "state" / "kiosk.sqlite3"
    database.close()


def test_the_backend_settles_into_its_own_outbox(tmp_path: Path) -> None:
    terminal = FakePaymentTerminal()
    alerts: list[str] = []
    state = from_config(config(tmp_path), lambda kind, payload: None, terminal=terminal, run_id="run-now",
                        alert=alerts.append)
    assert isinstance(state.reconciler, Reconciler)
    state.journal.open(JournalEntry(txn_id="t-1", sale_id="sale-t-1", request_id="req-t-1", service_code="birth",
                                    amount=FEE, method=PaymentMethod.CARD, state=TxnState.OPENED, run_id="run-now"))
    state.journal.record_payment("t-1", terminal.pay(FEE, sale_id="sale-t-1", reference="req-t-1", label="Birth"))
    state.journal.record_requested("t-1")
    state.journal.settle("t-1", "printer_failed")
    state.reconciler.reconcile_once()
    entry = state.journal.get("t-1")
    assert entry is not None and entry.state is TxnState.SETTLED
    store = state.outbox.store
    assert [(m.message_id, m.kind, m.payload) for m in store.pending()] == [
        ("void-req-t-1", "void_request", {"request_id": "req-t-1"})]
    assert alerts == []
    store.database.close()


def test_the_device_key_is_its_own_file_beside_the_database_unless_the_configuration_names_one(tmp_path: Path) -> None:
    import dataclasses
    import stat

    state = from_config(config(tmp_path), lambda kind, payload: None, terminal=FakePaymentTerminal(), run_id="r",
                        alert=lambda kind: None)
    key = tmp_path / "state" / "device.key"
    assert len(key.read_bytes()) == 32 and stat.S_IMODE(key.stat().st_mode) == 0o600
    state.outbox.store.database.close()
    elsewhere = dataclasses.replace(config(tmp_path), outbox=OutboxConfig(
        path=tmp_path / "other" / "kiosk.sqlite3", key_path=tmp_path / "keys" / "kiosk.key"))
    state = from_config(elsewhere, lambda kind, payload: None, terminal=FakePaymentTerminal(), run_id="r",
                        alert=lambda kind: None)
    assert (tmp_path / "keys" / "kiosk.key").exists() and not (tmp_path / "other" / "device.key").exists()
    state.outbox.store.database.close()


def test_the_backend_refuses_payments_when_its_disk_is_into_the_reserve(tmp_path: Path) -> None:
    import dataclasses

    from kiosk.ports.outbox import LinkState

    alerts: list[str] = []
    full = dataclasses.replace(config(tmp_path), outbox=OutboxConfig(
        path=tmp_path / "state" / "kiosk.sqlite3", disk_alert_mb=10 ** 9, disk_reserve_mb=10 ** 9))
    state = from_config(full, lambda kind, payload: None, terminal=FakePaymentTerminal(), run_id="r",
                        alert=alerts.append)
    assert state.outbox.can_take_payment() is False and alerts == ["state.disk_reserve"]
    assert state.outbox.link() is LinkState.UNKNOWN
    state.outbox.store.database.close()
    roomy = from_config(config(tmp_path), lambda kind, payload: None, terminal=FakePaymentTerminal(), run_id="r",
                        alert=alerts.append)
    assert roomy.outbox.can_take_payment() is True
    roomy.outbox.store.database.close()


def test_the_outbox_section_of_the_configuration(tmp_path: Path) -> None:
    import pytest

    from kiosk import config as kiosk_config
    from kiosk.errors import ConfigError

    (tmp_path / "issuer.pem").write_text("-")
    raw = {"device_id": "k", "central": {"url": "https://central.invalid"},
           "card": {"trusted_issuers": ["issuer.pem"]}, "printer": {"host": "192.0.2.10"},
           "outbox": {"path": "state/kiosk.sqlite3", "key_path": "keys/device.key", "disk_alert_mb": 512,
                      "disk_reserve_mb": 64, "max_backoff_s": 120}}
    outbox = kiosk_config.parse(raw, base_dir=tmp_path).outbox
    assert (outbox.path, outbox.key_path) == (tmp_path / "state" / "kiosk.sqlite3", tmp_path / "keys" / "device.key")
    assert (outbox.disk_alert_mb, outbox.disk_reserve_mb, outbox.max_backoff_s) == (512, 64, 120.0)
    for bad, words in (({"disk_alert_mb": 10, "disk_reserve_mb": 64}, "at least `outbox.disk_reserve_mb`"),
                       ({"disk_reserve_mb": -1}, "`outbox.disk_reserve_mb` must be zero or more"),
                       ({"max_backoff_s": 0}, "`outbox.max_backoff_s` must be greater than zero"),
                       ({"disk_alert": 10}, "did you mean `disk_alert_mb`?")):
        with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace("?", r"\?")):
            kiosk_config.parse(dict(raw, outbox=dict(raw["outbox"], **bad)), base_dir=tmp_path)
