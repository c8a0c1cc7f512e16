"""Release bundles built from the checkout by release/build.py, once per test session, and a device
root with them installed by the real installer, restored for each test.

`host_bundles()` builds, for this machine (`--platform host`), the checkout as versions 0.1.0,
0.2.0 and 0.3.0, and two broken releases made from it: 0.9.1, whose entry point cannot import
(a dependency the release forgot), and 0.9.2, which never tells systemd it is up (its
screens/watchdog.py sends nothing). The dependencies are downloaded once and shared.

`installed_root()` installs them all with kiosk/updates/install.py into one root, 0.1.0 first (it
becomes current), and keeps a hard-linked copy; `fresh_root()` lays that copy back at the same
path before each test (a virtual environment cannot move: its scripts name its path) with only
0.1.0 in it, and `bring()` puts another installed version back beside it, in a second instead
of ten of pip. Nothing here passes or fails a test: the tests do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kiosk.updates import guard
from kiosk.updates import install as installer
from release import build
from tests.test_packaging import UNREACHABLE

REPO = Path(__file__).resolve().parents[1]
GOOD = ("0.1.0", "0.2.0", "0.3.0")
CANNOT_IMPORT, NEVER_READY = "0.9.1", "0.9.2"

# What makes each broken release broken, in its copy of the checkout: (file, text, where).
BREAKAGES = {
    CANNOT_IMPORT: ("kiosk/cli.py", "import kiosk_release_forgot_this   # a dependency left out of the release\n",
                    "after_future"),
    NEVER_READY: ("screens/watchdog.py", "\n\ndef notify(message, environ=os.environ):   # this release never "
                  "tells systemd anything\n    return False\n", "end"),
}


@dataclass
class Bundles:
    paths: dict[str, Path]
    rpi: Path | None = None
    figures: dict[str, float] = field(default_factory=dict)


_built: dict[str, object] = {}


def _skip_if_unreachable(exc: Exception) -> None:
    text = str(exc).lower()
    if any(marker.lower() in text for marker in UNREACHABLE):
        pytest.skip("the package index cannot be reached, so the release cannot be built:\n%s" % str(exc)[-1500:])


def host_bundles(base: Path) -> Bundles:
    """The host bundles, built once in `base` (the session's temporary folder)."""
    if "host" in _built:
        return _built["host"]
    work = base / "release"
    began = time.monotonic()
    goal = build.target("host")
    def project(version: str) -> Path:
        source = REPO if version not in BREAKAGES else _broken_copy(work / ("source-" + version), version)
        return build.project_wheel(work / ("project-" + version), source=source, version=version,
                                   say=lambda _line: None)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:           # two builds at once: pip waits on the network
            versions = GOOD + (CANNOT_IMPORT, NEVER_READY)
            wheels = dict(zip(versions, pool.map(project, versions)))
        dependencies = build.download_dependencies(goal, wheels["0.1.0"], work / "wheels", say=lambda _line: None)
        paths = {version: build.assemble(goal, wheel, dependencies, work / "dist", say=lambda _line: None)
                 for version, wheel in wheels.items()}
    except build.BuildError as exc:
        _skip_if_unreachable(exc)
        raise
    bundles = Bundles(paths, figures={"build_s": time.monotonic() - began})
    _built["host"] = bundles
    return bundles


def rpi_bundle(base: Path) -> Path:
    """The Raspberry Pi's bundle of the checkout, built once."""
    if "rpi" not in _built:
        try:
            _built["rpi"] = build.build("rpi", base / "release-rpi" / "dist", work=base / "release-rpi",
                                        say=lambda _line: None).path
        except build.BuildError as exc:
            _skip_if_unreachable(exc)
            raise
    return _built["rpi"]


def _broken_copy(folder: Path, version: str) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(REPO, folder, ignore=build.COPY_IGNORE)
    relative, text, where = BREAKAGES[version]
    path = folder / relative
    source = path.read_text()
    if where == "end":
        source += text
    else:
        marker = "from __future__ import annotations\n"
        source = source.replace(marker, marker + text, 1)
    path.write_text(source)
    return folder


@dataclass
class Device:
    """A device's /opt/kiosk with every host bundle installed, and where its copy is kept."""

    root: Path
    snapshot: Path
    bundles: Bundles


def installed_root(base: Path) -> Device:
    """Every host bundle installed with the real installer under one root (0.1.0 current), once."""
    if "device" in _built:
        return _built["device"]
    bundles = host_bundles(base)
    root = base / "device" / "opt" / "kiosk"
    snapshot = base / "device-snapshot"
    began = time.monotonic()
    first = installer.install(bundles.paths["0.1.0"], root, say=lambda _line: None)
    bundles.figures["install_s"] = first.seconds
    for version in GOOD[1:] + (CANNOT_IMPORT, NEVER_READY):
        installer.install(bundles.paths[version], root, say=lambda _line: None)
    bundles.figures["install_all_s"] = time.monotonic() - began
    layout = guard.Layout(root)
    with guard.locked(layout):
        state = guard.load_state(layout)
        state["pending"] = None                # installed, none of them staged: each test stages its own
        guard.save_state(layout, state)
    guard.write_json(layout.events_path, [])
    subprocess.run(["cp", "-al", str(root), str(snapshot)], check=True)
    device = Device(root, snapshot, bundles)
    _built["device"] = device
    return device


def fresh_root(device: Device) -> Path:
    """The installed root as it was after the first install, at its own path: 0.1.0 current, alone."""
    shutil.rmtree(device.root, ignore_errors=True)
    (device.root / "versions").mkdir(parents=True)
    for path in device.snapshot.iterdir():
        if path.name != "versions":
            subprocess.run(["cp", "-al", str(path), str(device.root / path.name)], check=True)
    bring(device, "0.1.0")
    return device.root


def bring(device: Device, version: str) -> None:
    """An installed version back in the root, as the installer left it (not staged)."""
    if not (device.root / "versions" / version).exists():
        subprocess.run(["cp", "-al", str(device.snapshot / "versions" / version),
                        str(device.root / "versions" / version)], check=True)


def clean_environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("PYTHON", "PIP_")) and key != "VIRTUAL_ENV"}
