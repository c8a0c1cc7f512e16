"""The runtime's Audit effects in the audit log, on the fakes of tests/kiosk/test_runtime_effects.py:
what a journey leaves there, that none of it is the citizen's, and that a log that cannot be written
stops nobody."""

from __future__ import annotations

import json
import logging

import pytest

from drivers.fakes.card_reader import FakeCard
from drivers.fakes.payment_terminal import CardOutcome
from kiosk import effects as fx
from kiosk.ports.card_reader import CardVerdict
from kiosk.ports.payment_terminal import PaymentReason
from kiosk.session import Reason, Step
from offline.audit_log import SqliteAuditLog
from tests.kiosk.test_runtime_effects import IDENTITY, Kiosk, fill_the_disk

SECRETS = (IDENTITY.national_number, IDENTITY.card_number, IDENTITY.given_name_ar, IDENTITY.family_name_ar,
           IDENTITY.given_name_latin, IDENTITY.family_name_latin, IDENTITY.date_of_birth.isoformat(),
           IDENTITY.date_of_birth.strftime("%Y%m%d"))


@pytest.fixture
def kiosk():
    kiosk = Kiosk()
    kiosk.runtime.audit = SqliteAuditLog(kiosk.database, "kiosk-test-01")
    yield kiosk
    kiosk.runtime.stop()


def entries(kiosk: Kiosk) -> list[tuple[str, str]]:
    kiosk.settle()
    return [(entry.event, entry.detail) for entry in kiosk.runtime.audit.all_entries()]


def assert_nothing_personal(kiosk: Kiosk) -> None:
    text = json.dumps([entry.to_json() for entry in kiosk.runtime.audit.all_entries()], ensure_ascii=False)
    rows = repr(kiosk.database.run("SELECT * FROM audit_log"))
    for secret in SECRETS:
        assert secret not in text and secret not in rows


def test_a_printed_document_and_a_forged_card_land_in_the_log_with_nothing_personal(kiosk):
    kiosk.start()
    kiosk.pay()
    kiosk.run_until(Step.TAKE_CARD, printed=True)
    kiosk.card.remove()
    kiosk.run_until(Step.ATTRACT)
    kiosk.insert(FakeCard(IDENTITY, verdict=CardVerdict.FORGED))
    kiosk.run_until(Step.PIN_ENTRY)
    kiosk.type_pin("1234")
    kiosk.run_until(Step.CARD_REFUSED, reason=Reason.CARD_FORGED)
    assert entries(kiosk) == [("document.printed", "civil-status-extract"), ("card.refused", "card_forged")]
    assert kiosk.runtime.audit.verify().ok
    assert_nothing_personal(kiosk)


def test_a_declined_card_lands_in_the_log(kiosk):
    kiosk.start()
    kiosk.payment.script(CardOutcome.INSUFFICIENT_FUNDS)
    kiosk.pay()
    kiosk.run_until(Step.PAYMENT_DECLINED, payment_reason=PaymentReason.INSUFFICIENT_FUNDS)
    assert ("payment.declined", PaymentReason.INSUFFICIENT_FUNDS.value) in entries(kiosk)
    assert_nothing_personal(kiosk)


def test_each_entry_carries_the_device_and_the_technician_when_there_is_one(kiosk):
    kiosk.runtime._audit(fx.Audit("technician.test_print", "printed", technician="tech-07"))
    kiosk.runtime._audit(fx.Audit("card.refused", "card_expired"))
    first, second = kiosk.runtime.audit.all_entries()
    assert (first.device_id, first.technician, second.technician) == ("kiosk-test-01", "tech-07", None)


def test_an_audit_effect_that_is_not_codes_is_refused_and_only_that_is_kept(kiosk, caplog):
    caplog.set_level(logging.INFO)
    kiosk.runtime._audit(fx.Audit("card.refused", IDENTITY.given_name_latin + " " + IDENTITY.national_number))
    assert entries(kiosk) == [("audit.refused", "card.refused")]
    assert IDENTITY.national_number not in caplog.text and IDENTITY.given_name_latin not in caplog.text


def test_a_full_disk_loses_the_entry_but_serves_the_citizen(kiosk, caplog, monkeypatch):
    kiosk.start()
    fill_the_disk(kiosk, monkeypatch)
    kiosk.insert(FakeCard(IDENTITY, verdict=CardVerdict.FORGED))
    kiosk.run_until(Step.PIN_ENTRY)
    kiosk.type_pin("1234")
    kiosk.run_until(Step.CARD_REFUSED, reason=Reason.CARD_FORGED)     # the session went on
    assert "runtime.audit_unwritable event=card.refused" in caplog.text
    assert "alert.audit.unwritable" in caplog.text
    monkeypatch.undo()
    assert entries(kiosk) == [] and kiosk.runtime.audit.verify().ok
