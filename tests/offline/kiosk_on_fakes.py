"""A kiosk on the in-process fakes with its state on a real file: the runtime, the session, the
devices' fakes, and the `sqlite` local state as `offline.delivery` builds it (a device key in its
own file, the outbox sealed, the journal, the reconciler), for the offline tests.

The test thread plays Kivy's part, as in tests/kiosk/test_runtime_effects.py: every result a
worker posts is run on it, one at a time. Central is a fake here unless a test gives its own
(the real client, through the fault proxy).
"""

from __future__ import annotations

import queue
import threading
from datetime import date
from pathlib import Path
from typing import Callable

import pytest

from drivers.fakes.card_reader import FakeCardReader
from drivers.fakes.payment_terminal import FakePaymentTerminal
from drivers.fakes.receipt_printer import FakeReceiptPrinter
from kiosk import events as ev
from kiosk.catalogue import Catalogue, Service
from kiosk.documents import DocumentField, IssuedDocument
from kiosk.errors import CentralError
from kiosk.messages import MessageKind
from kiosk.money import Money
from kiosk.ports.card_reader import Identity
from kiosk.card_proof import CardProof
from kiosk.ports.central import Central, Challenge, Eligibility, EligibilityAnswer
from kiosk.ports.payment_terminal import PaymentMethod
from kiosk.runtime import Devices, Runtime
from tests.card_presence import CardChallenges, issued_card
from tests.posted_results import run_until
from kiosk.session import Session, Step
from offline.database import StateDatabase
from offline.delivery import DurableOutbox, void_sender
from offline.disk_budget import DiskBudget
from offline.journal import SqliteJournal
from offline.outbox import Outbox
from offline.reconciler import Reconciler
from offline.sealing import Sealer

WAIT_S = 10.0
TODAY = date(2026, 11, 29)
FEE = Money.of(150000, "SYP")
SERVICE = Service("civil-status-extract", {"ar": "إخراج قيد مدني", "en": "Civil-status extract"}, FEE)
IDENTITY = Identity(
    card_number="SY0012345678", national_number="01010012345", given_name_ar="سلمى",
    family_name_ar="الحلبي", given_name_latin="Salma", family_name_latin="Al-Halabi",
    date_of_birth=date(1990, 5, 1), date_of_expiry=date(2031, 1, 1),
    issuer_key_id=b"\x01" * 8, card_public_key=b"\x02" * 91,
)
MOTHER = "هدى الشامي"
# What must never be found in clear on the disk.
SECRETS = (IDENTITY.national_number, IDENTITY.card_number, IDENTITY.given_name_ar, IDENTITY.family_name_ar,
           IDENTITY.given_name_latin, IDENTITY.family_name_latin, MOTHER)


def issued_document(request_id: str) -> IssuedDocument:
    """A document as central issues it: the holder's names, mother and date of birth in its fields."""
    def field(en: str, value: str) -> DocumentField:
        return DocumentField({"ar": en, "en": en}, value)
    return IssuedDocument(
        request_id=request_id, serial="2026-ABCD2345", service_code=SERVICE.code, title=dict(SERVICE.names),
        fields=(field("Name", "%s %s" % (IDENTITY.given_name_ar, IDENTITY.family_name_ar)),
                field("Latin name", "%s %s" % (IDENTITY.given_name_latin, IDENTITY.family_name_latin)),
                field("Mother", MOTHER), field("National number", IDENTITY.national_number),
                field("Born", IDENTITY.date_of_birth.isoformat())),
        issued_at="2026-11-29T10:00:00Z", verification="KSK1.x.y")


class FakeCentral(Central):
    """Central as the runtime sees it; `online` and `refuse` are set by the test."""

    def __init__(self) -> None:
        self.online = True
        self.refuse: set[str] = set()                       # request ids central refuses for good (a 4xx)
        self.delivered: list[tuple[str, str]] = []          # (kind, request id)
        self.cards = CardChallenges()                       # the cards that proved themselves to it

    def fetch_catalogue(self) -> Catalogue:
        if not self.online:
            raise CentralError("central unreachable")
        return Catalogue(services=(SERVICE,), version="v1")

    def challenge(self) -> Challenge | None:
        return self.cards.challenge() if self.online else None

    def check_eligibility(self, *, service_code: str, challenge: Challenge, proof: CardProof, fee: Money,
                          catalogue_version: str) -> EligibilityAnswer:
        if not self.online:
            return EligibilityAnswer(Eligibility.UNREACHABLE)
        if self.cards.prove(challenge, proof) is None:
            return EligibilityAnswer(Eligibility.NOT_ELIGIBLE, FEE, "v1")
        return EligibilityAnswer(Eligibility.ELIGIBLE, FEE, "v1", presence_id=challenge.challenge_id)

    def deliver(self, kind: MessageKind | str, payload: dict) -> dict | None:
        if not self.online:
            return None
        request_id = payload["request_id"]
        if request_id in self.refuse and kind == MessageKind.CERTIFICATE_REQUEST:
            raise CentralError("central refused certificate_request %s: HTTP 409, request_id_reused" % request_id)
        self.delivered.append((MessageKind(kind).value, request_id))
        if kind == MessageKind.VOID_REQUEST:
            return {"status": "voided", "request_id": request_id}
        if self.cards.requester(payload) is None:
            return {"status": "rejected", "reason": "not_eligible"}
        return {"status": "issued", "document": issued_document(request_id).to_json()}


class KioskOnFakes:
    def __init__(self, state_dir: Path, *, central: Central | None = None, probe: Callable[[], bool] | None = None,
                 document_timeout_s: float = WAIT_S, free_bytes: Callable[[], int] | None = None,
                 reserve_bytes: int = 0) -> None:
        self.state_dir = state_dir
        self.card = FakeCardReader()
        self.payment = FakePaymentTerminal()
        self.printer = FakeReceiptPrinter()
        self.central = central or FakeCentral()
        self.alerts: list[str] = []
        self.database = StateDatabase(state_dir / "kiosk.sqlite3", alert=self.alerts.append)
        self.store = Outbox(self.database, sealer=Sealer.from_key_file(state_dir / "device.key"))
        budget = None
        if free_bytes is not None:
            budget = DiskBudget(state_dir, alert_bytes=reserve_bytes * 4, reserve_bytes=reserve_bytes,
                                alert=self.alerts.append, free_bytes=free_bytes)
        self.outbox = DurableOutbox(self.store, self.central.deliver, retry_s=0.05, max_backoff_s=0.5, probe=probe,
                                    probe_s=0.2, alert=self.alerts.append, budget=budget)
        self.journal = SqliteJournal(self.database)
        self.reconciler = Reconciler(self.journal, self.payment, void_sender(self.outbox), run_id="run-1",
                                     alert=self.alerts.append, retry_s=0.05, jitter=lambda _ceiling: 0.0)
        self._sent = threading.Condition()
        self.sent: list[str] = []                            # message ids the runtime handed the outbox
        send = self.outbox.send

        def noted_send(kind: MessageKind, message_id: str, payload: dict) -> bool:
            kept = send(kind, message_id, payload)
            with self._sent:
                self.sent.append(message_id)
                self._sent.notify_all()
            return kept
        self.outbox.send = noted_send                        # type: ignore[method-assign]
        self.posted: queue.Queue = queue.Queue()
        self.now = 1000.0
        self.runtime = Runtime(Session(device_id="kiosk-test-01"),
                               Devices(self.card, self.payment, self.printer),
                               self.central, self.outbox, self.journal, self.reconciler, post=self.posted.put,
                               run_id="run-1", document_timeout_s=document_timeout_s, today=lambda: TODAY,
                               clock=lambda: self.now)

    @property
    def view(self):
        return self.runtime.session.view()

    def run_until(self, step: Step, **view: object) -> None:
        """Run posted results on this thread until the session shows `step` (and `view`'s values)."""
        run_until(self.runtime, self.posted, step, timeout=WAIT_S, **view)

    def start(self) -> "KioskOnFakes":
        self.runtime.start()
        self.run_until(Step.ATTRACT)
        return self

    def stop(self) -> None:
        self.runtime.stop()

    def pay(self, method: PaymentMethod = PaymentMethod.CARD, *, identity: Identity = IDENTITY) -> None:
        """A citizen: language, card, PIN, the service, pay."""
        self.runtime.dispatch(ev.LanguageChosen("en"))
        self.card.insert(issued_card(identity, photo=b"\xff\xd8 a portrait \xff\xd9"))
        self.run_until(Step.PIN_ENTRY)
        for digit in "1234":
            self.runtime.dispatch(ev.PinDigit(digit))
        self.runtime.dispatch(ev.PinSubmit())
        self.run_until(Step.IDENTITY)
        self.runtime.dispatch(ev.ShowServices())
        self.run_until(Step.CATALOGUE)
        self.runtime.dispatch(ev.ServiceChosen(SERVICE.code))
        self.run_until(Step.CONFIRM)
        self.runtime.dispatch(ev.Pay(method))

    def take_card(self) -> None:
        self.card.remove()
        self.run_until(Step.ATTRACT)

    def settle(self) -> None:
        """Let every effect handed out so far finish, and run what it posted."""
        assert self.runtime.wait_idle(WAIT_S)
        while not self.posted.empty():
            self.posted.get_nowait()()

    def settled(self) -> None:
        """Run reconciler passes here until the journal owes nothing more of this run's settlements."""
        from kiosk.ports.journal import TxnState
        for _ in range(50):
            if not any(entry.state is TxnState.SETTLING for entry in self.journal.unfinished()):
                return
            self.reconciler.reconcile_once()
        pytest.fail("the journal still owes %s" % (self.journal.unfinished(),))

    def wait_until_sent(self, count: int = 1) -> list[str]:
        """The ids of the first `count` messages the runtime handed the outbox, once it has."""
        with self._sent:
            assert self._sent.wait_for(lambda: len(self.sent) >= count, timeout=WAIT_S), "nothing was sent"
            return self.sent[:count]

    def given_back(self) -> int:
        return sum(sale.amount.amount_minor for sale in self.payment.statement if sale.reversed)


def raw_state_bytes(state_dir: Path) -> dict[str, bytes]:
    """Every file of the state directory, as the disk holds it (the database, its -wal and -shm, the key)."""
    return {path.name: path.read_bytes() for path in sorted(state_dir.iterdir()) if path.is_file()}


def clear_text_found(files: dict[str, bytes], secrets: tuple[str, ...] = SECRETS) -> list[tuple[str, str]]:
    """(file, secret) for every secret found in a file, UTF-8 or UTF-16 (SQLite's text encodings)."""
    found = []
    for name, data in files.items():
        for secret in secrets:
            if any(secret.encode(codec) in data for codec in ("utf-8", "utf-16-le", "utf-16-be")):
                found.append((name, secret))
    return found
