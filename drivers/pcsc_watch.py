"""Following one PC/SC reader and its card through pcscd.

`ReaderWatch` runs on a thread of its own and reports through the callbacks
it is given: `on_reader(name)` when the reader comes (its name) or goes
(None), `on_card(present)` when a card goes in or comes out. It outlives
the reader and pcscd: both may go away and come back. `card_present` asks
pcscd once, now; `READER_NOTIFICATIONS` fans a pyscard reader notification
out to whoever subscribed.
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Any, Callable

from smartcard.ReaderMonitoring import ReaderObserver
from smartcard.scard import (
    SCARD_E_CANCELLED, SCARD_E_NO_READERS_AVAILABLE, SCARD_E_TIMEOUT, SCARD_E_UNKNOWN_READER,
    SCARD_S_SUCCESS, SCARD_SCOPE_USER, SCARD_STATE_CHANGED, SCARD_STATE_IGNORE,
    SCARD_STATE_PRESENT, SCARD_STATE_UNAVAILABLE, SCARD_STATE_UNAWARE, SCARD_STATE_UNKNOWN,
    SCardCancel, SCardEstablishContext, SCardGetStatusChange, SCardListReaders,
    SCardReleaseContext,
)

log = logging.getLogger(__name__)

WATCH_POLL_S = 1.0               # the watch's pace, as pyscard's own monitors: every wait, every retry
WATCH_MIN_GAP_S = 0.05           # the least time between two looks at pcscd

PNP_NOTIFICATION = "\\\\?PnP?\\Notification"       # pcscd's pseudo-reader: the reader list changed
_STATE_UNSURE = SCARD_STATE_UNKNOWN | SCARD_STATE_UNAVAILABLE | SCARD_STATE_IGNORE


def card_present(reader_name: str) -> bool | None:
    """Ask pcscd now whether a card is in `reader_name`; None if it cannot say."""
    hresult, context = SCardEstablishContext(SCARD_SCOPE_USER)
    if hresult != SCARD_S_SUCCESS:
        return None
    try:
        hresult, states = SCardGetStatusChange(context, 0, [(reader_name, SCARD_STATE_UNAWARE)])
        if hresult != SCARD_S_SUCCESS or not states:
            return None
        state = states[0][1]
        if state & SCARD_STATE_UNKNOWN:
            return None
        return bool(state & SCARD_STATE_PRESENT)
    finally:
        SCardReleaseContext(context)


class ReaderWatch:
    """Follows the first reader whose name starts with `prefix` through pcscd
    on a thread of its own, and reports when it or its card comes or goes.

    `reader` is the reader's name as the caller already knows it (None: no
    reader yet); a card is taken as absent until pcscd says otherwise. A
    change of reader is reported as `on_reader(None)` then `on_reader(name)`;
    a card goes with its reader without an `on_card(False)`. No report starts
    after `stop`; one already under way may still finish, so the receiver
    should check that the watch is still its own.

    Not pyscard's CardMonitor and ReaderMonitor: when pcscd goes away both
    threads end for good without a word to their observers (pyscard issue
    #82). CardMonitor's is a process-wide singleton, never started again and
    never stopped (it waits 60 s at a time with nothing to cancel it);
    ReaderMonitor's shares its state between instances and cannot be safely
    stopped and started again. This uses pyscard's PC/SC calls instead: one
    context, established again whenever pcscd is back (tried every
    WATCH_POLL_S while it is away); every wait for a change bounded by
    WATCH_POLL_S and ended at once by SCardCancel when the watch stops.
    """

    def __init__(self, prefix: str, reader: str | None, *, on_reader: Callable[[str | None], None],
                 on_card: Callable[[bool], None]) -> None:
        self._prefix = prefix
        self._reader = reader                  # our reader, as last reported
        self._card = False                     # a card in it, as last reported
        self._on_reader = on_reader
        self._on_card = on_card
        self._pcscd_up: bool | None = None
        self._stopping = threading.Event()
        self._context_lock = threading.Lock()
        self._context: Any = None
        self._thread = threading.Thread(target=self._run, name="card-watch", daemon=True)

    def __repr__(self) -> str:
        return "ReaderWatch(prefix=%r, alive=%r)" % (self._prefix, self.is_alive())

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop looking at pcscd; waits (bounded) for the thread to end."""
        self._stopping.set()
        with self._context_lock:
            if self._context is not None:
                _quietly_scard(lambda: SCardCancel(self._context))
        if self._thread is not threading.current_thread() and self._thread.ident is not None:
            self._thread.join(WATCH_POLL_S + 1.0)

    def is_alive(self) -> bool:
        """True while the watch's thread runs."""
        return self._thread.is_alive()

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                context = self._open()
                if context is not None:
                    try:
                        self._follow(context)
                    finally:
                        self._close()
                if not self._stopping.is_set():
                    self._report_reader(None)          # pcscd went away, or was never there
            except Exception as exc:
                # Type and stack only, as everywhere near the card.
                log.error("card.unexpected_error operation=watch type=%s\n%s", type(exc).__name__,
                          "".join(traceback.format_tb(exc.__traceback__)))
            self._stopping.wait(WATCH_POLL_S)

    def _open(self) -> Any:
        hresult, context = SCardEstablishContext(SCARD_SCOPE_USER)
        if hresult != SCARD_S_SUCCESS:
            self._pcscd(False, hresult)
            return None
        with self._context_lock:
            self._context = context
        self._pcscd(True, hresult)
        return context

    def _close(self) -> None:
        with self._context_lock:
            context, self._context = self._context, None
        if context is not None:
            _quietly_scard(lambda: SCardReleaseContext(context))

    def _follow(self, context: Any) -> None:
        """Watch through one context until pcscd goes away or the watch stops."""
        known = SCARD_STATE_UNAWARE            # our reader's state as pcscd last told it
        pnp = SCARD_STATE_UNAWARE
        while not self._stopping.is_set():
            hresult, names = SCardListReaders(context, [])
            if hresult == SCARD_E_NO_READERS_AVAILABLE:
                names = []
            elif hresult != SCARD_S_SUCCESS:
                self._pcscd(False, hresult)
                return
            ours = next((name for name in names if name.startswith(self._prefix)), None)
            if ours != self._reader:
                known = SCARD_STATE_UNAWARE
            self._report_reader(ours)
            asked = [(PNP_NOTIFICATION, pnp)] + ([(ours, known)] if ours else [])
            hresult, states = SCardGetStatusChange(context, int(WATCH_POLL_S * 1000), asked)
            if hresult == SCARD_E_CANCELLED:
                return
            if hresult in (SCARD_E_TIMEOUT, SCARD_E_UNKNOWN_READER):  # nothing new, or the list moved
                self._stopping.wait(WATCH_MIN_GAP_S)
                continue
            if hresult == SCARD_E_NO_READERS_AVAILABLE:
                self._stopping.wait(WATCH_POLL_S)
                continue
            if hresult != SCARD_S_SUCCESS:
                self._pcscd(False, hresult)
                return
            news = False
            for name, state, _atr in states:
                news = news or bool(state & SCARD_STATE_CHANGED)
                state &= ~SCARD_STATE_CHANGED
                if name == PNP_NOTIFICATION:
                    pnp = state
                elif name == ours:
                    news = news or state != known
                    known = state
                    if not state & _STATE_UNSURE:          # a reader going away: the list says
                        self._report_card(bool(state & SCARD_STATE_PRESENT))
            # Never faster than WATCH_MIN_GAP_S; a wake with nothing new waits a full round.
            self._stopping.wait(WATCH_MIN_GAP_S if news else WATCH_POLL_S)

    # -- reports (on the watch's thread only) ------------------------------------------------

    def _report_reader(self, name: str | None) -> None:
        if self._stopping.is_set() or name == self._reader:
            return
        previous, self._reader, self._card = self._reader, name, False
        if previous is not None:
            self._on_reader(None)
        if name is not None and not self._stopping.is_set():
            self._on_reader(name)

    def _report_card(self, present: bool) -> None:
        if self._stopping.is_set() or present == self._card:
            return
        self._card = present
        self._on_card(present)

    def _pcscd(self, up: bool, hresult: int) -> None:
        """Log pcscd going away and coming back (transitions only)."""
        if up == self._pcscd_up:
            return
        if not up:
            log.warning("card.pcscd_unavailable hresult=%08X", hresult & 0xFFFFFFFF)
        elif self._pcscd_up is not None:
            log.info("card.pcscd_available")
        self._pcscd_up = up


def _quietly_scard(call: Callable[[], Any]) -> None:
    """A PC/SC call whose failure changes nothing (cancel, release)."""
    try:
        call()
    except Exception:  # pyscard's bindings can raise odd types on a dead context
        pass


ReadersChanged = Callable[[list[str], list[str]], None]


class ReaderNotifications(ReaderObserver):
    """A pyscard reader notification (names added, names removed) fanned out
    to the subscribed callbacks. A `ReaderWatch` reports on its own; this is
    the way in for a notification from elsewhere (the tests feed one)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._subscribers: set[ReadersChanged] = set()

    def subscribe(self, on_change: ReadersChanged) -> None:
        with self._lock:
            self._subscribers.add(on_change)

    def unsubscribe(self, on_change: ReadersChanged) -> None:
        with self._lock:
            self._subscribers.discard(on_change)

    def update(self, observable: Any, handlers: Any) -> None:
        added, removed = handlers
        with self._lock:
            subscribers = list(self._subscribers)
        for on_change in subscribers:
            on_change([str(r) for r in added], [str(r) for r in removed])


READER_NOTIFICATIONS = ReaderNotifications()
