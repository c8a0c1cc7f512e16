"""A stand-in for systemd running systemd/kiosk.service, for the demo's update phase and the tests.

`KioskUnit` does what systemd does with kiosk.service: the guard's pre-start (the copy in the root,
with the system's Python), then the current version's process, READY=1 awaited on a notify socket
for at most its start timeout, then the guard's post-start, the guard's `stopped` with
$SERVICE_RESULT, $EXIT_CODE and $EXIT_STATUS, and a new start whenever its caller says (as
Restart=always would; the kiosk exits with 75 to be restarted between sessions).

The version's process is `command(root)`: by default STAND_IN, which stands in for `kiosk run` as
far as an update is concerned: it imports the entry point's module (kiosk.cli) from the version,
attaches the version's own kiosk/updates/trial.py to a runtime whose session shows the attract
screen, and sends READY=1 through the version's own screens/watchdog.py; the self-test's verdict is
the caller's to give ($SELFTEST_FAILS). The demo runs the real `kiosk run` of the version instead
(`kiosk_run`), its output appended to a log file.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kiosk.updates import guard

# kiosk.service's TimeoutStartSec and the guard's time for a trial's proof, shortened: generous for a
# version that works (it is ready and proven within a second or two with the stand-in).
START_TIMEOUT_S = 30.0
TRIAL_DEADLINE_S = 30.0

# `kiosk run` as far as an update is concerned (see the module's docstring).
STAND_IN = r'''
import os, queue, sys, types
import kiosk.cli                                   # the unit's entry point: a release that cannot import stops here
from kiosk.session import Step
from kiosk.updates import trial
from screens import watchdog

posted = queue.Queue()
listeners = []
runtime = types.SimpleNamespace(listen=listeners.append,
                                maintenance=types.SimpleNamespace(exit_app=lambda status: posted.put(lambda: sys.exit(status))))
failed = tuple(name for name in os.environ.get("SELFTEST_FAILS", "").split(",") if name)
trial.Updates(runtime, posted.put, trial.Installation.running(), lambda: failed, watch_s=0.05)
watchdog.notify("READY=1")                         # the first frame is drawn
if not os.environ.get("NEVER_ATTRACT"):            # the reader is there and the catalogue loaded
    for listener in listeners:
        listener(types.SimpleNamespace(step=Step.ATTRACT))
while True:                                        # the UI loop
    posted.get()()
'''


def stand_in(root: Path) -> list[str]:
    return [str(root / "current" / "venv" / "bin" / "python"), "-c", STAND_IN]


def kiosk_run(config: Path) -> Callable[[Path], list[str]]:
    """The real kiosk of the current version, as ExecStart= runs it: /opt/kiosk/current/venv/bin/kiosk run."""
    return lambda root: [str(root / "current" / "venv" / "bin" / "kiosk"), "run", "--config", str(config)]


@dataclass
class Started:
    version: str | None
    result: str                 # "running", or systemd's SERVICE_RESULT for a start that ended
    status: int | None = None


class UnitError(RuntimeError):
    pass


class KioskUnit:
    def __init__(self, root: Path, folder: Path, *, command: Callable[[Path], list[str]] = stand_in,
                 log: Path | None = None, proof: Path | None = None) -> None:
        """`folder` holds the notify socket (and the proof, unless `proof` names it); `log`: the version's
        output is appended there (else kept in memory, read when it ends: `output`)."""
        self.root, self.folder = root, folder
        self.proof = proof or folder / "state" / "update-proof.json"
        self.proof.parent.mkdir(parents=True, exist_ok=True)
        self.command = command
        self.log = log
        self.main: subprocess.Popen | None = None
        self.output = ""
        self.log_start = 0                # where the running version's output starts in `log`
        self._socket: socket.socket | None = None
        self.start_timeout_s, self.deadline_s = START_TIMEOUT_S, TRIAL_DEADLINE_S

    def guard(self, step: str, **environ: str) -> subprocess.CompletedProcess:
        return subprocess.run(["/usr/bin/python3", "-I", str(self.root / "guard.py"), step, "--root", str(self.root),
                               "--proof", str(self.proof), "--deadline-s", str(self.deadline_s)],
                              env=dict(clean_environment(), **environ), capture_output=True,
                              text=True, timeout=self.deadline_s + 30)

    def start(self, **environment: str) -> Started:
        """One start: pre-start, the version, READY=1 or its end, post-start; `stopped` if it ended."""
        pre = self.guard("pre-start")
        if pre.returncode != 0:
            raise UnitError("the guard's pre-start failed: %s" % (pre.stdout + pre.stderr))
        version = guard.Layout(self.root).current_version()
        address = str(self.folder / "notify")
        if os.path.exists(address):
            os.unlink(address)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(address)
        env = dict(clean_environment(), NOTIFY_SOCKET=address, **environment)
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            with self.log.open("ab") as sink:
                self.log_start = sink.tell()
                self.main = subprocess.Popen(self.command(self.root), env=env, cwd=self.folder, stdout=sink,
                                             stderr=subprocess.STDOUT)
        else:
            self.main = subprocess.Popen(self.command(self.root), env=env, cwd=self.folder, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT)
        main = self.main
        threading.Thread(target=lambda: (main.wait(), _send(address, b"EXITED")), daemon=True).start()
        self._socket.settimeout(self.start_timeout_s)
        while True:                                # READY=1, or the end; other notices (STATUS=...) pass
            try:
                said = self._socket.recv(4096)
            except TimeoutError:
                main.kill()
                main.wait()
                return self._ended(version, "timeout")
            if said == b"EXITED":
                return self._ended(version, "exit-code")
            if b"READY=1" in said.split(b"\n"):
                break
        self._socket.settimeout(None)
        post = self.guard("post-start")
        if post.returncode != 0:                  # the start failed: systemd stops the service
            main.terminate()
            main.wait()
            return self._ended(version, "exit-code", post.returncode)
        return Started(version, "running")

    def wait_for_exit(self, timeout_s: float | None = None) -> Started:
        """The running version ends by itself (a restart between sessions): how it ended."""
        version = guard.Layout(self.root).current_version()
        self._socket.settimeout(timeout_s)
        while True:
            said = self._socket.recv(4096)       # WATCHDOG=1 and the like until it ends
            if said == b"EXITED":
                break
        return self._ended(version, "exit-code")

    def stop(self) -> None:
        if self.main is not None and self.main.poll() is None:
            self.main.terminate()
            self.main.wait()
            self._ended(None, "success")

    def _ended(self, version: str | None, result: str, status: int | None = None) -> Started:
        main = self.main
        status = main.returncode if status is None else status
        code = "killed" if main.returncode < 0 else "exited"
        self.guard("stopped", SERVICE_RESULT=result, EXIT_CODE=code,
                   EXIT_STATUS=str(signal.Signals(-main.returncode).name[3:] if main.returncode < 0 else status))
        if self.log is None:
            self.output = main.stdout.read().decode(errors="replace")
        else:
            with self.log.open("rb") as source:
                source.seek(self.log_start)
                self.output = source.read().decode(errors="replace")
        self._socket.close()
        return Started(version, result, status)


def _send(address: str, data: bytes) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(data, address)
        except OSError:
            pass


def clean_environment() -> dict[str, str]:
    """This environment without what would steer the version's Python elsewhere (as systemd's would be)."""
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("PYTHON", "PIP_")) and key != "VIRTUAL_ENV"}
