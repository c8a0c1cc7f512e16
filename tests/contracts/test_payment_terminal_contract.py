"""What the kiosk relies on from any PaymentTerminal: the fake and GatewayPaymentTerminal on central's gateway."""

from __future__ import annotations

import uuid

import pytest

from kiosk.errors import PaymentError
from kiosk.money import Money
from kiosk.ports.payment_terminal import PaymentStatus, RefundStatus
from tests.contracts.conftest import PaymentWorld

FEE = Money.of(150000, "SYP")


def new_id(prefix: str) -> str:
    return "%s-%s" % (prefix, uuid.uuid4().hex)


def test_approved_charge(payment_world: PaymentWorld) -> None:
    charge_id = new_id("charge")
    outcome = payment_world.terminal.charge(FEE, charge_id=charge_id, reference="req-1")
    assert (outcome.status, outcome.amount, outcome.charge_id) == (PaymentStatus.APPROVED, FEE, charge_id)
    assert isinstance(outcome.payment_id, str) and outcome.payment_id
    (line,) = payment_world.statement()
    assert (line.charge_id, line.payment_id, line.status, line.amount_minor, line.refunded_minor) == \
        (charge_id, outcome.payment_id, "approved", FEE.amount_minor, 0)


def test_the_same_charge_id_again_charges_once(payment_world: PaymentWorld) -> None:
    charge_id = new_id("charge")
    first = payment_world.terminal.charge(FEE, charge_id=charge_id, reference="req-1")
    again = payment_world.terminal.charge(FEE, charge_id=charge_id, reference="req-1")
    assert again == first
    assert len(payment_world.statement()) == 1


def test_refund_is_idempotent(payment_world: PaymentWorld) -> None:
    terminal = payment_world.terminal
    payment_id = terminal.charge(FEE, charge_id=new_id("charge"), reference="req-1").payment_id
    refund_id = new_id("refund")
    for _ in range(2):
        outcome = terminal.refund(payment_id, FEE, refund_id=refund_id)
        assert (outcome.status, outcome.payment_id, outcome.refund_id) == \
            (RefundStatus.REFUNDED, payment_id, refund_id)
    (line,) = payment_world.statement()
    assert line.refunded_minor == FEE.amount_minor


def test_declined_card(payment_world: PaymentWorld) -> None:
    payment_world.script(PaymentStatus.DECLINED)
    charge_id = new_id("charge")
    outcome = payment_world.terminal.charge(FEE, charge_id=charge_id, reference="req-1")
    assert (outcome.status, outcome.payment_id) == (PaymentStatus.DECLINED, None)
    assert payment_world.terminal.charge(FEE, charge_id=charge_id, reference="req-1").status \
        is PaymentStatus.DECLINED                          # the decline stands
    assert [line.status for line in payment_world.statement()] == ["declined"]


def test_terminal_down_is_failed_and_nothing_was_charged(payment_world: PaymentWorld) -> None:
    payment_world.script(PaymentStatus.FAILED)
    charge_id = new_id("charge")
    outcome = payment_world.terminal.charge(FEE, charge_id=charge_id, reference="req-1")
    assert (outcome.status, outcome.payment_id) == (PaymentStatus.FAILED, None)
    assert payment_world.statement() == []
    assert payment_world.terminal.charge(FEE, charge_id=charge_id, reference="req-1").status \
        is PaymentStatus.APPROVED


def test_answer_lost_is_unknown_and_asking_again_charges_once(payment_world: PaymentWorld) -> None:
    payment_world.script(PaymentStatus.UNKNOWN)
    charge_id = new_id("charge")
    lost = payment_world.terminal.charge(FEE, charge_id=charge_id, reference="req-1")
    assert (lost.status, lost.payment_id) == (PaymentStatus.UNKNOWN, None)
    first = payment_world.terminal.charge(FEE, charge_id=charge_id, reference="req-1")
    second = payment_world.terminal.charge(FEE, charge_id=charge_id, reference="req-1")
    assert first.status is PaymentStatus.APPROVED and first.payment_id == second.payment_id
    (line,) = payment_world.statement()
    assert line.payment_id == first.payment_id


def test_refund_of_more_than_was_charged_is_a_payment_error(payment_world: PaymentWorld) -> None:
    terminal = payment_world.terminal
    payment_id = terminal.charge(FEE, charge_id=new_id("charge"), reference="req-1").payment_id
    with pytest.raises(PaymentError, match="exceeds_charge"):
        terminal.refund(payment_id, FEE + Money.of(1, "SYP"), refund_id=new_id("refund"))
    assert payment_world.statement()[0].refunded_minor == 0


def test_a_second_refund_past_the_charge_is_a_payment_error(payment_world: PaymentWorld) -> None:
    terminal = payment_world.terminal
    payment_id = terminal.charge(FEE, charge_id=new_id("charge"), reference="req-1").payment_id
    assert terminal.refund(payment_id, FEE, refund_id=new_id("refund")).status is RefundStatus.REFUNDED
    with pytest.raises(PaymentError, match="exceeds_charge"):
        terminal.refund(payment_id, Money.of(1, "SYP"), refund_id=new_id("refund"))


def test_charge_id_reused_for_another_amount_is_a_payment_error(payment_world: PaymentWorld) -> None:
    charge_id = new_id("charge")
    payment_world.terminal.charge(FEE, charge_id=charge_id, reference="req-1")
    with pytest.raises(PaymentError, match="charge_id_reused"):
        payment_world.terminal.charge(Money.of(1, "SYP"), charge_id=charge_id, reference="req-1")


def test_refund_of_an_unknown_payment_is_a_payment_error(payment_world: PaymentWorld) -> None:
    with pytest.raises(PaymentError, match="unknown_payment"):
        payment_world.terminal.refund("pay_0000000000000000", FEE, refund_id=new_id("refund"))
