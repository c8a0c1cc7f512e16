"""The release bundle: one file holding everything a kiosk runs, for one platform.

`make release` (release/build.py) writes `dist/kiosk-<version>-<platform>.tar`, an uncompressed tar
(the wheels inside are compressed already) of

    manifest.json               first
    wheels/<file>.whl           the project's own wheel and the wheel of every dependency

and the installer (kiosk/updates/install.py) takes nothing from it that the manifest does not list
with its size and SHA-256. The manifest:

    format            1
    name, version     "citizen-kiosk", "0.2.0" (the project wheel's version: digits and dots)
    platform          "linux_aarch64" ("linux_" + the device's `platform.machine()`)
    python            "3.11" (the interpreter the wheels are for: CPython, `implementation` "cp")
    os                what the platform is ("Raspberry Pi OS Bookworm (Debian 12)")
    wheel_platforms   the wheel platform tags pip was asked for (manylinux..._aarch64)
    project_wheel     "wheels/citizen_kiosk-0.2.0-py3-none-any.whl"
    entry_points      the console scripts, {"kiosk": "kiosk.cli:main"}
    system_packages   what the device's own Debian packages provide instead of a wheel (none has
                      one for the platform): [{"name": "pyscard", "version": "2.0.5",
                      "debian": "python3-pyscard"}]; the version's virtual environment sees them
                      (--system-site-packages)
    files             [{"path", "size", "sha256", "installed_size"}] every wheel; installed_size is
                      what it unpacks to
    built_at          ISO 8601, UTC

Standard library only: the installer runs with the system's Python before any version exists.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform as host_platform
import re
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

FORMAT = 1
MANIFEST = "manifest.json"
NAME = "citizen-kiosk"
_VERSION = re.compile(r"[0-9]+(\.[0-9]+)*")
_WHEEL_PATH = re.compile(r"wheels/[A-Za-z0-9_.+!-]+\.whl")
_PLATFORM = re.compile(r"linux_[a-z0-9_]+")
CHUNK = 1024 * 1024


class BundleError(Exception):
    """A bundle that is not one: unreadable, a file missing, a hash that differs, a stray member."""


def bundle_name(version: str, platform: str) -> str:
    return "kiosk-%s-%s.tar" % (version, platform)


def this_platform() -> str:
    """The platform name of this machine, as bundles are named for it."""
    return "linux_" + host_platform.machine()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def wheel_entry(path: Path) -> dict:
    """A wheel as the manifest lists it."""
    with zipfile.ZipFile(path) as archive:
        installed = sum(info.file_size for info in archive.infolist())
    return {"path": "wheels/" + path.name, "size": path.stat().st_size, "sha256": sha256_of(path),
            "installed_size": installed}


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str
    installed_size: int


@dataclass(frozen=True)
class Manifest:
    version: str
    platform: str
    python: str
    project_wheel: str
    entry_points: dict
    system_packages: tuple[dict, ...]
    files: tuple[FileEntry, ...]
    raw: dict

    @property
    def size(self) -> int:
        return sum(entry.size for entry in self.files)

    @property
    def installed_size(self) -> int:
        return sum(entry.installed_size for entry in self.files)


def parse_manifest(data: bytes) -> Manifest:
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise BundleError("manifest.json is not JSON: %s" % exc) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or raw.get("name") != NAME:
        raise BundleError("manifest.json is not a kiosk bundle's (format %d, name %s)" % (FORMAT, NAME))
    version, platform, python = raw.get("version"), raw.get("platform"), raw.get("python")
    if not (isinstance(version, str) and _VERSION.fullmatch(version)):
        raise BundleError("the manifest's version %r is not digits and dots" % (version,))
    if not (isinstance(platform, str) and _PLATFORM.fullmatch(platform)):
        raise BundleError("the manifest's platform %r is not linux_<machine>" % (platform,))
    if not (isinstance(python, str) and re.fullmatch(r"3\.[0-9]+", python)):
        raise BundleError("the manifest's python %r is not 3.<minor>" % (python,))
    files = []
    for entry in raw.get("files") or []:
        try:
            item = FileEntry(str(entry["path"]), int(entry["size"]), str(entry["sha256"]),
                             int(entry["installed_size"]))
        except (KeyError, TypeError, ValueError):
            raise BundleError("a file entry of the manifest is malformed: %r" % (entry,)) from None
        if not _WHEEL_PATH.fullmatch(item.path) or ".." in item.path or not re.fullmatch(r"[0-9a-f]{64}", item.sha256):
            raise BundleError("the manifest lists a file it may not: %r" % (item.path,))
        files.append(item)
    paths = [entry.path for entry in files]
    if not files or len(set(paths)) != len(paths):
        raise BundleError("the manifest lists no files, or one twice")
    project = raw.get("project_wheel")
    if project not in paths:
        raise BundleError("the manifest's project wheel %r is not among its files" % (project,))
    entry_points = raw.get("entry_points")
    if not isinstance(entry_points, dict) or not entry_points:
        raise BundleError("the manifest names no entry point")
    system = raw.get("system_packages") or []
    if not isinstance(system, list) or not all(isinstance(item, dict) for item in system):
        raise BundleError("the manifest's system_packages is not a list of packages")
    return Manifest(version, platform, python, project, dict(entry_points), tuple(system), tuple(files), raw)


def read_manifest(archive: tarfile.TarFile) -> Manifest:
    try:
        member = archive.getmember(MANIFEST)
    except KeyError:
        raise BundleError("no manifest.json in the bundle") from None
    if not member.isfile() or member.size > 1024 * 1024:
        raise BundleError("manifest.json is not a small regular file")
    handle = archive.extractfile(member)
    if handle is None:
        raise BundleError("manifest.json cannot be read from the bundle")
    return parse_manifest(handle.read())


def open_bundle(path: Path) -> tuple[tarfile.TarFile, Manifest]:
    """The bundle's tar, open, and its manifest. BundleError for anything that is not a bundle."""
    try:
        archive = tarfile.open(path, "r:")
    except (OSError, tarfile.TarError) as exc:
        raise BundleError("%s is not a readable tar: %s" % (path, exc)) from None
    try:
        return archive, read_manifest(archive)
    except BaseException:
        archive.close()
        raise


def extract(archive: tarfile.TarFile, manifest: Manifest, destination: Path,
            on_file: Callable[[FileEntry], None] | None = None) -> list[Path]:
    """Every file the manifest lists, under `destination` (its path's last part only), each checked
    against its size and SHA-256 while it is written; any other member is refused first. Returns
    the files written."""
    listed = {entry.path: entry for entry in manifest.files}
    members = {}
    for member in archive.getmembers():
        if member.name == MANIFEST:
            continue
        if member.name not in listed or not member.isfile():
            raise BundleError("the bundle holds %r, which its manifest does not list" % member.name)
        members[member.name] = member
    missing = sorted(set(listed) - set(members))
    if missing:
        raise BundleError("the bundle lacks %s" % ", ".join(missing))
    written = []
    for path, entry in listed.items():
        target = destination / Path(path).name
        source = archive.extractfile(members[path])
        if source is None:
            raise BundleError("%s cannot be read from the bundle" % path)
        with open(target, "wb") as out:
            size, digest = _copy(source, out)
        if size != entry.size or digest != entry.sha256:
            raise BundleError("%s differs from the manifest (size %d, sha256 %s...)" % (path, size, digest[:12]))
        written.append(target)
        if on_file is not None:
            on_file(entry)
    return written


def _copy(source: BinaryIO | io.BufferedReader, out: BinaryIO) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: source.read(CHUNK), b""):
        digest.update(chunk)
        out.write(chunk)
        size += len(chunk)
    out.flush()
    return size, digest.hexdigest()


def write_bundle(out: Path, manifest: dict, wheels: list[Path]) -> None:
    """manifest.json then the wheels, in a tar with no owner, time or mode of this machine in it."""
    def info(name: str, size: int) -> tarfile.TarInfo:
        item = tarfile.TarInfo(name)
        item.size, item.mode, item.mtime = size, 0o644, 0
        return item

    data = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8") + b"\n"
    with tarfile.open(out, "w:", format=tarfile.PAX_FORMAT) as archive:
        archive.addfile(info(MANIFEST, len(data)), io.BytesIO(data))
        for wheel in sorted(wheels, key=lambda p: p.name):
            with open(wheel, "rb") as file:
                archive.addfile(info("wheels/" + wheel.name, wheel.stat().st_size), file)
