"""`make release`: the bundle a kiosk installs, built for the device, not for this machine.

    python -m release.build [--platform rpi|host] [--out dist] [--version V] [--trusted-root ROOT.json]
                            [--wheel FILE.whl] [--work DIR]

`rpi` (the default) is the kiosk: Raspberry Pi OS Bookworm, aarch64, CPython 3.11; `host` is this
machine (its processor, this Python), for the tests and the demo. The bundle
(`dist/kiosk-<version>-<platform>.tar`, its format in kiosk/updates/bundle.py) holds the project's
wheel (`python -m build --wheel` on a copy of the checkout, or --wheel) and the wheel of every
dependency, for the platform:

    pip download --only-binary=:all: --implementation cp --python-version 3.11
                 --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64 ...
                 --platform manylinux_2_28_aarch64 ... --platform manylinux_2_36_aarch64
                 <the project's wheel>

up to manylinux_2_36, Bookworm's glibc (2.36): lgpio's aarch64 wheel is manylinux_2_34, and pip
expands manylinux2014 to the older tags but a manylinux_2_X only to itself, so every one is given.
Two things pip does not do by itself:

- What Debian provides instead of a wheel (SYSTEM_PACKAGES: pyscard has no aarch64 wheel; the
  version's virtual environment sees Debian's python3-pyscard, which systemd/install.sh installs)
  is stood in for, while pip resolves, by a wheel of metadata only, at Debian's version; it never
  goes into the bundle, and the manifest lists the package under `system_packages`.
- pip evaluates environment markers (`lgpio; platform_machine == 'aarch64'`) against the machine
  it runs on, even with --platform (pypa/pip#11664): it runs here with `platform.machine()`
  answering the target's, so that the Pi's conditional requirements are downloaded.

Then pip proves the bundle complete, offline: `pip install --dry-run --no-index --find-links
<the wheels> --target <empty> --platform ... citizen-kiosk==<version>` must resolve, and to exactly
the bundle's wheels and the system packages (a wheel nothing needs is an error too).
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from kiosk.updates import bundle as bundles

ROOT = Path(__file__).resolve().parent.parent
# Kept out of the copy the project's wheel is built from.
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
                                     ".pytest_cache", ".hypothesis", "demo-out", "journey-out", "soak-out", ".build")
# (distribution, Debian bookworm's version, the Debian package): no wheel for the Pi, so the device's own.
SYSTEM_PACKAGES = (("pyscard", "2.0.5", "python3-pyscard"),)

# pip, with platform.machine() saying the target's (argv[1]), so that markers are the target's.
PIP_FOR_MACHINE = ("import platform, runpy, sys\n"
                   "machine = sys.argv.pop(1)\n"
                   "platform.machine = lambda: machine\n"
                   "sys.argv[0] = 'pip'\n"
                   "runpy.run_module('pip', run_name='__main__', alter_sys=True)\n")


class BuildError(Exception):
    pass


@dataclass(frozen=True)
class Target:
    name: str                    # the bundle's platform: linux_<machine>
    machine: str
    python: str                  # "3.11"
    os: str
    wheel_platforms: tuple[str, ...]

    def pip_options(self) -> list[str]:
        options = ["--only-binary=:all:", "--implementation", "cp", "--python-version", self.python]
        for tag in self.wheel_platforms:
            options += ["--platform", tag]
        return options


def _manylinux(machine: str, glibc: str) -> tuple[str, ...]:
    """Every manylinux tag a glibc of that version runs: pip expands manylinux2014 to the older
    tags by itself, but takes a manylinux_2_X it is given as that tag alone."""
    major, minor = (int(part) for part in glibc.split(".")[:2])
    return ("manylinux2014_" + machine,
            *("manylinux_%d_%d_%s" % (major, m, machine) for m in range(17, minor + 1)))


def target(name: str) -> Target:
    if name == "rpi":
        return Target("linux_aarch64", "aarch64", "3.11", "Raspberry Pi OS Bookworm (Debian 12)",
                      _manylinux("aarch64", "2.36"))
    if name == "host":
        machine = platform.machine()
        libc, glibc = platform.libc_ver()
        if libc != "glibc":
            raise BuildError("this machine's C library is %r, not glibc: no manylinux wheels for it" % libc)
        return Target(bundles.this_platform(), machine, "%d.%d" % sys.version_info[:2],
                      "this machine (%s)" % platform.platform(terse=True), _manylinux(machine, glibc))
    raise BuildError("unknown platform %r: rpi or host" % name)


@dataclass(frozen=True)
class Built:
    path: Path
    manifest: dict
    seconds: float


def build(platform_name: str, out: Path, *, wheel: Path | None = None, work: Path | None = None,
          version: str | None = None, trusted_root: Path | None = None, say=print) -> Built:
    """The bundle for `platform_name` in `out`; `wheel` is the project's wheel (built from the
    checkout when None, as `version` and with `trusted_root` in it: see project_wheel); `work` keeps
    the downloaded wheels (a temporary folder when None)."""
    began = time.monotonic()
    goal = target(platform_name)
    with tempfile.TemporaryDirectory(prefix="kiosk-release-") as scratch:
        work = Path(work or scratch)
        work.mkdir(parents=True, exist_ok=True)
        project = wheel or project_wheel(work / "project", version=version, trusted_root=trusted_root, say=say)
        say("release: project wheel %s" % project.name)
        dependencies = download_dependencies(goal, project, work / "wheels", say=say)
        path = assemble(goal, project, dependencies, out, say=say)
    archive, manifest = bundles.open_bundle(path)
    archive.close()
    built = Built(path, manifest.raw, time.monotonic() - began)
    say("release: %s, %.1f MB, %d wheels, built in %.1f s" % (
        path, path.stat().st_size / (1024 * 1024), len(manifest.files), built.seconds))
    return built


def project_wheel(folder: Path, *, source: Path = ROOT, version: str | None = None,
                  trusted_root: Path | None = None, say=print) -> Path:
    """`python -m build --wheel` on a copy of the checkout (setuptools' build/ and egg-info stay out of
    it). In the copy only: setup.py's version set to `version` (what the installed kiosk says it runs,
    and what the release is published as), and the release repository's root metadata put in as
    kiosk/updates/root.json, the trust anchor the firmware ships (never committed)."""
    copy = folder / "source"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(source, copy, ignore=COPY_IGNORE)
    if version is not None:
        if not re.fullmatch(r"[0-9]+(\.[0-9]+)*", version):
            raise BuildError("a version is digits and dots, not %r" % version)
        setup = copy / "setup.py"
        text, count = re.subn(r'version="[^"]*"', 'version="%s"' % version, setup.read_text(), count=1)
        if count != 1:
            raise BuildError("no version= in setup.py to set")
        setup.write_text(text)
    if trusted_root is not None:
        shutil.copyfile(trusted_root, copy / "kiosk" / "updates" / "root.json")
        say("release: trusted root %s put in the firmware" % trusted_root)
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(folder), str(copy)], "building the wheel")
    (wheel,) = folder.glob("citizen_kiosk-*.whl")
    return wheel


def download_dependencies(goal: Target, project: Path, folder: Path, *, say=print) -> list[Path]:
    """Every dependency's wheel for the target, the system packages left out."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    stand_ins = folder / ".system"
    stand_ins.mkdir()
    for name, version, _debian in SYSTEM_PACKAGES:
        metadata_only_wheel(stand_ins, name, version)
    _run(_pip(goal) + ["download", "--dest", str(folder), "--find-links", str(stand_ins), *goal.pip_options(),
                       str(project)], "downloading the dependencies for %s" % goal.name)
    system = {_normal(name) for name, _version, _debian in SYSTEM_PACKAGES}
    wheels = [path for path in sorted(folder.glob("*.whl"))
              if path.name != project.name and _normal(path.name.split("-")[0]) not in system]
    say("release: %d dependencies for %s" % (len(wheels), goal.name))
    return wheels


def assemble(goal: Target, project: Path, dependencies: list[Path], out: Path, *, say=print) -> Path:
    """Check that the wheels resolve, offline, to exactly themselves and the system packages; write the bundle."""
    version = project.name.split("-")[1]
    files = [project, *dependencies]
    check_resolution(goal, version, files)
    say("release: pip resolves %s==%s from the bundle alone (%s from the system)" % (
        bundles.NAME, version, ", ".join(name for name, _v, _d in SYSTEM_PACKAGES)))
    manifest = {
        "format": bundles.FORMAT, "name": bundles.NAME, "version": version, "platform": goal.name,
        "python": goal.python, "implementation": "cp", "os": goal.os, "wheel_platforms": list(goal.wheel_platforms),
        "project_wheel": "wheels/" + project.name, "entry_points": entry_points(project),
        "system_packages": [{"name": name, "version": v, "debian": debian} for name, v, debian in SYSTEM_PACKAGES],
        "files": [bundles.wheel_entry(path) for path in sorted(files, key=lambda p: p.name)],
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / bundles.bundle_name(version, goal.name)
    partial = path.with_name(path.name + ".part")
    bundles.write_bundle(partial, manifest, files)
    partial.replace(path)
    return path


def check_resolution(goal: Target, version: str, files: list[Path]) -> None:
    """pip install --dry-run --no-index from these wheels (and the system packages' stand-ins) only."""
    with tempfile.TemporaryDirectory(prefix="kiosk-resolve-") as scratch:
        links, stand_ins = Path(scratch) / "wheels", Path(scratch) / "system"
        links.mkdir()
        stand_ins.mkdir()
        for path in files:
            (links / path.name).symlink_to(path.resolve())
        for name, system_version, _debian in SYSTEM_PACKAGES:
            metadata_only_wheel(stand_ins, name, system_version)
        report = Path(scratch) / "report.json"
        _run(_pip(goal) + ["install", "--dry-run", "--ignore-installed", "--no-index", "--find-links", str(links),
                           "--find-links", str(stand_ins), "--target", str(Path(scratch) / "target"),
                           *goal.pip_options(), "--report", str(report), "--quiet",
                           "%s==%s" % (bundles.NAME, version)], "resolving the bundle offline", isolated=True)
        resolved = {_normal(item["metadata"]["name"]) for item in json.loads(report.read_text())["install"]}
    bundled = {_normal(path.name.split("-")[0]) for path in files}
    system = {_normal(name) for name, _version, _debian in SYSTEM_PACKAGES}
    if resolved != bundled | system:
        raise BuildError("the bundle does not resolve to itself: unused %s, from elsewhere %s" % (
            sorted(bundled - resolved) or "none", sorted(resolved - bundled - system) or "none"))


def entry_points(wheel: Path) -> dict[str, str]:
    """The console scripts of a wheel."""
    with zipfile.ZipFile(wheel) as archive:
        name = next((n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")), None)
        text = archive.read(name).decode("utf-8") if name else ""
    parser = configparser.ConfigParser(delimiters=("=",))
    parser.optionxform = str
    parser.read_string(text)
    return dict(parser["console_scripts"]) if parser.has_section("console_scripts") else {}


def metadata_only_wheel(folder: Path, name: str, version: str) -> Path:
    """A wheel with a name, a version and nothing else: what pip needs to count a package as there."""
    dist_info = "%s-%s.dist-info" % (name, version)
    members = {dist_info + "/METADATA": "Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name, version),
               dist_info + "/WHEEL": "Wheel-Version: 1.0\nGenerator: kiosk-release\nRoot-Is-Purelib: true\n"
                                     "Tag: py3-none-any\n"}
    members[dist_info + "/RECORD"] = "".join("%s,,\n" % member for member in [*members, dist_info + "/RECORD"])
    path = folder / ("%s-%s-py3-none-any.whl" % (name, version))
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in members.items():
            archive.writestr(member, text)
    return path


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _pip(goal: Target) -> list[str]:
    return [sys.executable, "-c", PIP_FOR_MACHINE, goal.machine]


def _run(command: list[str], what: str, *, isolated: bool = False) -> subprocess.CompletedProcess:
    """`isolated`: no pip configuration or PIP_* variable (this machine's find-links) takes part."""
    env = None
    if isolated:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=env)
    if done.returncode != 0:
        raise BuildError("%s failed (exit %d):\n%s" % (what, done.returncode, (done.stdout + done.stderr)[-4000:]))
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m release.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--platform", default="rpi", choices=("rpi", "host"),
                        help="rpi: the kiosk (aarch64, Python 3.11); host: this machine (default %(default)s)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="where the bundle goes (default dist/)")
    parser.add_argument("--wheel", type=Path, default=None, help="the project's wheel (default: built from the checkout)")
    parser.add_argument("--version", default=None,
                        help="the release's version, set in the built copy's setup.py (default: setup.py's)")
    parser.add_argument("--trusted-root", type=Path, default=None, metavar="ROOT.json",
                        help="the release repository's root metadata, shipped as kiosk/updates/root.json")
    parser.add_argument("--work", type=Path, default=None, help="keep the downloaded wheels here")
    args = parser.parse_args(argv)
    try:
        build(args.platform, args.out, wheel=args.wheel, work=args.work, version=args.version,
              trusted_root=args.trusted_root)
    except (BuildError, bundles.BundleError) as exc:
        print("release: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
