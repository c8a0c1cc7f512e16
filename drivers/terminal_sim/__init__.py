"""A nexo payment terminal on loopback, with its own acquirer, for tests and demos.

`terminal` is the POI itself (what it answers, the citizen's card, the
faults), `acquirer` what it took and gave back, `control` its HTTP control
API and the acquirer's API that central asks, `simulator` the
`TerminalSimulator` that runs them all in threads, and `cli` the
``kiosk-sim terminal`` command. It speaks the kiosk's own nexo codec
(`drivers.nexo`); the real driver (`drivers.nexo_terminal`) cannot tell it
from a terminal.
"""
