"""In the app: a version on trial proves itself, and a staged version is switched to between sessions.

The composition root (kiosk/app.py) attaches this to every runtime; it does nothing unless the
app runs from an installed version (its virtual environment is <root>/versions/<V>/venv, the layout
of kiosk/updates/guard.py: /opt/kiosk on a device), so a checkout, the tests and the demo's
ordinary kiosk never meet it.

- On trial (the guard's update-state.json names this version, started, with a nonce): the first
  time the session shows the attract screen (the card reader is there and the catalogue loaded: its
  devices ready), the self-test runs beside the kiosk on a thread of its own (`kiosk selftest
  --beside-kiosk`: central reached and this kiosk authenticated, the clock, the disk, the state
  database), and the proof goes where the guard said: the version, the nonce and the verdict. The
  guard's post-start step, waiting outside this process, judges it; the time limit is the guard's.
- A version pending (the installer staged one): the kiosk restarts when nobody is served (the
  attract or out-of-service screen, at once if it shows one now, else when the session ends) by
  exiting with RESTART_EXIT_STATUS, which systemd starts it again on; the guard switches `current`
  before the next start. A version still proving itself finishes its trial first.

A daemon thread looks at the state file every WATCH_S seconds (a stat, unless it changed). Nothing
here runs on the UI thread but a comparison and, once, the exit.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from kiosk.atomic_file import write_atomically
from kiosk.session import Step, View
from kiosk.technician import RESTART_EXIT_STATUS
from kiosk.updates import guard

log = logging.getLogger(__name__)

WATCH_S = 5.0
BETWEEN_SESSIONS = frozenset({Step.ATTRACT, Step.OUT_OF_SERVICE})


@dataclass(frozen=True)
class Installation:
    """The installed version this process runs from."""

    root: Path
    version: str

    @classmethod
    def running(cls, prefix: str = sys.prefix) -> "Installation | None":
        """From this interpreter's virtual environment: <root>/versions/<V>/venv, complete; else None."""
        venv = Path(prefix).resolve()
        folder = venv.parent
        if venv.name != "venv" or folder.parent.name != "versions" or not guard.is_version(folder.name):
            return None
        installation = cls(folder.parent.parent, folder.name)
        return installation if guard.Layout(installation.root).is_complete(folder.name) else None


def attach(runtime: Any, post: Callable[[Callable[[], None]], None], config: Any) -> "Updates | None":
    """For the running kiosk: an installed version's trial and switch; None when not installed."""
    installation = Installation.running()
    if installation is None:
        return None

    def run_selftest() -> tuple[str, ...]:
        from kiosk import selftest
        return selftest.run(config, beside_kiosk=True).failed
    return Updates(runtime, post, installation, run_selftest)


class Updates:
    def __init__(self, runtime: Any, post: Callable[[Callable[[], None]], None], installation: Installation,
                 selftest: Callable[[], tuple[str, ...]], *, watch_s: float = WATCH_S) -> None:
        """`selftest` runs the self-test beside the kiosk and returns the names of the failed checks."""
        self._runtime = runtime
        self._post = post
        self.installation = installation
        self._layout = guard.Layout(installation.root)
        self._selftest = selftest
        self._watch_s = watch_s
        self._step: Step | None = None
        self._trial = self._own_trial()
        self._proving = False
        self._pending: str | None = None
        self._restarting = False
        self._stopped = threading.Event()
        self.proof_written = threading.Event()        # the proof is on the disk (tests wait on it)
        if self._trial is not None:
            log.info("update.on_trial version=%s", installation.version)
        runtime.listen(self._on_view)
        threading.Thread(target=self._watch, name="updates", daemon=True).start()

    @property
    def pending(self) -> str | None:
        """The staged version this kiosk will restart into between sessions, once it has seen it."""
        return self._pending

    def stop(self) -> None:
        self._stopped.set()

    def _own_trial(self) -> dict | None:
        trial = guard.load_state(self._layout)["trial"]
        if isinstance(trial, dict) and trial.get("version") == self.installation.version and trial.get("started") \
                and trial.get("nonce") and trial.get("proof"):
            return trial
        return None

    # ------------------------------------------------------------ on the UI thread

    def _on_view(self, view: View) -> None:
        self._step = view.step
        if self._trial is not None and not self._proving and view.step is Step.ATTRACT:
            self._proving = True
            threading.Thread(target=self._prove, args=(self._trial,), name="update-proof", daemon=True).start()
        self._restart_if_between_sessions()

    def _pending_seen(self, version: str) -> None:
        if self._pending != version:
            log.info("update.pending version=%s", version)
        self._pending = version
        self._restart_if_between_sessions()

    def _trial_over(self) -> None:
        self._trial = None
        self._restart_if_between_sessions()

    def _restart_if_between_sessions(self) -> None:
        if self._pending is None or self._trial is not None or self._step not in BETWEEN_SESSIONS \
                or self._restarting:
            return
        exit_app = self._runtime.maintenance.exit_app
        if exit_app is None:
            log.warning("update.restart_unavailable version=%s", self._pending)
            return
        self._restarting = True
        log.warning("update.restart to=%s status=%d", self._pending, RESTART_EXIT_STATUS)
        exit_app(RESTART_EXIT_STATUS)

    # ------------------------------------------------------------ on threads of their own

    def _prove(self, trial: dict) -> None:
        try:
            failed = tuple(self._selftest())
        except Exception as exc:            # a self-test that cannot run proves nothing
            log.exception("update.selftest_failed")
            failed = ("selftest error %s" % type(exc).__name__,)
        proof = {"version": trial["version"], "nonce": trial["nonce"], "ok": not failed, "failed": list(failed),
                 "at": guard.utc_now()}
        try:
            write_atomically(Path(trial["proof"]), json.dumps(proof).encode("utf-8"), mode=0o644)
        except OSError as exc:
            log.error("update.proof_unwritable error=%s", type(exc).__name__)
        else:
            log.info("update.proof version=%s ok=%s failed=%s", trial["version"], not failed,
                     ",".join(failed) or "-")
        self.proof_written.set()
        self._post(self._trial_over)

    def _watch(self) -> None:
        seen = None
        while not self._stopped.wait(self._watch_s):
            try:
                stamp = self._layout.state_path.stat().st_mtime_ns
            except OSError:
                continue
            if stamp == seen:
                continue
            seen = stamp
            pending = guard.load_state(self._layout)["pending"]
            if guard.is_version(pending) and pending != self.installation.version:
                self._post(lambda version=pending: self._pending_seen(version))
