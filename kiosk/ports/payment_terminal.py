"""The payment terminal as the kiosk sees it.

The kiosk never touches a bank card, its number or its PIN: a certified
payment terminal beside the screen reads the card (or shows a mobile
wallet's payment request) and talks to its acquirer. The kiosk asks it for
a sale and learns the outcome. Each sale carries a `sale_id` chosen by the
kiosk and written in its journal before the terminal is asked, so that a
sale whose answer was lost is looked up by `status`, never charged again.

Normal outcomes (approved, declined with a reason, terminal busy or
unreachable, cancelled) are values, never exceptions; PaymentError is for a
request the payment side will never take (a settlement to give up on).
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from typing import Callable

from kiosk.money import Money


class PaymentMethod(enum.Enum):
    CARD = "card"          # a bank card inserted, tapped or swiped at the terminal
    WALLET = "wallet"      # a mobile wallet app paying a QR-coded payment request


class PaymentStatus(enum.Enum):
    APPROVED = "approved"
    DECLINED = "declined"    # the bank or the card said no (`reason` says why); nothing was charged
    FAILED = "failed"        # nothing was charged: the terminal busy, unreachable or the sale cancelled
    UNKNOWN = "unknown"      # the answer was lost: ask `status(sale_id)`, never charge again


class PaymentReason(enum.Enum):
    """Why a sale did not go through; each has its own message for the citizen."""

    INSUFFICIENT_FUNDS = "insufficient_funds"
    WRONG_PIN = "wrong_pin"
    CARD_EXPIRED = "card_expired"
    CARD_REMOVED = "card_removed"
    REFUSED = "refused"                  # the bank refused, for a reason it does not give
    CANCELLED = "cancelled"              # cancelled on the kiosk (abort) or on the terminal
    TIMED_OUT = "timed_out"              # no card presented, or the wallet request expired unpaid
    TERMINAL_BUSY = "terminal_busy"
    TERMINAL_UNREACHABLE = "terminal_unreachable"


@dataclass(frozen=True)
class CardReceipt:
    """What the citizen's receipt carries about the payment; never the full card number."""

    masked_pan: str          # e.g. "**** **** **** 1234"; "" for a wallet payment
    auth_code: str           # the acquirer's approval code
    terminal_id: str         # the terminal's POIID
    sale_id: str
    brand: str = ""          # "VISA", a wallet's name, ...


@dataclass(frozen=True)
class PaymentOutcome:
    status: PaymentStatus
    amount: Money
    sale_id: str
    payment_id: str | None = None          # the acquirer's reference (the POI transaction id) when APPROVED
    reason: PaymentReason | None = None    # set when DECLINED or FAILED
    receipt: CardReceipt | None = None     # set when APPROVED


class ReversalStatus(enum.Enum):
    REVERSED = "reversed"    # given back in full (a reversal, or a refund after the day's cut-off)
    FAILED = "failed"        # not given back yet (terminal busy or unreachable): ask again, same reversal_id


@dataclass(frozen=True)
class ReversalOutcome:
    status: ReversalStatus
    sale_id: str
    reversal_id: str


class TerminalState(enum.Enum):
    READY = "ready"
    BUSY = "busy"
    UNREACHABLE = "unreachable"


class PromptKind(enum.Enum):
    PRESENT_CARD = "present_card"    # insert, tap or swipe the bank card on the terminal
    PROCESSING = "processing"        # the card was read: the bank is answering
    SCAN_QR = "scan_qr"              # pay this request (`qr`) in the wallet app before `expires_in_s`


@dataclass(frozen=True)
class PaymentPrompt:
    """What the terminal asks of the citizen while a sale is under way, for the kiosk's screen."""

    sale_id: str
    kind: PromptKind
    qr: str | None = None                 # SCAN_QR: the payment request to show as a QR code
    expires_in_s: float | None = None     # SCAN_QR: how long the request stays payable


OnPrompt = Callable[[PaymentPrompt], None]


class PaymentTerminal(abc.ABC):
    @abc.abstractmethod
    def check(self) -> TerminalState:
        """Whether the terminal can take a sale now (logged in, not busy); asked before any charge."""

    @abc.abstractmethod
    def pay(self, amount: Money, *, sale_id: str, reference: str, label: str,
            method: PaymentMethod = PaymentMethod.CARD, on_prompt: OnPrompt | None = None) -> PaymentOutcome:
        """Take `amount` for one sale. Blocks until the citizen has paid, been declined or
        cancelled, or the terminal gave up. `label` (the service and the fee) is shown on the
        terminal's own display; `on_prompt` hears what the terminal asks of the citizen,
        on the caller's thread of `pay`. A `sale_id` is used once: asking again is `status`."""

    @abc.abstractmethod
    def status(self, sale_id: str) -> PaymentOutcome:
        """The outcome of an earlier sale whose answer was lost, without charging again:
        APPROVED, DECLINED, FAILED (the terminal never took it) or UNKNOWN (cannot tell now)."""

    @abc.abstractmethod
    def reverse(self, outcome: PaymentOutcome, *, reversal_id: str) -> ReversalOutcome:
        """Give an approved sale back in full: a reversal, or a refund once the day's batch is
        closed. Idempotent on `reversal_id`; PaymentError when the payment side refuses for good."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Cancel the sale now waiting for a card or a wallet (the citizen pressed cancel);
        that `pay` then returns FAILED with CANCELLED, unless it was already approved.
        Called from another thread than `pay`'s; does nothing when no sale is under way."""
