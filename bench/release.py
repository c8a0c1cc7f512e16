"""The release's figures: the bundle for the Pi and for this machine (size, wheels, time to build)
and an install of this machine's into a scratch root (time, size on disk).

    python -m bench.release [--out DIR]

Builds from the checkout (release/build.py) and installs with kiosk/updates/install.py, as
`make release` and `kiosk update install` do; the downloads come from pip's cache once it holds them.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from kiosk.updates import bundle as bundles
from kiosk.updates import install
from release import build

MB = 1024 * 1024


def _size(folder: Path) -> int:
    return sum(path.lstat().st_size for path in folder.rglob("*"))


def run(out: Path) -> list[str]:
    lines = []
    built = {}
    for platform in ("rpi", "host"):
        began = time.monotonic()
        made = build.build(platform, out / platform, work=out / ("work-" + platform), say=lambda _line: None)
        archive, manifest = bundles.open_bundle(made.path)
        archive.close()
        built[platform] = made.path
        lines.append("bundle %-32s %6.1f MB  %2d wheels  %5.0f MB unpacked  built in %5.1f s" % (
            made.path.name, made.path.stat().st_size / MB, len(manifest.files), manifest.installed_size / MB,
            time.monotonic() - began))
    root = out / "root"
    installed = install.install(built["host"], root, say=lambda _line: None)
    lines.append("install %-31s %5.1f s  %5.0f MB on disk" % (
        built["host"].name, installed.seconds, _size(root / "versions" / installed.version) / MB))
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.release", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="keep the bundles here (default: a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-release-") as scratch:
        for line in run(args.out or Path(scratch)):
            print(line)


if __name__ == "__main__":
    main()
