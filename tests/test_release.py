"""`make release`: the Raspberry Pi's bundle, built on this machine for aarch64 and Python 3.11
(release/build.py, its format kiosk/updates/bundle.py), and what a release says it is."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from kiosk.updates import bundle as bundles
from release import build
from tests import release_bundles

MB = 1024 * 1024


@pytest.fixture(scope="module")
def rpi(tmp_path_factory) -> Path:
    return release_bundles.rpi_bundle(tmp_path_factory.getbasetemp())


def distribution(path: str) -> str:
    return Path(path).name.split("-")[0].lower().replace("_", "-")


def test_the_pi_bundle_is_for_aarch64_and_python_311_and_lists_every_file(rpi):
    archive, manifest = bundles.open_bundle(rpi)
    with archive:
        names = archive.getnames()
    assert rpi.name == "kiosk-%s-linux_aarch64.tar" % manifest.version
    assert (manifest.platform, manifest.python, manifest.raw["os"]) == (
        "linux_aarch64", "3.11", "Raspberry Pi OS Bookworm (Debian 12)")
    assert {"manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_36_aarch64"} <= set(
        manifest.raw["wheel_platforms"])
    assert names[0] == "manifest.json" and sorted(names[1:]) == sorted(entry.path for entry in manifest.files)
    assert manifest.entry_points == {"kiosk": "kiosk.cli:main"}

    platforms = {entry.path: entry.path[:-len(".whl")].split("-")[-1] for entry in manifest.files}
    foreign = [path for path, tag in platforms.items() if tag != "any" and "aarch64" not in tag]
    assert foreign == []
    assert all(re.search(r"-(py3|py2\.py3|cp311)-", path) for path in platforms)
    present = {distribution(entry.path) for entry in manifest.files}
    assert {"kivy", "cryptography", "pillow", "lgpio", "citizen-kiosk"} <= present
    assert "pyscard" not in present                       # no wheel for the Pi: Debian's
    assert manifest.system_packages == ({"name": "pyscard", "version": "2.0.5", "debian": "python3-pyscard"},)
    print("bundle %s: %.1f MB, %d wheels, %.0f MB unpacked" % (
        rpi.name, rpi.stat().st_size / MB, len(manifest.files), manifest.installed_size / MB))


def test_every_wheel_of_the_pi_bundle_is_the_one_its_manifest_hashes(rpi, tmp_path):
    archive, manifest = bundles.open_bundle(rpi)
    with archive:
        written = bundles.extract(archive, manifest, tmp_path)
    assert sorted(path.name for path in written) == sorted(Path(entry.path).name for entry in manifest.files)


def test_pip_resolves_the_pi_bundle_offline_to_itself_and_debians_pyscard(rpi, tmp_path):
    archive, manifest = bundles.open_bundle(rpi)
    with archive:
        wheels = bundles.extract(archive, manifest, tmp_path)
    build.check_resolution(build.target("rpi"), manifest.version, wheels)     # raises unless exactly these

    without = [path for path in wheels if distribution(path.name) != "cryptography"]
    with pytest.raises(build.BuildError, match="No matching distribution found for cryptography"):
        build.check_resolution(build.target("rpi"), manifest.version, without)


def test_a_release_carries_the_version_it_is_built_as(tmp_path_factory):
    bundle = release_bundles.host_bundles(tmp_path_factory.getbasetemp()).paths["0.2.0"]
    archive, manifest = bundles.open_bundle(bundle)
    with archive:
        project = archive.extractfile(manifest.project_wheel).read()
    assert bundle.name == "kiosk-0.2.0-%s.tar" % bundles.this_platform() and manifest.version == "0.2.0"
    (tmp_path_factory.getbasetemp() / "project.whl").write_bytes(project)
    with zipfile.ZipFile(tmp_path_factory.getbasetemp() / "project.whl") as wheel:
        metadata = wheel.read("citizen_kiosk-0.2.0.dist-info/METADATA").decode()
        assert "kiosk/updates/guard.py" in wheel.namelist()
    assert "\nVersion: 0.2.0\n" in metadata
    assert "Requires-Dist: pyscard<3,>=2.0.5" in metadata      # Debian bookworm's python3-pyscard meets it
