"""The demo and the test stack: every party a kiosk talks to, simulated at the
wire on this machine (`stack`), and `make demo` (`python -m drivers.demo`).

Development only: a device never installs this package.
"""
