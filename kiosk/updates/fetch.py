"""The kiosk's side of signed updates: is there a newer release, and its bundle downloaded and verified.

    check(config) -> Available | None         the newest release for this platform (None: none published)
    download(config, available) -> Release    its bundle on this disk, whole and verified
    latest_release(config) -> Release | None  both, when the newest release is newer than the one running
    named_release(config, version)            the bundle of the version a staged rollout offers (offer.py)

Each call starts python-tuf's ngclient from the root the firmware ships
(`root.json` beside this module, or `updates.trusted_root`) and the metadata
trusted since (`updates.metadata_dir`), and refreshes it from the repository
(central's /tuf by default) over central's pinned TLS: a new root is followed
only when a threshold of the previous root's keys and of its own signed it;
targets, snapshot and timestamp must be signed by their roles' keys in that
root, not expired, no older than what was seen before, and agree with each
other. Anything else raises UpdateRefused, and ngclient keeps only what it
verified, so the metadata trusted so far stays as it was. The bundle's own
download is `resume.py`'s, after the disk was found to have room for it.

All of it blocks on the network and the disk: a worker thread's, never the UI
thread's. One check or download at a time on a kiosk (a lock file; UpdateBusy).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import logging
import platform
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import TargetFile
from tuf.ngclient import Updater, UpdaterConfig

from kiosk import wire
from kiosk.config import KioskConfig
from kiosk.updates import resume
from kiosk.updates.errors import (NoTrustedRoot, NotEnoughSpace, UpdateBusy, UpdateError, UpdateRefused,
                                  UpdateUnreachable)
from kiosk.updates.fetcher import PinnedSession, SessionFetcher

__all__ = ["Available", "Release", "UpdateSettings", "check", "download", "latest_release", "named_release",
           "discard", "running_version", "this_platform", "UpdateError", "UpdateRefused", "UpdateUnreachable",
           "NotEnoughSpace", "UpdateBusy", "NoTrustedRoot"]

log = logging.getLogger(__name__)

DISTRIBUTION = "citizen-kiosk"
# The trust anchor the firmware ships: the release build copies the repository's metadata/root.json here.
SHIPPED_ROOT = Path(__file__).with_name("root.json")
_MB = 1024 * 1024


@dataclass(frozen=True)
class Available:
    """The newest release the signed metadata lists for this platform."""

    version: str
    target: str                  # kiosk-<version>-<platform>.tar
    length: int
    sha256: str
    newer: bool                  # newer than the version running


@dataclass(frozen=True)
class Release:
    """A bundle on this disk whose length and SHA-256 are the signed ones."""

    version: str
    path: Path
    length: int
    sha256: str


@dataclass(frozen=True)
class UpdateSettings:
    """Where updates come from and go, from the configuration ([updates] and [central])."""

    repository_url: str
    trusted_root: Path
    metadata_dir: Path
    download_dir: Path
    ca_file: Path | None
    timeout_s: float
    margin_bytes: int
    user_agent: str

    @classmethod
    def of(cls, config: KioskConfig) -> UpdateSettings:
        updates = config.updates
        return cls(repository_url=(updates.repository_url or config.central.url.rstrip("/") + wire.TUF).rstrip("/"),
                   trusted_root=updates.trusted_root or SHIPPED_ROOT,
                   metadata_dir=updates.metadata_dir, download_dir=updates.download_dir,
                   ca_file=config.central.ca_file, timeout_s=config.central.timeout_s,
                   margin_bytes=updates.disk_margin_mb * _MB,
                   user_agent="citizen-kiosk/%s (%s)" % (running_version(), config.device_id))


def running_version() -> str:
    """The version of the firmware running (setup.py's, as installed)."""
    return importlib.metadata.version(DISTRIBUTION)


def this_platform() -> str:
    """The platform part of a bundle's name for this machine: linux_aarch64 on a Raspberry Pi."""
    return "linux_" + platform.machine().lower()


def check(config: KioskConfig, *, running: str | None = None) -> Available | None:
    """The newest release for this platform in the repository, verified; None when none is published."""
    settings = UpdateSettings.of(config)
    with _Repository(settings) as repository:
        return repository.newest(running or running_version())


def download(config: KioskConfig, available: Available) -> Release:
    """The bundle of `available` downloaded (going on from a cut one) and verified. The metadata is refreshed
    first: a release the repository no longer lists as `available` says it is raises UpdateError."""
    settings = UpdateSettings.of(config)
    with _Repository(settings) as repository:
        return repository.download(available)


def latest_release(config: KioskConfig, *, running: str | None = None) -> Release | None:
    """The newest release's verified bundle when it is newer than the version running, else None."""
    settings = UpdateSettings.of(config)
    with _Repository(settings) as repository:
        available = repository.newest(running or running_version())
        if available is None or not available.newer:
            return None
        return repository.download(available)


def named_release(config: KioskConfig, version: str) -> Release | None:
    """The verified bundle of release `version` for this platform, newest or not (a staged rollout names the
    version a kiosk may install: kiosk/updates/offer.py); None when the repository does not list it.
    (Added by ROLLOUT.)"""
    settings = UpdateSettings.of(config)
    with _Repository(settings) as repository:
        available = repository.named(version, running_version())
        return repository.download(available) if available is not None else None


def discard(config: KioskConfig, release: Release) -> None:
    """The downloaded bundle deleted (once its version has proven itself, or was given up)."""
    download_dir = UpdateSettings.of(config).download_dir
    if release.path.parent == download_dir:
        release.path.unlink(missing_ok=True)


class _Repository:
    """The release repository as this kiosk sees it, for one check or download (a fresh ngclient Updater,
    as its refresh is once per Updater), under the kiosk's update lock."""

    def __init__(self, settings: UpdateSettings) -> None:
        self._settings = settings
        self._session: PinnedSession | None = None
        self._updater: Updater | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> _Repository:
        settings = self._settings
        try:
            root = settings.trusted_root.read_bytes()
        except FileNotFoundError:
            raise NoTrustedRoot("no trusted root at %s: this firmware was built without one, and "
                                "`updates.trusted_root` names none" % settings.trusted_root) from None
        try:
            for directory in (settings.metadata_dir, settings.download_dir):
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._stack.enter_context(_locked(settings.download_dir / ".lock"))
            self._session = PinnedSession(ca_file=settings.ca_file, timeout_s=settings.timeout_s,
                                          user_agent=settings.user_agent)
            self._stack.callback(self._session.close)
        except OSError as exc:
            self._stack.close()
            raise UpdateError("cannot prepare %s: %s" % (settings.download_dir, exc.strerror or exc)) from None
        try:
            with _tuf_errors("the trusted root %s" % settings.trusted_root):
                self._updater = Updater(metadata_dir=str(settings.metadata_dir),
                                        metadata_base_url=settings.repository_url + "/metadata/",
                                        target_base_url=settings.repository_url + "/targets/",
                                        target_dir=str(settings.download_dir), fetcher=SessionFetcher(self._session),
                                        config=UpdaterConfig(), bootstrap=root)
            with _tuf_errors("the repository's metadata"):
                self._updater.refresh()
        except BaseException:
            self._stack.close()                   # the lock given back, the session closed
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stack.close()

    def newest(self, running: str) -> Available | None:
        newest: tuple[tuple[int, ...], TargetFile, str] | None = None
        platform_name = this_platform()
        # The top-level targets, as ngclient verified them in refresh(): it has no public listing of targets.
        for name, target in self._updater._trusted_set.targets.targets.items():
            release = _release_of(name, target)
            if release is None:
                log.warning("updates.target_skipped target=%s reason=not_a_release", name[:80])
                continue
            version, release_platform = release
            if release_platform != platform_name:
                continue
            key = wire.release_version_key(version)
            if newest is None or key > newest[0]:
                newest = (key, target, version)
        if newest is None:
            log.info("updates.checked newest=none platform=%s", platform_name)
            return None
        key, target, version = newest
        available = Available(version, target.path, target.length, target.hashes["sha256"],
                              newer=key > wire.release_version_key(running))
        log.info("updates.checked newest=%s running=%s newer=%s", version, running, available.newer)
        return available

    def named(self, version: str, running: str) -> Available | None:
        """Release `version` for this platform as the verified targets list it, or None. (ROLLOUT's.)"""
        platform_name = this_platform()
        try:
            name = wire.release_target(version, platform_name)
        except ValueError as exc:
            raise UpdateError(str(exc)) from None
        with _tuf_errors("the repository's metadata"):
            target = self._updater.get_targetinfo(name)
        if target is None or _release_of(name, target) != (version, platform_name):
            log.warning("updates.named_missing version=%s platform=%s", version, platform_name)
            return None
        return Available(version, target.path, target.length, target.hashes["sha256"],
                         newer=wire.release_version_key(version) > wire.release_version_key(running))

    def download(self, available: Available) -> Release:
        settings = self._settings
        with _tuf_errors("the repository's metadata"):
            target = self._updater.get_targetinfo(available.target)
        if target is None or target.hashes.get("sha256") != available.sha256 or target.length != available.length:
            raise UpdateError("%s is no longer the release the repository lists: check again" % available.target)
        if _release_of(target.path, target) is None:      # its name becomes a file's: a release's name only
            raise UpdateRefused("%s is not a release bundle's name" % available.target[:80])
        cached = self._updater.find_cached_target(target)
        if cached is not None:
            return Release(available.version, Path(cached), target.length, available.sha256)
        for stale in settings.download_dir.glob("*" + resume.PARTIAL_SUFFIX):
            if stale != resume.partial_path(settings.download_dir, target):
                stale.unlink(missing_ok=True)     # half of a release superseded since: its room is wanted
        self._check_room(target)
        # Consistent snapshots: the bundle is served under its hash, so a mirror cannot swap it under one name.
        url = "%s/targets/%s" % (settings.repository_url, target.get_prefixed_paths()[0])
        path = resume.download(self._session, url, target, settings.download_dir)
        log.info("updates.downloaded target=%s bytes=%d", target.path, target.length)
        return Release(available.version, path, target.length, available.sha256)

    def _check_room(self, target: TargetFile) -> None:
        settings = self._settings
        needed = target.length - resume.partial_length(settings.download_dir, target)
        free = shutil.disk_usage(settings.download_dir).free
        if free < needed + settings.margin_bytes:
            log.error("updates.no_room target=%s needed_mb=%d free_mb=%d", target.path, needed // _MB, free // _MB)
            raise NotEnoughSpace("%s needs %d MB and %d MB kept free beside it; %d MB are free on %s"
                                 % (target.path, -(-needed // _MB), settings.margin_bytes // _MB, free // _MB,
                                    settings.download_dir))


def _release_of(name: str, target: TargetFile) -> tuple[str, str] | None:
    """(version, platform) of a target that is a release: its name, its {"kiosk": {"version", "platform"}} and
    a SHA-256 that agree; else None."""
    match = wire.RELEASE_TARGET.fullmatch(name)
    kiosk = target.custom.get("kiosk") if isinstance(target.custom, dict) else None
    if (match is None or not isinstance(kiosk, dict) or kiosk.get("version") != match["version"]
            or kiosk.get("platform") != match["platform"] or "sha256" not in target.hashes):
        return None
    return match["version"], match["platform"]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UpdateBusy("another update check or download is running") from None
        yield


@contextlib.contextmanager
def _tuf_errors(what: str) -> Iterator[None]:
    """ngclient's errors as the kiosk's: a verification that failed is a refusal, a download that failed
    is the repository unreachable (but one longer than allowed, endless data, is a refusal)."""
    try:
        yield
    except (tuf_errors.RepositoryError, tuf_errors.DownloadLengthMismatchError) as exc:
        log.error("updates.refused what=%s error=%s", what, type(exc).__name__)
        raise UpdateRefused("%s refused: %s: %s" % (what, type(exc).__name__, str(exc)[:200])) from None
    except tuf_errors.DownloadError as exc:
        log.warning("updates.unreachable error=%s", type(exc).__name__)
        raise UpdateUnreachable("the release repository cannot be reached: %s" % str(exc)[:200]) from None
    except OSError as exc:
        raise UpdateError("the metadata cannot be kept in %s: %s" % (what, exc.strerror or exc)) from None
