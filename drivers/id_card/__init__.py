"""The national ID card profile (specs/national-id-card.md) as pure code.

No transport here: command builders and status words (``apdu``), the EF.ID
format (``tlv``), the PIN block (``pin``) and what a reader's PIN pad is
asked for (``pin_pad``), the trusted issuer keys (``trust``), both
authenticity checks (``authenticity``), and the whole read spoken through a
``transmit`` callable (``protocol``). The driver (``drivers.pyscard_reader``)
and the card simulator (``drivers.card_sim``) both build on it.
"""
