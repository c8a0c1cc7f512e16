"""Install a release bundle beside the running version, and leave the switch to the guard.

    kiosk update install BUNDLE            (a technician, as root; or the background updater)
    python3 -m kiosk.updates.install [--root /opt/kiosk] BUNDLE   (systemd/install.sh, the first version)

Given a bundle that was verified already (TUF's download, or a technician's file), in order:

1. its manifest read (kiosk/updates/bundle.py): built for this machine's platform and for the
   Python that will run it; a version that failed its start MAX_STRIKES times, or the running one,
   is refused;
2. the disk checked: the wheels, what they unpack to, their byte code and a fresh virtual
   environment, plus `reserve` bytes left free for the kiosk's state, must fit, or nothing is written;
3. the wheels unpacked into versions/<V>/ (each checked against its SHA-256 as it is written), a
   virtual environment made there with the system's Python (`--system-site-packages`, so that
   Debian's python3-pyscard, which has no wheel for the Pi, is seen), and exactly the bundle's
   wheels installed into it with pip, from those files only (`--no-index --no-deps
   --ignore-installed`, no pip configuration read); then pip is asked to resolve the project from
   the bundle alone (`--dry-run --no-index --find-links`): nothing may be left to install, so the
   version's requirements are met by its wheels and the listed system packages, and nothing else;
4. the version's guard.py kept beside it, the wheels deleted, the disk synced, and only then
   versions/<V>/manifest.json written: the mark of a complete install. A cut anywhere before it
   leaves a half install that the next run removes; the running version is never touched;
5. the first version ever becomes `current` at once (install.sh, on a new device); any later one
   is marked pending, and the running kiosk restarts into it between sessions, where the guard
   (kiosk/updates/guard.py) puts it on trial and rolls it back by itself if it fails. The running
   version's own bundle changes nothing.

The virtual environments have no pip of their own (a kiosk installs nothing at run time, and each
is 10 MB and 3 s the lighter): the system's pip (Debian's python3-pip) installs into them
(`pip --python`). Standard library only: install.sh runs this with the system's Python before
any version exists.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from kiosk.updates import bundle as bundles
from kiosk.updates import guard

ROOT = guard.ROOT
PYTHON = "/usr/bin/python3"          # the device's own: Debian's python3-pyscard is installed for it
MB = 1024 * 1024
RESERVE_BYTES = 256 * MB             # left free after an install (outbox.disk_alert_mb's default)
VENV_BYTES = 24 * MB                 # a fresh virtual environment with its pip
BYTECODE_SHARE = 0.35                # .pyc files compiled at install, against what the wheels unpack to
GUARD_IN_WHEEL = "kiosk/updates/guard.py"
WHEELS = ".wheels"                   # in a version's folder while it is installed
PIP_TIMEOUT_S = 1800                 # a Raspberry Pi's SD card is slow


class InstallError(Exception):
    """The install did not happen; the running version is as it was."""


class InstallRefused(InstallError):
    """A bundle this kiosk does not take: another platform, a version refused for good, the running one."""


class NotEnoughSpace(InstallError):
    def __init__(self, needed: int, reserve: int, free: int) -> None:
        super().__init__("not enough disk space: %d MB needed and %d MB to keep free, %d MB free"
                         % (needed // MB, reserve // MB, free // MB))
        self.needed, self.reserve, self.free = needed, reserve, free


@dataclass(frozen=True)
class Installed:
    version: str
    outcome: str          # "activated": the first version, current now; "pending": the kiosk switches
                          # between sessions; "current": it runs already
    seconds: float

    def line(self) -> str:
        if self.outcome == "current":
            return "%s is the running version already: nothing to do" % self.version
        if self.outcome == "activated":
            return "installed %s: the first version, current now (%.1f s)" % (self.version, self.seconds)
        return ("installed %s: the kiosk switches to it between sessions, on trial, and goes back by itself "
                "if it fails (%.1f s)" % (self.version, self.seconds))


def disk_free(path: Path) -> int:
    """Bytes free for an unprivileged writer (root's reserved blocks are not counted on)."""
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def refusal(version: str, root: Path = ROOT) -> str | None:
    """Why this kiosk would refuse `version` (before anyone downloads it), or None."""
    layout = guard.Layout(root)
    state = guard.load_state(layout)
    if version in state["refused"]:
        return "version %s failed its start %d times: it is never tried again" % (version, guard.MAX_STRIKES)
    if version == layout.current_version():
        return "version %s is the running version" % version
    return None


def status(root: Path = ROOT) -> dict:
    """What is installed: current, previous, pending, the trial, proven, strikes, refused, and the
    versions present."""
    layout = guard.Layout(root)
    state = guard.load_state(layout)
    state["current"] = layout.current_version()
    state["installed"] = layout.complete_versions()
    return state


def events(root: Path = ROOT) -> list[dict]:
    """The update record central is told (update-events.json: staged, switched, installed, rolled_back,
    refused, with version, from_version, reason, strikes), oldest first; [] when there is none."""
    found = guard.read_json(guard.Layout(root).events_path)
    return [event for event in found if isinstance(event, dict)] if isinstance(found, list) else []


def needed_bytes(manifest: bundles.Manifest) -> int:
    return manifest.size + int(manifest.installed_size * (1 + BYTECODE_SHARE)) + VENV_BYTES


def install(bundle: Path, root: Path = ROOT, *, python: str = PYTHON, reserve_bytes: int = RESERVE_BYTES,
            free_bytes: Callable[[Path], int] = disk_free, say: Callable[[str], None] = print) -> Installed:
    """Install the bundle at `bundle` under `root` (see the module's docstring). InstallError (or
    one of its kinds) when it did not; the running version is untouched either way."""
    began = time.monotonic()
    layout = guard.Layout(root)
    try:
        archive, manifest = bundles.open_bundle(bundle)
    except bundles.BundleError as exc:
        raise InstallRefused(str(exc)) from None
    with archive:
        version = manifest.version
        if manifest.platform != bundles.this_platform():
            raise InstallRefused("the bundle is built for %s; this machine is %s"
                                 % (manifest.platform, bundles.this_platform()))
        python_version = _python_version(python)
        if python_version != manifest.python:
            raise InstallRefused("the bundle is built for Python %s; %s is Python %s"
                                 % (manifest.python, python, python_version))
        layout.versions.mkdir(parents=True, exist_ok=True)
        with _install_lock(layout):
            if version == layout.current_version():
                return Installed(version, "current", time.monotonic() - began)
            reason = refusal(version, root)
            if reason is not None:
                raise InstallRefused(reason)
            _clear_half_installs(layout, say)
            if not layout.is_complete(version):
                needed, free = needed_bytes(manifest), free_bytes(root)
                if needed + reserve_bytes > free:
                    raise NotEnoughSpace(needed, reserve_bytes, free)
                try:
                    _unpack_and_install(archive, manifest, layout, python, say)
                except BaseException:
                    guard.remove_version(layout, version)       # a cut (SIGKILL) leaves it to the next run
                    raise
            else:
                say("install: %s is installed already" % version)
            outcome = _take_it(layout, version)
    return Installed(version, outcome, time.monotonic() - began)


def _unpack_and_install(archive, manifest: bundles.Manifest, layout: guard.Layout, python: str,
                        say: Callable[[str], None]) -> None:
    version = manifest.version
    folder = layout.version_dir(version)
    folder.mkdir()
    wheels = folder / WHEELS
    wheels.mkdir()
    count = len(manifest.files)
    unpacked = [0]

    def unpacked_one(entry: bundles.FileEntry) -> None:
        unpacked[0] += 1
        say("install: unpacked %s (%d/%d)" % (entry.path, unpacked[0], count))
    try:
        files = bundles.extract(archive, manifest, wheels, on_file=unpacked_one)
    except bundles.BundleError as exc:
        raise InstallRefused(str(exc)) from None
    venv = folder / "venv"
    _run([python, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], "making the virtual environment")
    say("install: made %s" % venv)
    pip = [python, "-m", "pip", "--python", str(venv / "bin" / "python")]
    _run(pip + ["install", "--no-index", "--no-deps", "--ignore-installed", "--no-cache-dir",
                "--no-warn-script-location", "--quiet", *map(str, files)], "installing the wheels")
    say("install: installed %d wheels" % count)
    _check_resolution(pip, wheels, manifest)
    say("install: pip resolves %s==%s from the bundle alone%s" % (
        bundles.NAME, version, "".join(", %s from the system" % p.get("name") for p in manifest.system_packages)))
    with zipfile.ZipFile(wheels / Path(manifest.project_wheel).name) as project:
        (folder / "guard.py").write_bytes(project.read(GUARD_IN_WHEEL))
    shutil.rmtree(wheels)
    os.sync()
    guard.write_json(folder / bundles.MANIFEST, dict(manifest.raw, installed_at=guard.utc_now()))
    say("install: %s complete in %s" % (version, folder))


def _check_resolution(pip: list[str], wheels: Path, manifest: bundles.Manifest) -> None:
    """pip, from the bundle's files alone, finds the project and every requirement met: nothing to install."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        done = _run(pip + ["install", "--dry-run", "--no-index", "--find-links", str(wheels), "--quiet",
                           "--report", str(report), "%s==%s" % (bundles.NAME, manifest.version)],
                    "resolving the project from the bundle", check=False)
        if done.returncode != 0:
            provided = ", ".join("%s (Debian's %s)" % (p.get("name"), p.get("debian")) for p in manifest.system_packages)
            raise InstallError("pip cannot resolve %s==%s from the bundle%s: %s" % (
                bundles.NAME, manifest.version, "; the system must provide " + provided if provided else "",
                _tail(done)))
        left = [item.get("metadata", {}).get("name") for item in json.loads(report.read_text()).get("install", [])]
    if left:
        raise InstallError("the installed version still lacks %s" % ", ".join(map(str, left)))


def _take_it(layout: guard.Layout, version: str) -> str:
    """The first version becomes current; any later one is pending, for the guard to switch to."""
    with guard.locked(layout):
        state = guard.load_state(layout)
        running = layout.current_version()
        if running is None or not layout.is_complete(running):
            guard.switch_current(layout, version)
            state.update(current=version, pending=None, trial=None)
            state["proven"] = sorted(set(state["proven"]) | {version}, key=guard.version_key)
            guard.install_guard(layout, version)
            guard.save_state(layout, state)
            guard.record(layout, guard.INSTALLED, version, reason="the first version on this kiosk")
            return "activated"
        state["pending"] = version
        guard.save_state(layout, state)
        if not layout.guard_path.is_file():
            guard.install_guard(layout, running)
        guard.record(layout, guard.STAGED, version, from_version=running)
        return "pending"


def _clear_half_installs(layout: guard.Layout, say: Callable[[str], None]) -> None:
    """A version folder without its manifest is what a cut left: it goes (never a complete one)."""
    for folder in sorted(layout.versions.iterdir()):
        if folder.is_dir() and guard.is_version(folder.name) and not (folder / bundles.MANIFEST).exists():
            shutil.rmtree(folder)
            say("install: removed a half install of %s" % folder.name)


@contextlib.contextmanager
def _install_lock(layout: guard.Layout) -> Iterator[None]:
    with open(layout.root / ".install.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InstallError("another install is under way") from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _environment() -> dict[str, str]:
    """This process's environment without what would steer Python or pip elsewhere (PYTHONPATH, a
    pip.conf with Raspberry Pi OS's piwheels index, PIP_FIND_LINKS, ...)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PIP_", "PYTHON")) and key != "VIRTUAL_ENV"}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def _run(command: list[str], what: str, *, check: bool = True) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(command, env=_environment(), capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError("%s failed: %s" % (what, exc)) from None
    if check and done.returncode != 0:
        raise InstallError("%s failed (exit %d): %s" % (what, done.returncode, _tail(done)))
    return done


def _tail(done: subprocess.CompletedProcess) -> str:
    return " ".join((done.stdout + done.stderr).split())[-1500:]


def _python_version(python: str) -> str:
    done = _run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], "asking %s its version" % python)
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiosk update install", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path, metavar="BUNDLE", help="kiosk-<version>-<platform>.tar, verified")
    parser.add_argument("--root", type=Path, default=ROOT, help="where versions live (default %(default)s)")
    parser.add_argument("--python", default=PYTHON, help="the Python the version runs on (default %(default)s)")
    parser.add_argument("--reserve-mb", type=int, default=RESERVE_BYTES // MB,
                        help="disk space to leave free after the install (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        installed = install(args.bundle, args.root, python=args.python, reserve_bytes=args.reserve_mb * MB,
                            say=lambda line: print(line, flush=True))
    except InstallError as exc:
        print("kiosk update install: %s" % exc, file=sys.stderr)
        return 1
    print(installed.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
