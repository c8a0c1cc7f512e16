"""A national ID card simulator that plugs in at the wire (pcscd's vpcd socket).

The real driver (`drivers.pyscard_reader`) cannot tell it from a card:
`SimulatedCard` is the applet, `VirtualCardSlot` inserts it into the vpcd
reader, `IssuerKey` signs its data, `ensure_pcscd` starts pcscd if needed, and
`cli` is `kiosk-sim card ...`.
"""
