"""The start guard: which installed version the kiosk starts, its trial, and the way back.

Standard library only, one file, run by the system's own Python as root: systemd runs the
copy at /opt/kiosk/guard.py around every start of kiosk.service (systemd/kiosk.service):

    ExecStartPre=-+/usr/bin/python3 -I /opt/kiosk/guard.py pre-start    before the kiosk's Python runs
    ExecStartPost=+/usr/bin/python3 -I /opt/kiosk/guard.py post-start   after READY=1: waits for the proof
    ExecStopPost=-+/usr/bin/python3 -I /opt/kiosk/guard.py stopped      after the kiosk stopped, however

The layout under the root (/opt/kiosk; written by root only, readable by all):

    versions/<V>/            one installed version: its manifest.json (written last: a version
                             without it is half installed and never started), venv/ (its own
                             virtual environment) and guard.py (its copy of this file)
    current -> versions/<V>  what kiosk.service starts (ExecStart=/opt/kiosk/current/venv/bin/kiosk):
                             switched with a new symlink and os.replace, so it is always one or the other
    guard.py                 the guard in force: the copy of the last version that proved itself
    update-state.json        current, previous, pending, the trial, strikes, refused, proven
    update-events.json       what central is told (telemetry): staged, switched, installed,
                             rolled_back, refused; newest last, at most EVENTS_KEPT

The design. The installer (kiosk/updates/install.py) unpacks a new version beside the running one
and marks it `pending`; it never touches `current`. The running kiosk sees that and, between
sessions, exits with status 75 (kiosk/updates/trial.py), which systemd restarts it on. Everything
after that is done here, outside the new version's code, so that a version that cannot even import
its own Python is still rolled back:

- pre-start (before any of the version's code runs): a trial whose start already happened and
  was not proven has failed, whatever became of it (a crash, an import error, READY never sent and
  systemd's TimeoutStartSec killed it, a watchdog kill, the self-test failed, a power cut): `current`
  goes back to the version it came from, the failure is recorded, and the version gets a strike; at
  MAX_STRIKES it is refused for good (the installer will not take it again). Then a pending version,
  if any, is switched to and put on trial, with a fresh nonce.
- The version on trial proves itself in the app: it reaches the attract screen (card reader
  present, catalogue loaded) and passes `kiosk selftest` beside the running kiosk, then writes the
  proof file (the trial's nonce and its verdict) in its own state directory.
- post-start (systemd runs it once READY=1 came, and holds the start open while it runs: the
  whole of it is bounded by TimeoutStartSec, whatever the version does): waits for that proof up to
  the trial's deadline. Proven: the version is kept as current, the one it replaced as previous,
  older versions are removed, its guard becomes the guard. Not proven (the self-test failed, or no
  proof in time): exit 1, systemd stops the kiosk and starts it again, and pre-start rolls back.
- stopped: notes why a trial's start ended ($SERVICE_RESULT, $EXIT_CODE, $EXIT_STATUS), for the
  record only; the decision stays with pre-start.

The guard never keeps the kiosk from starting: pre-start swallows its own errors (and its unit
line starts with `-`), and it repairs a `current` that points at nothing usable. It treats what the
kiosk user can write (the proof file) as a claim to check against the nonce, nothing more.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Mapping

ROOT = Path("/opt/kiosk")
PROOF = Path("/var/lib/kiosk/update-proof.json")
MAX_STRIKES = 3                  # a version whose start failed this often is never tried again
TRIAL_DEADLINE_S = 240.0         # from the trial's start to its proof (kiosk.service's TimeoutStartSec is above it)
POLL_S = 0.5                     # how often post-start looks for the proof
EVENTS_KEPT = 100
MANIFEST = "manifest.json"       # in a version's folder: written last, so it marks a complete install
VERSION = re.compile(r"[0-9]+(\.[0-9]+)*")

# The codes of the events central is told (central's dashboard reads `update.*`).
STAGED, SWITCHED, INSTALLED, ROLLED_BACK, REFUSED = (
    "update.staged", "update.switched", "update.installed", "update.rolled_back", "update.refused")


def version_key(version: str) -> tuple[int, ...]:
    """0.10.0 after 0.9.3: a version is digits and dots. (The kiosk compares releases with
    kiosk/wire.py's release_version_key; this file imports nothing of the kiosk, and only orders
    what it keeps with this.)"""
    return tuple(int(part) for part in version.split("."))


def is_version(text: object) -> bool:
    return isinstance(text, str) and bool(VERSION.fullmatch(text))


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Layout:
    """Where everything is under the root."""

    root: Path

    @property
    def versions(self) -> Path:
        return self.root / "versions"

    @property
    def current(self) -> Path:
        return self.root / "current"

    @property
    def state_path(self) -> Path:
        return self.root / "update-state.json"

    @property
    def events_path(self) -> Path:
        return self.root / "update-events.json"

    @property
    def guard_path(self) -> Path:
        return self.root / "guard.py"

    def version_dir(self, version: str) -> Path:
        if not is_version(version):
            raise ValueError("not a version: %r" % (version,))
        return self.versions / version

    def is_complete(self, version: str | None) -> bool:
        return is_version(version) and (self.version_dir(version) / MANIFEST).is_file()

    def complete_versions(self) -> list[str]:
        if not self.versions.is_dir():
            return []
        return sorted((p.name for p in self.versions.iterdir() if is_version(p.name) and self.is_complete(p.name)),
                      key=version_key)

    def current_version(self) -> str | None:
        """The version `current` points at, or None (no link, or a link to anything else)."""
        try:
            target = os.readlink(self.current)
        except OSError:
            return None
        parts = Path(target).parts
        return parts[-1] if len(parts) == 2 and parts[0] == "versions" and is_version(parts[-1]) else None


# ------------------------------------------------------------------------------------------ files

def write_json(path: Path, data: object, *, mode: int = 0o644) -> None:
    """Whole or not at all: a temporary file beside it, synced, renamed over it, the folder synced."""
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=".%s." % path.name)
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=1, sort_keys=True)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise
    _sync_dir(path.parent)


def _sync_dir(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def read_json(path: Path) -> object | None:
    """The JSON in `path`; None when there is none or it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def empty_state() -> dict:
    return {"current": None, "previous": None, "pending": None, "trial": None, "proven": [], "strikes": {},
            "refused": []}


def load_state(layout: Layout) -> dict:
    """update-state.json, with every key present; an unreadable file counts as a fresh start (the
    link, not this file, says what runs)."""
    state = empty_state()
    found = read_json(layout.state_path)
    if isinstance(found, dict):
        state.update({key: value for key, value in found.items() if key in state})
    return state


def save_state(layout: Layout, state: dict) -> None:
    write_json(layout.state_path, state)


@contextlib.contextmanager
def locked(layout: Layout) -> Iterator[None]:
    """One writer of the state at a time: the guard's three steps and the installer."""
    layout.root.mkdir(parents=True, exist_ok=True)
    with open(layout.root / ".update.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def record(layout: Layout, code: str, version: str | None, *, from_version: str | None = None,
           reason: str = "", strikes: int = 0) -> None:
    """An event for central (telemetry reads update-events.json); and a line in the journal."""
    events = read_json(layout.events_path)
    events = events if isinstance(events, list) else []
    events.append({"at": utc_now(), "code": code, "version": version, "from_version": from_version,
                   "reason": reason, "strikes": strikes})
    write_json(layout.events_path, events[-EVENTS_KEPT:])
    print("guard: %s version=%s from=%s strikes=%d%s" % (code, version, from_version, strikes,
                                                        " reason=%s" % reason if reason else ""), flush=True)


def switch_current(layout: Layout, version: str) -> None:
    """`current` to versions/<version> in one step: a new symlink beside it, renamed over it."""
    if not layout.is_complete(version):
        raise ValueError("version %s is not completely installed" % version)
    temporary = layout.root / (".current.%s" % secrets.token_hex(4))
    os.symlink(os.path.join("versions", version), temporary)
    try:
        os.replace(temporary, layout.current)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _sync_dir(layout.root)


def install_guard(layout: Layout, version: str) -> None:
    """The guard of `version` becomes the guard in force, when it differs."""
    source = layout.version_dir(version) / "guard.py"
    if not source.is_file():
        return
    data = source.read_bytes()
    if layout.guard_path.is_file() and layout.guard_path.read_bytes() == data:
        return
    handle, name = tempfile.mkstemp(dir=layout.root, prefix=".guard.")
    with os.fdopen(handle, "wb") as file:
        os.fchmod(file.fileno(), 0o644)
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(name, layout.guard_path)


def remove_version(layout: Layout, version: str) -> None:
    """A version's folder away: its marker first, so that a cut half way leaves a half install (which
    the installer clears), never a version that looks complete."""
    folder = layout.version_dir(version)
    with contextlib.suppress(FileNotFoundError):
        (folder / MANIFEST).unlink()
    shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------------------------------ decisions

def keep_current_usable(layout: Layout, state: dict) -> None:
    """`current` must point at a complete version: the one the state names, else the previous one,
    else the newest proven, else the newest installed."""
    if layout.is_complete(layout.current_version()):
        return
    proven = [v for v in state["proven"] if layout.is_complete(v)]
    complete = layout.complete_versions()
    for candidate in (state["current"], state["previous"], *sorted(proven, key=version_key, reverse=True),
                      *reversed(complete)):
        if layout.is_complete(candidate):
            print("guard: current points at nothing usable; switched to %s" % candidate, flush=True)
            switch_current(layout, candidate)
            state["current"] = candidate
            return


def begin_trial(layout: Layout, state: dict, version: str) -> None:
    came_from = layout.current_version()
    switch_current(layout, version)
    state["current"] = version
    state["trial"] = {"version": version, "from": came_from, "started": False, "nonce": None, "outcome": None}
    record(layout, SWITCHED, version, from_version=came_from)


def roll_back(layout: Layout, state: dict, reason: str) -> None:
    """The version on trial failed its start: back to the one it came from, a strike, maybe refused."""
    trial = state["trial"]
    failed, back = trial["version"], trial.get("from")
    state["trial"] = None
    if not layout.is_complete(back):
        back = state["previous"] if layout.is_complete(state["previous"]) else None
    if back is not None:
        switch_current(layout, back)
        state["current"] = back
    strikes = int(state["strikes"].get(failed, 0)) + 1
    state["strikes"][failed] = strikes
    record(layout, ROLLED_BACK, failed, from_version=back, reason=reason, strikes=strikes)
    if strikes >= MAX_STRIKES and failed not in state["refused"]:
        state["refused"].append(failed)
        record(layout, REFUSED, failed, reason="its start failed %d times: never tried again" % strikes,
               strikes=strikes)
        if back is not None:
            remove_version(layout, failed)
    if back is None:
        keep_current_usable(layout, state)


def promote(layout: Layout, state: dict) -> None:
    """The version on trial proved itself: it stays, the one it replaced is kept, older ones go."""
    trial = state["trial"]
    version, came_from = trial["version"], trial.get("from")
    state["trial"] = None
    state["current"] = version
    if came_from != version and layout.is_complete(came_from):
        state["previous"] = came_from
    state["proven"] = sorted(set(state["proven"]) | {version}, key=version_key)[-10:]
    state["strikes"].pop(version, None)
    record(layout, INSTALLED, version, from_version=came_from)
    prune(layout, state)
    install_guard(layout, version)


def prune(layout: Layout, state: dict) -> None:
    """Keep the current version, the previous one and a pending one; remove every other installed one.
    (Half installs are the installer's to clear: one may be under way.)"""
    keep = {state["current"], state["previous"], state["pending"], layout.current_version()}
    for version in layout.complete_versions():
        if version not in keep:
            remove_version(layout, version)
            print("guard: removed version %s" % version, flush=True)


# ------------------------------------------------------------------------------------------ the three steps

def pre_start(layout: Layout, proof: Path, *, clock: Callable[[], float] = time.monotonic) -> int:
    with locked(layout):
        state = load_state(layout)
        keep_current_usable(layout, state)
        trial = state["trial"]
        if trial is not None and trial["version"] != layout.current_version():
            print("guard: the trial of %s is void: current was switched by hand" % trial["version"], flush=True)
            state["trial"] = trial = None
        if trial is not None and trial["started"]:
            roll_back(layout, state, trial.get("outcome") or
                      "it stopped before it proved itself (a crash, a restart or a power cut)")
            trial = None
        pending, state["pending"] = state["pending"], None
        if trial is None and pending is not None:
            if pending in state["refused"] or not layout.is_complete(pending) or pending == layout.current_version():
                print("guard: pending version %s dropped (refused, incomplete or current)" % pending, flush=True)
            else:
                begin_trial(layout, state, pending)
        if state["trial"] is not None:
            state["trial"].update(started=True, nonce=secrets.token_hex(16), outcome=None,
                                  started_at=utc_now(), started_monotonic=clock(), proof=str(proof))
            print("guard: %s on trial" % state["trial"]["version"], flush=True)
        state["current"] = layout.current_version()
        save_state(layout, state)
    return 0


def read_proof(proof: Path, trial: Mapping) -> dict | None:
    """The app's proof for this trial (its version and nonce), or None."""
    found = read_json(proof)
    if isinstance(found, dict) and found.get("version") == trial["version"] and found.get("nonce") == trial["nonce"]:
        return found
    return None


def post_start(layout: Layout, proof: Path, *, deadline_s: float = TRIAL_DEADLINE_S,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> int:
    """0: no trial, or the version on trial proved itself; 1: it did not (systemd restarts, pre-start rolls back)."""
    while True:
        with locked(layout):
            state = load_state(layout)
            trial = state["trial"]
            if trial is None or not trial["started"] or trial["version"] != layout.current_version():
                return 0
            found = read_proof(proof, trial)
            if found is not None and found.get("ok") is True:
                promote(layout, state)
                save_state(layout, state)
                return 0
            if found is not None:
                failed = [str(name) for name in found.get("failed") or []][:10]
                trial["outcome"] = "its self-test failed: %s" % (", ".join(failed) or "no reason given")
            elif clock() - float(trial.get("started_monotonic", 0.0)) >= deadline_s:
                trial["outcome"] = "it did not reach the attract screen and pass its self-test within %d s" % deadline_s
            if trial["outcome"]:
                save_state(layout, state)
                print("guard: %s failed its trial: %s" % (trial["version"], trial["outcome"]), flush=True)
                return 1
        sleep(POLL_S)


def stopped(layout: Layout, environ: Mapping[str, str]) -> int:
    """Why a trial's start ended, in words, for the record; pre-start decides."""
    with locked(layout):
        state = load_state(layout)
        trial = state["trial"]
        if trial is None or not trial["started"] or trial.get("outcome"):
            return 0
        result = environ.get("SERVICE_RESULT", "")
        code, status = environ.get("EXIT_CODE", ""), environ.get("EXIT_STATUS", "")
        said = {"timeout": "it never reported ready (systemd's start timeout)",
                "watchdog": "its screen stopped answering (watchdog)",
                "core-dump": "it crashed (core dump, signal %s)" % status,
                "signal": "it was killed by signal %s" % status,
                "exit-code": "it exited with status %s before it proved itself" % status,
                "start-limit-hit": "systemd's start limit was hit"}.get(result)
        trial["outcome"] = said or "it stopped before it proved itself (%s %s %s)" % (result or "-", code, status)
        save_state(layout, state)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="guard.py", description="The kiosk's start guard (see the docstring).")
    parser.add_argument("step", choices=("pre-start", "post-start", "stopped"))
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--proof", type=Path, default=PROOF, help="where the app writes its proof")
    parser.add_argument("--deadline-s", type=float, default=TRIAL_DEADLINE_S,
                        help="from the trial's start to its proof (default %(default)s)")
    args = parser.parse_args(argv)
    layout = Layout(args.root)
    try:
        if args.step == "pre-start":
            return pre_start(layout, args.proof)
        if args.step == "post-start":
            return post_start(layout, args.proof, deadline_s=args.deadline_s)
        return stopped(layout, os.environ)
    except Exception:
        traceback.print_exc()
        # Never keep the kiosk from starting; a trial that cannot be judged is not proven.
        return 1 if args.step == "post-start" and load_state(layout)["trial"] is not None else 0


if __name__ == "__main__":
    sys.exit(main())
