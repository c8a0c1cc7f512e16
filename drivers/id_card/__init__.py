"""The national ID card profile (specs/national-id-card.md) as the reader speaks it.

No transport here: command builders and status words (``apdu``), the PIN
block (``pin``) and what a reader's PIN pad is asked for (``pin_pad``), and
the whole read spoken through a ``transmit`` callable (``protocol``). What
the card's data mean and how they are checked is the core's, so that central
checks a card the same way: the EF.ID format (``kiosk.id_card_data``), the
trusted issuer keys (``kiosk.issuer_keys``) and the authenticity checks
(``kiosk.card_proof``). The driver (``drivers.pyscard_reader``) and the card
simulator (``drivers.card_sim``) both build on it.
"""
