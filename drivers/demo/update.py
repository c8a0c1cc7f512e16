"""The demo's update phase (`make demo`, after the journeys; `--no-update` skips it).

The whole update path on the demo's stack, with the real programs: a device root (OUT/opt-kiosk, a
device's /opt/kiosk) gets the checkout built as host bundle 0.1.0 (release/build.py) and installed
by kiosk/updates/install.py; the kiosk runs from it, the real `kiosk run` of its current version on
the virtual screen, under a stand-in for systemd (drivers/demo/unit.py: the start guard around every
start, restarted on exit 75). Central serves a release repository (`kiosk-central release keys
init`). Then:

1. 0.2.0 is built with the repository's root.json in it, published (`kiosk-central release
   publish`) and offered to every kiosk (`kiosk-central rollout start 0.2.0 --percent 100`);
   `kiosk update run --root OUT/opt-kiosk` (the updater, as kiosk-update.timer runs it) downloads
   it through TUF and installs it beside 0.1.0; the kiosk, at its attract screen, restarts (exit
   75), the guard switches to 0.2.0 on trial, and 0.2.0 proves itself (attract screen and self-test).
2. 0.3.0, a broken release (its entry point imports a module the release left out: it cannot
   start), is published and offered the same way and installed; the kiosk restarts into it, it
   fails its start, and the guard goes back to 0.2.0 by itself. The next `kiosk update run`
   reports the failure to the rollout, which pauses.

Each step is printed and checked (the phase fails if one does not happen); everything is written to
OUT/update.log, the kiosk's own output to OUT/update-kiosk.log, screenshots to OUT/screens/update/.
The downloaded wheels and pip's cache are kept in .build/demo-release/ for the next run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from drivers.demo.unit import KioskUnit, Started, kiosk_run
from kiosk.updates import guard
from kiosk.updates import install as installer
from kiosk.updates.bundle import this_platform
from release import build

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".build" / "demo-release"
BROKEN = "0.3.0"
START_TIMEOUT_S = 120.0          # the real kiosk on a virtual screen: Kivy's start, then READY=1
TRIAL_DEADLINE_S = 120.0         # attract screen and self-test
RESTART_WAIT_S = 60.0            # the kiosk sees a staged version within trial.WATCH_S and restarts at once


class StepFailed(RuntimeError):
    pass


class UpdateDemo:
    def __init__(self, stack, out: Path, repo: Path, screen) -> None:
        """`screen`: the VirtualScreen the kiosk shows on (kept in a file, for the screenshots)."""
        self.stack, self.out, self.repo, self.screen = stack, out, repo, screen
        self.root = out / "opt-kiosk"
        self.log_path = out / "update.log"
        self.screens = out / "screens" / "update"
        self.began = time.monotonic()
        self.figures: dict[str, float] = {}
        self.config = self._configuration()
        self.unit = KioskUnit(self.root, stack.workdir, command=kiosk_run(self.config),
                              log=out / "update-kiosk.log", proof=stack.state_dir / "update-proof.json")
        self.unit.start_timeout_s, self.unit.deadline_s = START_TIMEOUT_S, TRIAL_DEADLINE_S
        self._environment = dict(DISPLAY=screen.display, SDL_AUDIODRIVER="dummy")

    # ------------------------------------------------------------------ the phase

    def run(self) -> bool:
        try:
            self._run()
        except StepFailed as exc:
            self.say("FAILED: %s" % exc)
            return False
        finally:
            self.unit.stop()
            self.say("the update phase took %.0f s (%s)" % (time.monotonic() - self.began, ", ".join(
                "%s %.0f s" % item for item in self.figures.items())))
        return True

    def _run(self) -> None:
        bundles = self._timed("build_s", self.build_bundles)
        self._timed("first_install_s", lambda: installer.install(bundles["0.1.0"], self.root, say=self._quieter))
        self.check(guard.Layout(self.root).current_version() == "0.1.0", "0.1.0 is installed in %s" % self.root)

        started = self._timed("start_0.1.0_s", lambda: self.unit.start(**self._environment))
        self.check(started == Started("0.1.0", "running"), "the kiosk runs 0.1.0 (%s)" % started)
        self.heartbeat("0.1.0")
        self.at_attract("0.1.0")

        # 0.2.0: published, offered, installed, switched to between sessions, proven.
        self.publish(bundles["0.2.0"], "0.2.0")
        self.check(self.update_run() == 0, "`kiosk update run` installed 0.2.0 beside 0.1.0")
        self.check(installer.status(self.root)["pending"] == "0.2.0", "0.2.0 is staged, 0.1.0 still runs")
        ended = self._timed("restart_seen_s", lambda: self.unit.wait_for_exit(RESTART_WAIT_S))
        self.check((ended.version, ended.status) == ("0.1.0", 75),
                   "the kiosk restarted between sessions (0.1.0 exited with %s)" % ended.status)
        started = self._timed("start_0.2.0_trial_s", lambda: self.unit.start(**self._environment))
        state = installer.status(self.root)
        self.check(started == Started("0.2.0", "running") and "0.2.0" in state["proven"],
                   "0.2.0 started on trial and proved itself (attract screen and self-test): %s" % started)
        self.heartbeat("0.2.0")
        self.at_attract("0.2.0")
        self.kiosk_said("update.proof version=0.2.0 ok=True")

        # 0.3.0: it cannot start; the guard goes back to 0.2.0 by itself.
        self.publish(bundles[BROKEN], BROKEN)
        self.check(self.update_run() == 0, "`kiosk update run` installed the broken %s" % BROKEN)
        ended = self.unit.wait_for_exit(RESTART_WAIT_S)
        self.check((ended.version, ended.status) == ("0.2.0", 75), "the kiosk restarted between sessions")
        failed = self.unit.start(**self._environment)
        self.check(failed.version == BROKEN and failed.result != "running",
                   "%s failed its start (%s, status %s)" % (BROKEN, failed.result, failed.status))
        self.check("kiosk_release_forgot_this" in self.unit.output, "%s could not import its entry point" % BROKEN)
        started = self.unit.start(**self._environment)            # Restart=always: the guard goes back
        self.check(started == Started("0.2.0", "running"), "the guard rolled back to 0.2.0 by itself: %s" % started)
        rolled = [event for event in installer.events(self.root) if event["code"] == guard.ROLLED_BACK]
        self.check(bool(rolled) and rolled[-1]["version"] == BROKEN,
                   "update.rolled_back recorded: %s" % (rolled[-1]["reason"] if rolled else "none"))
        self.heartbeat("0.2.0")
        self.at_attract("rolled-back-0.2.0")
        # The next run of the updater reports the rollback to the rollout before it asks for an offer: the
        # rollout pauses, and nothing is offered, so the broken version is not staged again.
        self.update_run()
        self.check(installer.status(self.root)["pending"] is None, "%s was not staged again" % BROKEN)
        rollouts = self.central("rollout", "list", "--db", self.stack.central_db_url).strip()
        self.say(rollouts)
        line = next((row for row in rollouts.splitlines() if "\t%s\t" % BROKEN in row), "")
        self.check("\tpaused\t" in line and "failed 1" in line, "central's rollout of %s paused on the failure" % BROKEN)
        self.say(self.kiosk_command("update", "status"))

    # ------------------------------------------------------------------ the steps

    def build_bundles(self) -> dict[str, Path]:
        """0.1.0 and 0.2.0 (the checkout) and the broken 0.3.0, for this machine, with the repository's root."""
        os.environ.setdefault("PIP_CACHE_DIR", str(CACHE / "pip-cache"))
        root_json = self.repo / "metadata" / "root.json"
        work = CACHE / "work"
        dist = self.out / "dist"
        shutil.rmtree(dist, ignore_errors=True)
        goal = build.target("host")
        wheels = {}
        for version in ("0.1.0", "0.2.0", BROKEN):
            source = REPO if version != BROKEN else self._broken_copy(work / "source-broken")
            wheels[version] = build.project_wheel(work / ("project-" + version), source=source, version=version,
                                                  trusted_root=root_json, say=lambda _line: None)
        dependencies = build.download_dependencies(goal, wheels["0.1.0"], work / "wheels", say=self.say)
        bundles = {version: build.assemble(goal, wheel, dependencies, dist, say=lambda _line: None)
                   for version, wheel in wheels.items()}
        for version, path in bundles.items():
            self.say("built %s (%.1f MB)%s" % (path.name, path.stat().st_size / 1e6,
                                                " -- broken: cannot start" if version == BROKEN else ""))
        return bundles

    @staticmethod
    def _broken_copy(folder: Path) -> Path:
        """The checkout with an import of a module the release left out, at the top of the entry point."""
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(REPO, folder, ignore=build.COPY_IGNORE)
        cli = folder / "kiosk" / "cli.py"
        marker = "from __future__ import annotations\n"
        cli.write_text(cli.read_text().replace(
            marker, marker + "import kiosk_release_forgot_this   # a dependency left out of the release\n", 1))
        return folder

    def publish(self, bundle: Path, version: str) -> None:
        self.say(self.central("release", "publish", str(bundle), "--version", version, "--repo", str(self.repo)).strip())
        self.say(self.central("rollout", "start", version, "--percent", "100", "--platform", this_platform(),
                              "--db", self.stack.central_db_url, "--repo", str(self.repo)).strip())

    def update_run(self) -> int:
        """`kiosk update run`, as kiosk-update.timer runs it: the current version's updater."""
        done = subprocess.run([str(self.root / "current" / "venv" / "bin" / "kiosk"), "update", "run",
                               "--config", str(self.config), "--root", str(self.root)],
                              capture_output=True, text=True, timeout=600, cwd=self.stack.workdir)
        self.say("$ kiosk update run --root %s  (exit %d)\n%s" % (self.root, done.returncode,
                                                                  (done.stdout + done.stderr).strip()))
        return done.returncode

    def heartbeat(self, version: str, timeout_s: float = 90.0) -> None:
        """Central's view: the kiosk's latest heartbeat names `version`."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.central("devices", "status", "--db", self.stack.central_db_url)
            line = next((row for row in status.splitlines() if row.startswith("demo-kiosk-01")), "")
            if "version %s\t" % version in line or line.endswith("version %s" % version):
                self.say("central: %s" % line)
                return
            if time.monotonic() > deadline:
                raise StepFailed("central's heartbeat does not say %s: %s" % (version, line))
            time.sleep(2)          # central's table, polled: the kiosk's heartbeat comes when it comes

    def at_attract(self, name: str) -> None:
        """The kiosk shows its attract screen (its log says so): a screenshot of it."""
        self.until(lambda: "screen.shown name=attract" in self._since_start(), "the attract screen")
        self.say("the kiosk's log: %s" % " | ".join(
            line.strip() for line in self._since_start().splitlines()
            if "Interpreter at" in line or "screen.shown name=attract" in line))
        self.shot(name)

    def kiosk_said(self, text: str) -> None:
        self.check(text in self._since_start(), "the kiosk's log says %r" % text)

    def _since_start(self) -> str:
        with self.unit.log.open("rb") as source:
            source.seek(self.unit.log_start)
            return source.read().decode(errors="replace")

    def until(self, condition: Callable[[], bool], what: str, timeout_s: float = 90.0) -> None:
        """Poll what another process writes (a log, central's table): nothing here can be waited on."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise StepFailed("%s did not come within %.0f s" % (what, timeout_s))
            time.sleep(1)

    def shot(self, name: str) -> None:
        """A screenshot of the virtual screen."""
        self.say("screenshot %s" % self.screen.screenshot(self.screens / ("%s.png" % name)))

    # ------------------------------------------------------------------ helpers

    def _configuration(self) -> Path:
        """The stack's kiosk configuration with the updater's [updates]: the repository's root, its own folders."""
        state = self.out / "update-state"
        text = self.stack.config_path.read_text(encoding="utf-8")
        text += "\n[updates]\ntrusted_root = %s\nmetadata_dir = %s\ndownload_dir = %s\n" % (
            json.dumps(str(self.repo / "metadata" / "root.json")), json.dumps(str(state / "metadata")),
            json.dumps(str(state / "downloads")))
        path = self.stack.workdir / "kiosk-update.toml"
        path.write_text(text, encoding="utf-8")
        return path

    def central(self, *arguments: str) -> str:
        done = subprocess.run([sys.executable, "-m", "central.cli", *arguments], capture_output=True, text=True,
                              timeout=300, cwd=self.stack.workdir)
        if done.returncode != 0:
            raise StepFailed("kiosk-central %s: %s" % (" ".join(arguments[:2]), (done.stdout + done.stderr)[-2000:]))
        return done.stdout

    def kiosk_command(self, *arguments: str) -> str:
        done = subprocess.run([str(self.root / "current" / "venv" / "bin" / "kiosk"), *arguments, "--root",
                               str(self.root)], capture_output=True, text=True, timeout=120)
        return "$ kiosk %s\n%s" % (" ".join(arguments), (done.stdout + done.stderr).strip())

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            raise StepFailed(what)
        self.say("ok: %s" % what)

    def say(self, line: str) -> None:
        text = "update: %s" % line
        print(text, flush=True)
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write("%s %s\n" % (time.strftime("%H:%M:%S"), text))

    def _quieter(self, line: str) -> None:
        if "unpacked" not in line:
            self.say(line)

    def _timed(self, name: str, step: Callable[[], object]):
        began = time.monotonic()
        try:
            return step()
        finally:
            self.figures[name] = time.monotonic() - began


def make_repository(folder: Path) -> Path:
    """A release repository (`kiosk-central release keys init`), fresh."""
    shutil.rmtree(folder, ignore_errors=True)
    done = subprocess.run([sys.executable, "-m", "central.cli", "release", "keys", "init", str(folder)],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise StepFailed("kiosk-central release keys init: %s" % (done.stdout + done.stderr)[-2000:])
    return folder
