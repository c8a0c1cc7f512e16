"""The chosen certificate and its fee, before any money moves; the two ways to pay.

When central changed the fee after the citizen chose (the session came back
here with `fee_changed`), the screen says so in place of its usual title and
body, and shows the new fee, before the citizen pays again.

When the certificate needs central and central cannot be reached
(`needs_link`), the screen says so, says nothing was charged, and offers
only the way back: there is nothing to pay. When central cannot be reached
and the certificate may be claimed (`claim`), the screen says what a claim
is (pay now, a claim slip, the document at any kiosk once the link is back)
and offers the bank card only: the terminal takes it as card-present offline
payments are taken.
"""

from pathlib import Path

from kivy.lang import Builder
from kivy.properties import BooleanProperty, StringProperty

from kiosk import i18n
from kiosk.events import Back, Pay
from kiosk.ports.payment_terminal import PaymentMethod
from kiosk.session import View
from screens.base import KioskScreen


class ConfirmScreen(KioskScreen):
    service_name = StringProperty("")
    fee = StringProperty("")
    fee_changed = BooleanProperty(False)
    needs_link = BooleanProperty(False)
    claim = BooleanProperty(False)

    def show(self, view: View) -> None:
        super().show(view)
        self.fee_changed = view.fee_changed
        self.needs_link = view.needs_link
        self.claim = view.claim
        if view.selected is not None:
            self.service_name = view.selected.name(view.language)
            self.fee = i18n.text("confirm.new_fee" if view.fee_changed else "confirm.fee", view.language,
                                 fee=i18n.format_money(view.selected.fee, view.language))

    def pay(self) -> None:
        self.send(Pay(PaymentMethod.CARD))

    def pay_by_wallet(self) -> None:
        self.send(Pay(PaymentMethod.WALLET))

    def back(self) -> None:
        self.send(Back())


Builder.load_file(str(Path(__file__).with_name("confirm.kv")))
