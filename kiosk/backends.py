"""Devices found by name: the configuration names a backend, the core finds it.

Each port has an entry-point group (as gpiozero has `gpiozero_pin_factories`
and Mopidy `mopidy.ext`); a driver package registers a factory under a name
there, and `kiosk.toml` picks the name (`card.backend = "pyscard"`). The
core never imports a driver: adding a printer model adds a driver and its
entry point, nothing else. A factory takes the whole `KioskConfig` and
returns the device; it is imported only when its backend is configured, so
an unused driver costs nothing at start-up.
"""

from __future__ import annotations

import difflib
import functools
from importlib.metadata import EntryPoint, distributions
from typing import Any, Callable

from kiosk.errors import ConfigError

# The configuration key of each port, and the entry-point group its drivers register in.
GROUPS = {
    "card.backend": "kiosk.card_readers",
    "payment.backend": "kiosk.payment_terminals",
    "printer.backend": "kiosk.receipt_printers",
    "cabinet.backend": "kiosk.cabinets",
    "outbox.backend": "kiosk.outboxes",
}
# The user interfaces `kiosk run` can start (Mopidy's frontends).
FRONTENDS = "kiosk.frontends"
# Technicians' tools that belong to a driver (`kiosk card check` reads a card through PC/SC).
TOOLS = "kiosk.tools"
_OURS = frozenset(GROUPS.values()) | {FRONTENDS, TOOLS}


@functools.lru_cache(maxsize=None)
def _all() -> dict[str, dict[str, EntryPoint]]:
    """Every entry point of ours, by group and name. Reading the installed
    packages' metadata takes tens of milliseconds: once per process."""
    found: dict[str, dict[str, EntryPoint]] = {}
    for distribution in distributions():       # the first on the path wins, as with entry_points()
        for entry in distribution.entry_points:
            if entry.group in _OURS:
                found.setdefault(entry.group, {}).setdefault(entry.name, entry)
    return found


def _registered(group: str) -> dict[str, EntryPoint]:
    return _all().get(group, {})


def names(group: str) -> list[str]:
    """The backends registered in `group`, sorted."""
    return sorted(_registered(group))


def find(group: str, name: str, *, key: str) -> EntryPoint:
    """The entry point `name` of `group`, without importing it; a ConfigError
    naming `key` and the known names when there is none."""
    entry = _registered(group).get(name)
    if entry is not None:
        return entry
    known = names(group)
    close = difflib.get_close_matches(name, known, n=1)
    hint = ": did you mean %r?" % close[0] if close else ""
    raise ConfigError("`%s` %r is not an installed backend (%s)%s" % (
        key, name, ", ".join(known) or "none installed", hint))


def load(key: str, name: str) -> Callable[..., Any]:
    """The factory registered as `name` for the configuration key `key`."""
    return find(GROUPS[key], name, key=key).load()


def load_frontend(name: str) -> Callable[..., Any]:
    return find(FRONTENDS, name, key="frontend").load()


def load_tool(name: str) -> Callable[..., Any]:
    return find(TOOLS, name, key="tool").load()
