"""kiosk/updates/install.py with real bundles of the checkout (tests/release_bundles.py): a version
beside the running one, with its own virtual environment, Debian's pyscard, and nothing left behind
by a cut or a refusal."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tarfile
from pathlib import Path

import pytest

from kiosk.updates import bundle as bundles
from kiosk.updates import guard
from kiosk.updates import install as installer
from tests import release_bundles

MB = 1024 * 1024


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    return release_bundles.installed_root(tmp_path_factory.getbasetemp())


@pytest.fixture
def root(device):
    return release_bundles.fresh_root(device)


def run(command: list[str], **options) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=release_bundles.clean_environment(), capture_output=True, text=True,
                          timeout=120, **options)


def folder_bytes(folder: Path) -> int:
    return sum(path.lstat().st_size for path in folder.rglob("*"))


# ------------------------------------------------------------------------------------------ the first version


def test_the_first_version_becomes_current_with_a_venv_of_its_own(device, root, tmp_path):
    layout = guard.Layout(root)
    assert os.readlink(root / "current") == "versions/0.1.0"
    assert (root / "guard.py").read_bytes() == (root / "versions/0.1.0/guard.py").read_bytes()
    assert json.loads((root / "versions/0.1.0/manifest.json").read_text())["version"] == "0.1.0"
    assert guard.load_state(layout)["proven"] == ["0.1.0"]
    venv = root / "versions/0.1.0/venv"
    assert not list(venv.glob("lib/python3*/site-packages/pip"))          # installs nothing at run time

    shown = run([str(root / "current/venv/bin/kiosk"), "--help"], cwd=tmp_path)      # outside the checkout
    assert shown.returncode == 0 and "update" in shown.stdout
    said = run([str(venv / "bin/python"), "-c", "import importlib.metadata as m, smartcard, kiosk.cli; "
                "print(m.version('citizen-kiosk'), m.version('pyscard'), smartcard.__file__, kiosk.cli.__file__)"],
               cwd=tmp_path)
    version, pyscard, smartcard, cli = said.stdout.split()
    assert (version, pyscard) == ("0.1.0", "2.0.5")                      # what TUF's running_version() reads
    assert smartcard.startswith("/usr/lib/python3/dist-packages/")      # Debian's python3-pyscard
    assert cli.startswith(str(root / "versions/0.1.0/venv/"))


def test_pip_finds_every_requirement_met_offline_pyscard_from_the_system(device, root, tmp_path):
    """No index and nothing to find: pip has nothing left to fetch, pyscard counted as there."""
    empty = tmp_path / "nothing"
    empty.mkdir()
    report = tmp_path / "report.json"
    resolved = run(["/usr/bin/python3", "-m", "pip", "--python", str(root / "current/venv/bin/python"), "install",
                    "--dry-run", "--no-index", "--find-links", str(empty), "--report", str(report),
                    "citizen-kiosk==0.1.0"], cwd=tmp_path)
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    assert json.loads(report.read_text())["install"] == []
    assert "pyscard" in resolved.stdout and "/usr/lib/python3/dist-packages" in resolved.stdout


def test_the_space_an_install_takes_is_within_what_was_asked_for(device, root):
    _archive, manifest = bundles.open_bundle(device.bundles.paths["0.1.0"])
    _archive.close()
    taken = folder_bytes(root / "versions/0.1.0") + manifest.size       # the wheels are there until the end
    assert taken <= installer.needed_bytes(manifest)
    print("version 0.1.0: %d MB installed, %d MB asked for (with the wheels)"
          % (folder_bytes(root / "versions/0.1.0") // MB, installer.needed_bytes(manifest) // MB))


# ------------------------------------------------------------------------------------------ refusals


def test_an_install_that_does_not_fit_is_refused_before_anything_is_written(device, root):
    before = sorted(p.name for p in (root / "versions").iterdir()), (root / "update-state.json").read_bytes()
    with pytest.raises(installer.NotEnoughSpace, match=r"MB needed and 256 MB to keep free, 300 MB free"):
        installer.install(device.bundles.paths["0.2.0"], root, free_bytes=lambda _path: 300 * MB)
    assert (sorted(p.name for p in (root / "versions").iterdir()), (root / "update-state.json").read_bytes()) == before


def test_a_bundle_whose_wheel_differs_from_its_manifest_is_refused(device, root, tmp_path):
    forged = tmp_path / "kiosk-0.2.0-forged.tar"
    shutil.copy(device.bundles.paths["0.2.0"], forged)
    with tarfile.open(forged) as archive:
        member = next(m for m in archive.getmembers() if m.name.startswith("wheels/citizen_kiosk"))
    with open(forged, "r+b") as file:                # one byte of the project's wheel, changed in place
        file.seek(member.offset_data + member.size // 2)
        byte = file.read(1)
        file.seek(-1, os.SEEK_CUR)
        file.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(installer.InstallRefused, match="differs from the manifest"):
        installer.install(forged, root)
    assert not (root / "versions/0.2.0").exists() and guard.load_state(guard.Layout(root))["pending"] is None


def test_a_bundle_for_the_raspberry_pi_is_refused_here(tmp_path_factory, root):
    rpi = release_bundles.rpi_bundle(tmp_path_factory.getbasetemp())
    with pytest.raises(installer.InstallRefused, match="built for linux_aarch64; this machine is %s" % bundles.this_platform()):
        installer.install(rpi, root)


def test_the_running_versions_bundle_changes_nothing(device, root):
    before = (root / "update-state.json").read_bytes()
    assert installer.install(device.bundles.paths["0.1.0"], root).outcome == "current"
    assert (root / "update-state.json").read_bytes() == before


# ------------------------------------------------------------------------------------------ a cut


def test_a_cut_during_unpack_leaves_the_running_version_intact(device, root, tmp_path):
    command = [str(root / "current/venv/bin/kiosk"), "update", "install", str(device.bundles.paths["0.2.0"]),
               "--root", str(root)]
    technician = subprocess.Popen(command, env=release_bundles.clean_environment(), cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in technician.stdout:
        if line.startswith("install: unpacked") and "(10/" in line:
            technician.send_signal(signal.SIGKILL)           # the power goes, mid-unpack
            break
    technician.wait()
    assert technician.returncode == -signal.SIGKILL

    layout = guard.Layout(root)
    assert layout.current_version() == "0.1.0" and (root / "versions/0.2.0").is_dir()
    assert "0.2.0" not in layout.complete_versions()
    assert guard.load_state(layout)["pending"] is None
    assert run([str(root / "current/venv/bin/kiosk"), "--help"], cwd=tmp_path).returncode == 0
    assert run(["/usr/bin/python3", "-I", str(root / "guard.py"), "pre-start", "--root", str(root),
                "--proof", str(tmp_path / "proof.json")]).returncode == 0
    assert layout.current_version() == "0.1.0" and guard.load_state(layout)["trial"] is None

    said: list[str] = []
    assert installer.install(device.bundles.paths["0.2.0"], root, say=said.append).outcome == "pending"
    assert "install: removed a half install of 0.2.0" in said
    assert "0.2.0" in layout.complete_versions() and layout.current_version() == "0.1.0"
