"""The cabinet as the kiosk sees it: a status light, a chime, and the switches
and sensors a technician or a citizen can work.

The light shows what the kiosk is doing; the chime tells a citizen to take
their card or their document; the inputs come back as events from a
background thread, each only when it changes, like the card reader's, and
can be read as they are now (`inputs`: the self-test's report).
"""

from __future__ import annotations

import abc
import enum
from typing import Callable


class Light(enum.Enum):
    OFF = "off"
    READY = "ready"                    # waiting for a citizen
    BUSY = "busy"                      # a citizen is being served
    OFFLINE = "offline"                # serving, but central cannot be reached
    OUT_OF_SERVICE = "out of service"
    FAULT = "fault"


class CabinetInput(enum.Enum):
    DOOR_OPENED = "door opened"
    DOOR_CLOSED = "door closed"
    MAINTENANCE_ON = "maintenance on"   # the technician's key switch
    MAINTENANCE_OFF = "maintenance off"
    HELP_PRESSED = "help pressed"
    PAPER_LOW = "paper low"
    PAPER_OK = "paper ok"


class Chime(enum.Enum):
    """What the chime tells the citizen; each kind sounds its own way."""

    TAKE_CARD = "take card"             # the ID card waits in the reader
    TAKE_DOCUMENT = "take document"     # a document came out of the printer


# Where each input rests, as a kiosk in service stands: door closed, key off, paper fine.
AT_REST = frozenset({CabinetInput.DOOR_CLOSED, CabinetInput.MAINTENANCE_OFF, CabinetInput.PAPER_OK})


class Cabinet(abc.ABC):
    @abc.abstractmethod
    def show(self, light: Light) -> None:
        """Set the status light's pattern; returns at once."""

    @abc.abstractmethod
    def chime(self, kind: Chime) -> None:
        """Sound `kind` once; returns at once (a chime asked while another sounds follows it)."""

    @abc.abstractmethod
    def watch(self, on_input: Callable[[CabinetInput], None]) -> None:
        """Call `on_input` (from a background thread) on every change of an input, until `unwatch`;
        first, at once, with every input not at rest (`AT_REST`: a door open when the kiosk starts)."""

    @abc.abstractmethod
    def unwatch(self) -> None:
        """Stop watching; no more calls after this returns."""

    @abc.abstractmethod
    def inputs(self) -> frozenset[CabinetInput]:
        """The state of each input now, as debounced (what `watch` last said or would say): one of
        door opened/closed, one of maintenance on/off, one of paper low/ok. Never HELP_PRESSED (a
        moment, not a state); an input not wired reads at rest (nothing can say otherwise). Returns
        at once; may be called watched or not."""

    def close(self) -> None:
        """Let go of the pins."""


class NoCabinet(Cabinet):
    """A kiosk whose cabinet has no light and no inputs wired (`cabinet.backend = "none"`)."""

    def show(self, light: Light) -> None:
        pass

    def chime(self, kind: Chime) -> None:
        pass

    def watch(self, on_input: Callable[[CabinetInput], None]) -> None:
        pass

    def unwatch(self) -> None:
        pass

    def inputs(self) -> frozenset[CabinetInput]:
        return AT_REST


def no_cabinet(_config: object) -> NoCabinet:
    return NoCabinet()
