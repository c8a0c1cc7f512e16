"""What the kiosk relies on from any PaymentTerminal: a sale asked once, told truly, given back once."""

from __future__ import annotations

import threading
import uuid

import pytest

from drivers.fakes.payment_terminal import CardOutcome
from kiosk.errors import PaymentError
from kiosk.money import Money
from kiosk.ports.payment_terminal import (
    PaymentMethod, PaymentOutcome, PaymentPrompt, PaymentReason, PaymentStatus, PromptKind, ReversalStatus,
    TerminalState,
)
from tests.contracts.conftest import PaymentFault, PaymentWorld, StatementLine

FEE = Money.of(150000, "SYP")
WAIT_S = 10.0


def new_id(prefix: str) -> str:
    return "%s-%s" % (prefix, uuid.uuid4().hex[:16])


def pay(world: PaymentWorld, sale_id: str | None = None, *, method: PaymentMethod = PaymentMethod.CARD,
        prompts: list[PaymentPrompt] | None = None) -> PaymentOutcome:
    return world.terminal.pay(FEE, sale_id=sale_id or new_id("sale"), reference="req-1", label="Birth 1,500",
                              method=method, on_prompt=None if prompts is None else prompts.append)


def test_a_ready_terminal_says_so(payment_world: PaymentWorld) -> None:
    assert payment_world.terminal.check() is TerminalState.READY


def test_approved_card_sale(payment_world: PaymentWorld) -> None:
    sale_id, prompts = new_id("sale"), []
    outcome = pay(payment_world, sale_id, prompts=prompts)
    assert (outcome.status, outcome.amount, outcome.sale_id, outcome.reason) == \
        (PaymentStatus.APPROVED, FEE, sale_id, None)
    assert outcome.payment_id
    assert [(p.sale_id, p.kind) for p in prompts] == [(sale_id, PromptKind.PRESENT_CARD),
                                                      (sale_id, PromptKind.PROCESSING)]
    receipt = outcome.receipt
    assert receipt is not None and receipt.sale_id == sale_id and receipt.auth_code and receipt.terminal_id
    assert sum(ch.isdigit() for ch in receipt.masked_pan) <= 4          # never more than the last four
    assert payment_world.statement() == [
        StatementLine(sale_id, outcome.payment_id, "approved", FEE.amount_minor, "")]


def test_wallet_sale_shows_a_payment_request_then_approves(payment_world: PaymentWorld) -> None:
    sale_id, prompts = new_id("sale"), []
    outcome = pay(payment_world, sale_id, method=PaymentMethod.WALLET, prompts=prompts)
    (shown,) = prompts
    assert (shown.sale_id, shown.kind) == (sale_id, PromptKind.SCAN_QR)
    assert shown.qr and shown.expires_in_s and shown.expires_in_s > 0
    assert outcome.status is PaymentStatus.APPROVED and outcome.payment_id
    assert outcome.receipt is not None and outcome.receipt.masked_pan == ""


@pytest.mark.parametrize("card, reason", [
    (CardOutcome.INSUFFICIENT_FUNDS, PaymentReason.INSUFFICIENT_FUNDS),
    (CardOutcome.WRONG_PIN, PaymentReason.WRONG_PIN),
    (CardOutcome.EXPIRED, PaymentReason.CARD_EXPIRED),
    (CardOutcome.REFUSED, PaymentReason.REFUSED),
])
def test_declined_card_says_why_and_charges_nothing(payment_world: PaymentWorld, card: CardOutcome,
                                                    reason: PaymentReason) -> None:
    payment_world.present(card)
    outcome = pay(payment_world)
    assert (outcome.status, outcome.reason, outcome.payment_id) == (PaymentStatus.DECLINED, reason, None)
    assert [line.status for line in payment_world.statement()] == ["declined"]
    assert pay(payment_world).status is PaymentStatus.APPROVED        # the next card is another card


def test_card_removed_before_the_bank_answered_is_failed(payment_world: PaymentWorld) -> None:
    payment_world.present(CardOutcome.REMOVED)
    outcome = pay(payment_world)
    assert (outcome.status, outcome.reason, outcome.payment_id) == \
        (PaymentStatus.FAILED, PaymentReason.CARD_REMOVED, None)
    assert "approved" not in [line.status for line in payment_world.statement()]


@pytest.mark.parametrize("method", [PaymentMethod.CARD, PaymentMethod.WALLET])
def test_abort_while_waiting_for_the_citizen_cancels_the_sale(payment_world: PaymentWorld,
                                                              method: PaymentMethod) -> None:
    payment_world.present(CardOutcome.NO_ANSWER)
    asked = threading.Event()
    result: list[PaymentOutcome] = []
    sale_id = new_id("sale")
    worker = threading.Thread(target=lambda: result.append(payment_world.terminal.pay(
        FEE, sale_id=sale_id, reference="req-1", label="Birth 1,500", method=method,
        on_prompt=lambda prompt: asked.set())))
    worker.start()
    assert asked.wait(WAIT_S), "the terminal never asked for the card or the wallet"
    payment_world.terminal.abort()
    worker.join(WAIT_S)
    assert not worker.is_alive(), "pay did not return after abort()"
    (outcome,) = result
    assert (outcome.status, outcome.reason, outcome.payment_id) == \
        (PaymentStatus.FAILED, PaymentReason.CANCELLED, None)
    assert payment_world.terminal.status(sale_id).status is PaymentStatus.FAILED
    assert "approved" not in [line.status for line in payment_world.statement()]


def test_abort_with_no_sale_under_way_does_nothing(payment_world: PaymentWorld) -> None:
    payment_world.terminal.abort()
    assert pay(payment_world).status is PaymentStatus.APPROVED


def test_busy_terminal_takes_nothing(payment_world: PaymentWorld) -> None:
    payment_world.fault(PaymentFault.BUSY)
    sale_id = new_id("sale")
    assert payment_world.terminal.check() is TerminalState.BUSY
    outcome = pay(payment_world, sale_id)
    assert (outcome.status, outcome.reason, outcome.payment_id) == \
        (PaymentStatus.FAILED, PaymentReason.TERMINAL_BUSY, None)
    payment_world.fault(PaymentFault.BUSY, active=False)
    assert payment_world.statement() == []
    assert payment_world.terminal.check() is TerminalState.READY
    assert pay(payment_world, sale_id).status is PaymentStatus.APPROVED   # it was never taken


def test_unreachable_terminal_takes_nothing_gives_nothing_back_and_cannot_tell(payment_world: PaymentWorld) -> None:
    approved = pay(payment_world)
    payment_world.fault(PaymentFault.OFFLINE)
    assert payment_world.terminal.check() is TerminalState.UNREACHABLE
    outcome = pay(payment_world)
    assert (outcome.status, outcome.reason) == (PaymentStatus.FAILED, PaymentReason.TERMINAL_UNREACHABLE)
    assert payment_world.terminal.status(approved.sale_id).status is PaymentStatus.UNKNOWN    # never FAILED
    reversal_id = new_id("rev")
    assert payment_world.terminal.reverse(approved, reversal_id=reversal_id).status is ReversalStatus.FAILED
    payment_world.fault(PaymentFault.OFFLINE, active=False)
    assert payment_world.terminal.reverse(approved, reversal_id=reversal_id).status is ReversalStatus.REVERSED
    assert [(line.status, line.given_back) for line in payment_world.statement()] == [("approved", "reversal")]


def test_answer_lost_is_unknown_and_status_tells_without_charging_again(payment_world: PaymentWorld) -> None:
    payment_world.fault(PaymentFault.ANSWER_LOST)
    sale_id = new_id("sale")
    lost = pay(payment_world, sale_id)
    assert (lost.status, lost.payment_id) == (PaymentStatus.UNKNOWN, None)
    found = payment_world.terminal.status(sale_id)
    assert (found.status, found.sale_id, found.amount) == (PaymentStatus.APPROVED, sale_id, FEE)
    assert found.payment_id
    assert pay(payment_world, sale_id).payment_id == found.payment_id   # the same sale_id again: no second charge
    (line,) = payment_world.statement()
    assert (line.sale_id, line.payment_id) == (sale_id, found.payment_id)


def test_status_of_a_declined_sale_keeps_its_reason(payment_world: PaymentWorld) -> None:
    payment_world.present(CardOutcome.WRONG_PIN)
    sale_id = pay(payment_world).sale_id
    found = payment_world.terminal.status(sale_id)
    assert (found.status, found.reason) == (PaymentStatus.DECLINED, PaymentReason.WRONG_PIN)


def test_status_of_a_sale_never_taken_is_failed_with_no_payment(payment_world: PaymentWorld) -> None:
    found = payment_world.terminal.status(new_id("sale"))
    assert (found.status, found.payment_id) == (PaymentStatus.FAILED, None)


def test_reversal_is_idempotent_on_its_id(payment_world: PaymentWorld) -> None:
    approved = pay(payment_world)
    reversal_id = new_id("rev")
    for _ in range(2):
        outcome = payment_world.terminal.reverse(approved, reversal_id=reversal_id)
        assert (outcome.status, outcome.sale_id, outcome.reversal_id) == \
            (ReversalStatus.REVERSED, approved.sale_id, reversal_id)
    (line,) = payment_world.statement()
    assert line.given_back == "reversal"


def test_after_the_cutoff_a_reversal_is_a_refund(payment_world: PaymentWorld) -> None:
    approved = pay(payment_world)
    payment_world.fault(PaymentFault.CUTOFF)
    assert payment_world.terminal.reverse(approved, reversal_id=new_id("rev")).status is ReversalStatus.REVERSED
    (line,) = payment_world.statement()
    assert (line.status, line.given_back) == ("approved", "refund")


def test_reversal_of_a_sale_the_terminal_never_approved_is_a_payment_error(payment_world: PaymentWorld) -> None:
    never = PaymentOutcome(PaymentStatus.APPROVED, FEE, new_id("sale"), payment_id="poi-0000000000000000")
    with pytest.raises(PaymentError):
        payment_world.terminal.reverse(never, reversal_id=new_id("rev"))
    payment_world.present(CardOutcome.INSUFFICIENT_FUNDS)
    declined = pay(payment_world)
    with pytest.raises(PaymentError):
        payment_world.terminal.reverse(declined, reversal_id=new_id("rev"))


def test_reversal_of_another_amount_is_a_payment_error(payment_world: PaymentWorld) -> None:
    approved = pay(payment_world)
    other = PaymentOutcome(PaymentStatus.APPROVED, FEE + Money.of(1, "SYP"), approved.sale_id, approved.payment_id)
    with pytest.raises(PaymentError):
        payment_world.terminal.reverse(other, reversal_id=new_id("rev"))
    assert payment_world.statement()[0].given_back == ""
