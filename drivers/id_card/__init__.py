"""The national ID card profile (specs/national-id-card.md) as pure code.

No transport here: command builders and status words (``apdu``), the EF.ID
format (``tlv``), the PIN block (``pin``), the trusted issuer keys (``trust``)
and both authenticity checks (``authenticity``). The driver
(``drivers.pyscard_reader``) and the card simulator (``drivers.card_sim``)
both build on it.
"""
