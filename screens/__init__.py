"""Kivy screens: each shows the session's View and passes touches on as events.

`SCREENS` is the one table from a session step to the screen that shows it;
the screen's name is what the journey runner waits for.
"""

from kiosk.session import Step

SCREENS: dict[Step, str] = {
    Step.STARTING: "starting",
    Step.OUT_OF_SERVICE: "out_of_service",
    Step.ATTRACT: "attract",
    Step.INSERT_CARD: "insert_card",
    Step.READING_CARD: "reading_card",
    Step.PIN_ENTRY: "pin_entry",
    Step.VERIFYING: "verifying",
    Step.IDENTITY: "identity",
    Step.CATALOGUE: "catalogue",
    Step.CONFIRM: "confirm",
    Step.PREPARING: "preparing",
    Step.PAYING: "paying",
    Step.PAYMENT_DECLINED: "payment_declined",
    Step.ISSUING: "issuing",
    Step.PRINTING: "printing",
    Step.PRINT_WAITING: "print_waiting",
    Step.CLAIMING: "claiming",
    Step.COLLECTING: "collecting",
    Step.TAKE_CARD: "take_card",
    Step.CARD_REFUSED: "card_refused",
    Step.FAILED: "failed",
    Step.TECHNICIAN_PIN: "technician_pin",
    Step.TECHNICIAN: "technician",
}
