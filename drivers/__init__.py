"""Hardware behind small interfaces, each with a real and a simulated side.

The interfaces (``card_reader``, ``payment_terminal``, ``receipt_printer``)
are what the kiosk core sees; the implementations are named for their
backend; the simulators (``card_sim``, ``printer_sim``) plug in at the wire so
that the real drivers run against them unchanged.
"""
