"""The updater: `kiosk update run`, which kiosk-update.timer starts as root (systemd/kiosk-update.service).

One run: what became of earlier installs reported to their rollouts first; then the release central's
staged rollout offers this kiosk (kiosk/updates/offer.py), downloaded
and verified through TUF (kiosk/updates/fetch.py), is installed beside the running version
(kiosk/updates/install.py), which restarts into it between sessions, on trial; then the bundles
of versions that are settled (proven, running, or refused for good) are deleted from the download
folder, and what became of earlier installs is reported to the rollout. A bundle is kept until its
version proved itself, so that a version whose trial failed is tried again without a new download.
A repository TUF refuses is recorded (`update.refused`) for central as the guard's events are.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Callable

from kiosk.config import KioskConfig
from kiosk.updates import fetch, guard, install, offer

log = logging.getLogger(__name__)

_BUNDLE = re.compile(r"kiosk-([0-9]+(?:\.[0-9]+)*)-linux_[a-z0-9_]+\.tar")


def run(config: KioskConfig, root: Path = install.ROOT, *, say: Callable[[str], None] = print) -> int:
    """0: installed, or nothing to install; 1: refused, failed or unreachable (the running version untouched)."""
    status = 0
    # What became of earlier installs goes first: a version whose trial failed has paused its rollout
    # at central before central is asked for an offer, so it is not offered (and staged) again.
    offer.report_outcomes(config, root=root)
    try:
        release = offer.offered_release(config, root=root)
        if release is None:
            say("kiosk update run: no newer release is offered to this kiosk")
        else:
            try:
                say(install.install(release.path, root, say=say).line())
            except install.InstallError as exc:
                offer.install_failed(config, release.version)
                say("kiosk update run: %s is not installed: %s" % (release.version, exc))
                status = 1
    except fetch.UpdateRefused as exc:
        layout = guard.Layout(root)
        with guard.locked(layout):
            guard.record(layout, guard.REFUSED, None, reason="the release repository was refused: %s" % exc)
        say("kiosk update run: refused: %s" % exc)
        status = 1
    except fetch.UpdateError as exc:
        say("kiosk update run: %s" % exc)
        status = 1
    finally:
        discard_settled(config, root)
        offer.report_outcomes(config, root=root)
    return status


def discard_settled(config: KioskConfig, root: Path) -> list[str]:
    """Delete the downloaded bundles whose versions are settled: proven, running, or refused for good."""
    state = install.status(root)
    settled = set(state["proven"]) | set(state["refused"]) | {state["current"]}
    folder = fetch.UpdateSettings.of(config).download_dir
    discarded = []
    for path in sorted(folder.glob("kiosk-*.tar")) if folder.is_dir() else []:
        found = _BUNDLE.fullmatch(path.name)
        if found and found.group(1) in settled:
            fetch.discard(config, fetch.Release(found.group(1), path, path.stat().st_size, ""))
            log.info("update.discarded bundle=%s", path.name)
            discarded.append(path.name)
    return discarded
