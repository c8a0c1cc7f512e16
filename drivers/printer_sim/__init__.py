"""A loopback network ESC/POS printer for tests and demos.

`decoder` turns the byte stream back into elements, `renderer` draws them
as the paper would look, `server` is the TCP printer itself and `cli` the
``kiosk-sim printer`` command. The real driver cannot tell it from a real
network printer.
"""
