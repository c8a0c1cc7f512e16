"""`PaymentTerminal` in process: a terminal and its acquirer that approve, unless told otherwise.

It keeps the rules a certified terminal keeps: a `sale_id` is taken once
(asking again answers as `status` does and never charges twice); a reversal
is idempotent on its `reversal_id`; a reversal of a sale the terminal does
not hold, or of another amount, is refused for good (PaymentError). A test
changes its world as a technician or a citizen would:

* `script(*outcomes)`: what the next new sales meet, in order, then
  approvals again (`CardOutcome`: approve, refused, insufficient funds,
  wrong PIN, expired card, card removed, or no answer: nobody presents a
  card or pays the wallet request, and `pay` waits until `abort()` (FAILED
  CANCELLED) or `release()` (the terminal's own time-out: FAILED TIMED_OUT));
* `lose_next_answer()`: the next sale is taken but its answer is lost on
  the way back (`pay` says UNKNOWN; `status` then tells the truth);
* `set_busy(True)`: the terminal is busy with something else (`check` BUSY,
  `pay` FAILED TERMINAL_BUSY, `status` UNKNOWN, `reverse` FAILED), as it is
  while a sale is under way;
* `set_online(False)`: the terminal cannot be reached (`check` UNREACHABLE,
  `pay` FAILED TERMINAL_UNREACHABLE, `status` UNKNOWN, `reverse` FAILED);
* `cut_off()`: the day's batch closes; a sale taken before it is given back
  by a refund rather than a reversal, and the statement says which.

`statement` is every sale the terminal took (approved, declined or failed)
with its reversals; `prompts` every prompt it showed. Nothing scripted is
used up by a sale the terminal never took (busy, off line).
"""

from __future__ import annotations

import collections
import enum
import logging
import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kiosk import wire
from kiosk.errors import PaymentError
from kiosk.money import Money
from kiosk.ports.payment_terminal import (
    CardReceipt, OnPrompt, PaymentMethod, PaymentOutcome, PaymentPrompt, PaymentReason, PaymentStatus,
    PaymentTerminal, PromptKind, ReversalOutcome, ReversalStatus, TerminalState,
)

if TYPE_CHECKING:
    from kiosk.config import KioskConfig

log = logging.getLogger(__name__)

MAX_AMOUNT_MINOR = 10 ** 12
TERMINAL_ID = "FAKE-POI-01"
WALLET_EXPIRES_IN_S = 120.0
MASKED_PAN = "**** **** **** 0119"     # a test card's, as a receipt shows it


class CardOutcome(enum.Enum):
    """What the next sale meets at the terminal."""

    APPROVE = "approve"
    REFUSED = "refused"                          # declined by the bank, no reason given
    INSUFFICIENT_FUNDS = "insufficient_funds"    # declined
    WRONG_PIN = "wrong_pin"                      # declined
    EXPIRED = "expired"                          # declined: the card is past its date
    REMOVED = "removed"                          # failed: the card was pulled before the bank answered
    NO_ANSWER = "no_answer"                      # nobody pays: `pay` waits for abort() or release()


# How each outcome that is not an approval ends: (status, reason).
_ENDINGS = {
    CardOutcome.REFUSED: (PaymentStatus.DECLINED, PaymentReason.REFUSED),
    CardOutcome.INSUFFICIENT_FUNDS: (PaymentStatus.DECLINED, PaymentReason.INSUFFICIENT_FUNDS),
    CardOutcome.WRONG_PIN: (PaymentStatus.DECLINED, PaymentReason.WRONG_PIN),
    CardOutcome.EXPIRED: (PaymentStatus.DECLINED, PaymentReason.CARD_EXPIRED),
    CardOutcome.REMOVED: (PaymentStatus.FAILED, PaymentReason.CARD_REMOVED),
}


class ReversalKind(enum.Enum):
    REVERSAL = "reversal"    # the same day: the sale is cancelled at the acquirer
    REFUND = "refund"        # after the day's cut-off: the money is sent back


@dataclass(frozen=True)
class FakeReversal:
    reversal_id: str
    kind: ReversalKind


@dataclass(frozen=True)
class FakeSale:
    """One sale as the terminal holds it, with its reversals (at most one)."""

    sale_id: str
    amount: Money
    reference: str
    method: PaymentMethod
    status: PaymentStatus                 # APPROVED, DECLINED or FAILED
    reason: PaymentReason | None = None
    payment_id: str | None = None
    reversals: tuple[FakeReversal, ...] = ()

    @property
    def reversed(self) -> bool:
        return bool(self.reversals)


@dataclass
class _Sale:
    sale_id: str
    amount: Money
    reference: str
    method: PaymentMethod
    batch: int
    status: PaymentStatus = PaymentStatus.UNKNOWN     # UNKNOWN while the citizen is still paying
    reason: PaymentReason | None = None
    payment_id: str | None = None
    receipt: CardReceipt | None = None
    reversals: list[FakeReversal] = field(default_factory=list)

    def snapshot(self) -> FakeSale:
        return FakeSale(self.sale_id, self.amount, self.reference, self.method, self.status, self.reason,
                        self.payment_id, tuple(self.reversals))

    def outcome(self) -> PaymentOutcome:
        return PaymentOutcome(status=self.status, amount=self.amount, sale_id=self.sale_id,
                              payment_id=self.payment_id, reason=self.reason, receipt=self.receipt)


class FakePaymentTerminal(PaymentTerminal):
    """A payment terminal in process: instant (unless told nobody pays), thread-safe, scripted by tests."""

    def __init__(self, *, currency: str = "SYP") -> None:
        self._currency = currency                  # of the zero amount in an answer about no known sale
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._online = True
        self._busy = False
        self._batch = 0
        self._lose_next_answer = False
        self._scripted: collections.deque[CardOutcome] = collections.deque()
        self._sales: dict[str, _Sale] = {}          # by sale_id, oldest first
        self._reversals: dict[str, tuple[str, FakeReversal]] = {}   # reversal_id -> (sale_id, reversal)
        self._prompts: list[PaymentPrompt] = []
        self._current: _Sale | None = None          # the sale under way
        self._waiting = False                       # ... and it waits for a card or a wallet that never comes
        self._ending: PaymentReason | None = None   # CANCELLED (abort) or TIMED_OUT (release) for that sale

    def __repr__(self) -> str:
        with self._lock:
            return "FakePaymentTerminal(online=%s, busy=%s, sales=%d, reversals=%d)" % (
                self._online, self._busy, len(self._sales), len(self._reversals))

    # -- the world, as a test changes it -----------------------------------------------------------

    def script(self, *outcomes: CardOutcome) -> None:
        """The next new sales meet these outcomes, in order; then approvals again."""
        for outcome in outcomes:
            if not isinstance(outcome, CardOutcome):
                raise TypeError("an outcome is a CardOutcome")
        with self._lock:
            self._scripted.extend(outcomes)
        for outcome in outcomes:
            log.info("payment.outcome_scripted outcome=%s", outcome.name)

    def lose_next_answer(self) -> None:
        """The next sale the terminal takes goes through, but `pay` never hears how: UNKNOWN."""
        with self._lock:
            self._lose_next_answer = True

    def set_online(self, online: bool = True) -> None:
        """Off line, the terminal cannot be reached: nothing is taken, reversed or told."""
        with self._lock:
            changed, self._online = self._online != online, online
        if changed:
            log.info("payment.terminal_%s", "online" if online else "offline")

    def set_busy(self, busy: bool = True) -> None:
        """Busy with something else (a technician's menu, the end-of-day batch): it takes nothing now."""
        with self._lock:
            self._busy = busy

    def cut_off(self) -> None:
        """The day's batch closes: a sale taken until now is given back by a refund, not a reversal."""
        with self._lock:
            self._batch += 1

    def release(self) -> None:
        """The sale waiting for a card or a wallet times out, as the terminal's own timer would end it."""
        with self._changed:
            if self._waiting and self._ending is None:
                self._ending = PaymentReason.TIMED_OUT
                self._changed.notify_all()

    def wait_until_waiting(self, timeout: float) -> bool:
        """Whether a sale is waiting for a card or a wallet (a NO_ANSWER sale) within `timeout` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self._waiting, timeout=timeout)

    @property
    def statement(self) -> tuple[FakeSale, ...]:
        """Every sale the terminal took, oldest first, with its reversals."""
        with self._lock:
            return tuple(sale.snapshot() for sale in self._sales.values() if sale.status is not PaymentStatus.UNKNOWN)

    @property
    def reversals(self) -> tuple[FakeReversal, ...]:
        """Every reversal and refund given, oldest first."""
        with self._lock:
            return tuple(reversal for _, reversal in self._reversals.values())

    @property
    def prompts(self) -> tuple[PaymentPrompt, ...]:
        """Every prompt the terminal showed, oldest first."""
        with self._lock:
            return tuple(self._prompts)

    # -- PaymentTerminal ------------------------------------------------------------------------------

    def check(self) -> TerminalState:
        with self._lock:
            if not self._online:
                return TerminalState.UNREACHABLE
            if self._busy or self._current is not None:
                return TerminalState.BUSY
            return TerminalState.READY

    def pay(self, amount: Money, *, sale_id: str, reference: str, label: str,
            method: PaymentMethod = PaymentMethod.CARD, on_prompt: OnPrompt | None = None) -> PaymentOutcome:
        _check_id("sale", "sale_id", sale_id)
        _check_amount("sale", sale_id, amount)
        with self._lock:
            refused = self._refusal()
            if refused is not None:
                return _logged("pay", PaymentOutcome(PaymentStatus.FAILED, amount, sale_id, reason=refused))
            known = self._sales.get(sale_id)
            if known is not None:                              # taken once: asking again is `status`
                if known.amount != amount:
                    raise PaymentError("payment refused sale %s: sale_id_reused" % sale_id)
                return _logged("pay", known.outcome())
            scripted = self._scripted.popleft() if self._scripted else CardOutcome.APPROVE
            lose_answer, self._lose_next_answer = self._lose_next_answer, False
            sale = _Sale(sale_id, amount, reference, method, self._batch)
            self._sales[sale_id] = sale
            self._current, self._ending = sale, None
        try:
            self._prompt(on_prompt, _first_prompt(sale))
            with self._changed:
                if scripted is CardOutcome.NO_ANSWER and self._ending is None:
                    self._waiting = True
                    self._changed.notify_all()
                    self._changed.wait_for(lambda: self._ending is not None)
                ending = self._ending
            if ending is None and method is PaymentMethod.CARD:
                self._prompt(on_prompt, PaymentPrompt(sale_id, PromptKind.PROCESSING))
            with self._changed:
                self._finish(sale, scripted, ending)     # an abort while the bank answers comes too late
        finally:
            with self._changed:
                if sale.status is PaymentStatus.UNKNOWN:       # on_prompt raised: the terminal gives up
                    sale.status, sale.reason = PaymentStatus.FAILED, PaymentReason.CANCELLED
                self._current, self._waiting, self._ending = None, False, None
                self._changed.notify_all()
        if lose_answer:
            log.info("payment.answer_lost sale_id=%s", sale_id)
            return PaymentOutcome(PaymentStatus.UNKNOWN, amount, sale_id)
        return _logged("pay", sale.outcome())

    def status(self, sale_id: str) -> PaymentOutcome:
        with self._lock:
            refused = self._refusal()
            sale = self._sales.get(sale_id)
            if refused is not None or (sale is not None and sale.status is PaymentStatus.UNKNOWN):
                return _logged("status", PaymentOutcome(PaymentStatus.UNKNOWN, self._nothing(), sale_id,
                                                        reason=refused))
            if sale is None:                                   # never taken: nothing was charged
                return _logged("status", PaymentOutcome(PaymentStatus.FAILED, self._nothing(), sale_id))
            return _logged("status", sale.outcome())

    def reverse(self, outcome: PaymentOutcome, *, reversal_id: str) -> ReversalOutcome:
        sale_id = outcome.sale_id

        def answer(status: ReversalStatus) -> ReversalOutcome:
            log.info("payment.reverse sale_id=%s reversal_id=%s status=%s", sale_id, reversal_id, status.name)
            return ReversalOutcome(status=status, sale_id=sale_id, reversal_id=reversal_id)

        def refused(reason: str) -> PaymentError:
            return PaymentError("payment refused reversal %s of sale %s: %s" % (reversal_id, sale_id, reason))

        _check_id("reversal", "reversal_id", reversal_id)
        _check_id("reversal", "sale_id", sale_id)
        with self._lock:
            if self._refusal() is not None:
                return answer(ReversalStatus.FAILED)
            known = self._reversals.get(reversal_id)
            if known is not None:
                if known[0] != sale_id:
                    raise refused("reversal_id_reused")
                return answer(ReversalStatus.REVERSED)
            sale = self._sales.get(sale_id)
            if sale is None:
                raise refused("unknown_sale")
            if sale.status is not PaymentStatus.APPROVED:
                raise refused("not_approved")
            if outcome.amount != sale.amount:
                raise refused("amount_mismatch")
            if outcome.payment_id is not None and outcome.payment_id != sale.payment_id:
                raise refused("payment_mismatch")
            if sale.reversals:
                raise refused("already_reversed")
            kind = ReversalKind.REVERSAL if sale.batch == self._batch else ReversalKind.REFUND
            reversal = FakeReversal(reversal_id, kind)
            sale.reversals.append(reversal)
            self._reversals[reversal_id] = (sale_id, reversal)
        log.info("payment.given_back sale_id=%s kind=%s", sale_id, kind.value)
        return answer(ReversalStatus.REVERSED)

    def abort(self) -> None:
        with self._changed:
            if self._current is not None and self._ending is None:
                self._ending = PaymentReason.CANCELLED
                self._changed.notify_all()

    # -- inside ---------------------------------------------------------------------------------------

    def _refusal(self) -> PaymentReason | None:
        """Why the terminal takes no request now, if it does not; with the lock held. A sale under
        way keeps it busy too, but for an abort (and for `pay`, which answers that itself)."""
        if not self._online:
            return PaymentReason.TERMINAL_UNREACHABLE
        if self._busy or self._current is not None:
            return PaymentReason.TERMINAL_BUSY
        return None

    def _nothing(self) -> Money:
        return Money(self._currency, 0)

    def _prompt(self, on_prompt: OnPrompt | None, prompt: PaymentPrompt) -> None:
        with self._lock:
            self._prompts.append(prompt)
        log.info("payment.prompt sale_id=%s kind=%s", prompt.sale_id, prompt.kind.value)
        if on_prompt is not None:
            on_prompt(prompt)

    def _finish(self, sale: _Sale, scripted: CardOutcome, ending: PaymentReason | None) -> None:
        """Settle the sale's outcome; with the lock held."""
        if ending is not None:                 # aborted, or nobody paid before the time-out
            sale.status, sale.reason = PaymentStatus.FAILED, ending
        elif scripted is CardOutcome.APPROVE:
            sale.status = PaymentStatus.APPROVED
            sale.payment_id = "poi-" + secrets.token_hex(8)
            card = sale.method is PaymentMethod.CARD
            sale.receipt = CardReceipt(masked_pan=MASKED_PAN if card else "",
                                       auth_code="%06d" % secrets.randbelow(10 ** 6),
                                       terminal_id=TERMINAL_ID, sale_id=sale.sale_id,
                                       brand="VISA" if card else "FAKEWALLET")
        else:
            sale.status, sale.reason = _ENDINGS[scripted]


def _first_prompt(sale: _Sale) -> PaymentPrompt:
    if sale.method is PaymentMethod.WALLET:
        qr = "fakepay://pay?sale=%s&amount=%d&currency=%s" % (sale.sale_id, sale.amount.amount_minor,
                                                               sale.amount.currency)
        return PaymentPrompt(sale.sale_id, PromptKind.SCAN_QR, qr=qr, expires_in_s=WALLET_EXPIRES_IN_S)
    return PaymentPrompt(sale.sale_id, PromptKind.PRESENT_CARD)


def _logged(call: str, outcome: PaymentOutcome) -> PaymentOutcome:
    log.info("payment.%s sale_id=%s status=%s reason=%s", call, outcome.sale_id, outcome.status.name,
             outcome.reason.value if outcome.reason else "-")
    return outcome


def _check_id(kind: str, name: str, value: str) -> None:
    """A malformed id is a caller's bug the terminal refuses outright: PaymentError."""
    if not wire.is_id(value):
        raise PaymentError("payment refused %s: invalid %s" % (kind, name))


def _check_amount(kind: str, key: str, amount: Money) -> None:
    if not isinstance(amount, Money) or not 0 < amount.amount_minor <= MAX_AMOUNT_MINOR:
        raise PaymentError("payment refused %s %s: invalid amount" % (kind, key))


def from_config(config: KioskConfig) -> FakePaymentTerminal:
    """The `fake` payment backend: on line, approving every sale."""
    return FakePaymentTerminal()
