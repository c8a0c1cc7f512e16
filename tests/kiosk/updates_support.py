"""What the update tests share: a release repository served by central on loopback, a kiosk's
configuration pointing at it, a small mirror that misbehaves on purpose, and an attacker's hand.

The fixtures are imported by the test modules that use them (pytest finds them there).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata
from tuf.api.serialization.json import JSONSerializer

from central.releases import keys
from central.releases.repository import ReleaseRepository
from central.server import RunningCentral, start_in_thread
from kiosk import config as kiosk_config
from kiosk.updates import fetch

RUNNING = "0.1.0"          # the version the kiosk under test says it runs


@dataclass
class Staff:
    """Central staff's side: the repository, its offline root keys, and bundles made for it; and the copy
    of the repository that is served (`served`: what central or a mirror serves, which an attacker may
    change), brought up to date by `sync`."""

    repository: ReleaseRepository
    root_key_files: list[Path]
    work_dir: Path
    served: Path

    def sync(self) -> None:
        """The served copy made the repository's again (metadata and bundles), as after staff publish."""
        for sub in ("metadata", "targets"):
            shutil.rmtree(self.served / sub, ignore_errors=True)
            shutil.copytree(self.repository.directory / sub, self.served / sub, symlinks=True)

    @property
    def root_signers(self) -> list[CryptoSigner]:
        return [keys.load(path) for path in self.root_key_files]

    def bundle(self, version: str, size: int = 64 * 1024) -> Path:
        path = self.work_dir / ("kiosk-%s-%s.tar" % (version, fetch.this_platform()))
        path.write_bytes(os.urandom(size))
        return path

    def publish(self, version: str, size: int = 64 * 1024) -> Path:
        bundle = self.bundle(version, size)
        self.repository.publish(bundle, version)
        self.sync()
        return bundle

    def online_signer(self, role: str) -> CryptoSigner:
        return keys.load(self.repository.keys_dir / ("%s.pem" % role))


def make_staff(served: Path, work_dir: Path, *, now: Callable[[], datetime] | None = None) -> Staff:
    """A new repository in `work_dir`, three root keys, any two of which sign a root, and its copy in
    `served` (emptied first: central may be serving it)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    options = {"now": now} if now is not None else {}
    repository, key_files = ReleaseRepository.create(work_dir / "repo", work_dir / "offline-root-keys",
                                                     root_keys=3, threshold=2, **options)
    shutil.rmtree(served, ignore_errors=True)
    served.mkdir(parents=True)
    staff = Staff(repository, key_files, work_dir, served)
    staff.sync()
    return staff


def kiosk_configuration(tmp_path: Path, repository_url: str, trusted_root: Path, *,
                        central_url: str | None = None, ca_file: Path | None = None,
                        disk_margin_mb: int = 0) -> kiosk_config.KioskConfig:
    """A kiosk whose state directories are under `tmp_path` and whose firmware ships `trusted_root`."""
    issuer = tmp_path / "issuer.pem"
    tmp_path.mkdir(parents=True, exist_ok=True)
    issuer.write_text("an issuer key: only its existence matters here\n")
    central: dict = {"url": central_url or repository_url.rsplit("/tuf", 1)[0]}
    if ca_file is not None:
        central["ca_file"] = str(ca_file)
    return kiosk_config.parse({
        "device_id": "kiosk-update-01",
        "central": central,
        "card": {"trusted_issuers": [str(issuer)]},
        "printer": {"host": "127.0.0.1"},
        "outbox": {"path": str(tmp_path / "state" / "outbox.sqlite3")},
        "updates": {"repository_url": repository_url, "trusted_root": str(trusted_root),
                    "metadata_dir": str(tmp_path / "update-state" / "metadata"),
                    "download_dir": str(tmp_path / "update-state" / "downloads"), "disk_margin_mb": disk_margin_mb},
    })


def firmware_root(staff: Staff, tmp_path: Path) -> Path:
    """The root a firmware built now ships: a copy of the repository's root.json as it is now."""
    path = tmp_path / "firmware-root.json"
    shutil.copyfile(staff.repository.metadata_dir / "root.json", path)
    return path


def trusted_metadata(config: kiosk_config.KioskConfig) -> dict[str, bytes]:
    """The kiosk's trusted metadata: each file's bytes (root.json read through its link)."""
    directory = fetch.UpdateSettings.of(config).metadata_dir
    if not directory.is_dir():
        return {}
    return {str(path.relative_to(directory)): path.read_bytes()
            for path in sorted(directory.rglob("*.json")) if path.is_file()}


def trusted_role(config: kiosk_config.KioskConfig, role: str) -> Metadata:
    return Metadata.from_file(str(fetch.UpdateSettings.of(config).metadata_dir / ("%s.json" % role)))


def downloads(config: kiosk_config.KioskConfig) -> list[str]:
    directory = fetch.UpdateSettings.of(config).download_dir
    return sorted(path.name for path in directory.iterdir() if path.name != ".lock") if directory.is_dir() else []


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_signed(served: Path, metadata: Metadata, *signers: CryptoSigner) -> bytes:
    """`metadata` signed by `signers` (whoever holds them) and written over its file in the served copy
    `served`, as an attacker who controls the mirror does; its bytes."""
    metadata.signatures.clear()
    for signer in signers:
        metadata.sign(signer, append=True)
    data = metadata.to_bytes(JSONSerializer(compact=False))
    role = metadata.signed.type
    name = "timestamp.json" if role == "timestamp" else "%d.%s.json" % (metadata.signed.version, role)
    (served / "metadata" / name).write_bytes(data)
    return data


def served_role(served: Path, role: str) -> Metadata:
    """The newest `role` the served copy holds, as its timestamp leads to it."""
    metadata_dir = served / "metadata"
    timestamp = Metadata.from_file(str(metadata_dir / "timestamp.json"))
    if role == "timestamp":
        return timestamp
    snapshot = Metadata.from_file(str(metadata_dir / ("%d.snapshot.json" % timestamp.signed.snapshot_meta.version)))
    if role == "snapshot":
        return snapshot
    if role == "targets":
        return Metadata.from_file(str(metadata_dir / ("%d.targets.json" % snapshot.signed.meta["targets.json"].version)))
    newest = max(int(path.name.split(".")[0]) for path in metadata_dir.glob("*.root.json"))
    return Metadata.from_file(str(metadata_dir / ("%d.root.json" % newest)))


# --- central serving the repository ----------------------------------------------------------------

@pytest.fixture(scope="module")
def served_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("served") / "release-repo"


@pytest.fixture(scope="module")
def central_releases(served_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCentral]:
    """Central on loopback, serving `served_dir` under /tuf (each test makes a new repository there)."""
    work = tmp_path_factory.mktemp("central-releases")
    ReleaseRepository.create(served_dir, work / "offline")        # central serves only a repository
    db = work / "central.sqlite3"
    running = start_in_thread("sqlite:///%s" % db, release_repo=served_dir)
    yield running
    running.stop()


@pytest.fixture
def staff(served_dir: Path, central_releases: RunningCentral, tmp_path: Path) -> Staff:
    """A new repository, served by central (`central_releases`)."""
    return make_staff(served_dir, tmp_path / "staff")


@pytest.fixture
def kiosk(staff: Staff, central_releases: RunningCentral, tmp_path: Path) -> kiosk_config.KioskConfig:
    """A kiosk whose firmware was built when the repository was made (its root version 1)."""
    return kiosk_configuration(tmp_path / "kiosk", central_releases.url + "/tuf",
                               firmware_root(staff, tmp_path))


# --- a mirror that misbehaves ----------------------------------------------------------------------

@dataclass
class Fault:
    """How the mirror answers the next requests for a bundle: cut after `cut_after` bytes (once), or the
    bundle followed by zeros without end (`endless`, also for `endless_metadata`)."""

    cut_after: int | None = None
    endless: bool = False
    endless_metadata: str | None = None


@dataclass
class Served:
    path: str
    range: str | None
    bytes_sent: int = 0


@dataclass
class Mirror:
    url: str
    fault: Fault
    log: list[Served] = field(default_factory=list)
    cut_done: threading.Event = field(default_factory=threading.Event)

    def bundle_requests(self) -> list[Served]:
        return [served for served in self.log if "/targets/" in served.path]


_RANGE = re.compile(r"bytes=([0-9]+)-")


def _handler(root: Path, mirror_ref: list[Mirror]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            mirror = mirror_ref[0]
            served = Served(self.path, self.headers.get("Range"))
            mirror.log.append(served)
            parts = self.path.split("/")
            if len(parts) != 4 or parts[1] != "tuf" or parts[2] not in ("metadata", "targets"):
                self._plain(404, b"not found")
                return
            file = root / parts[2] / parts[3]
            if not file.is_file():
                self._plain(404, b"not found")
                return
            data = file.read_bytes()
            fault = mirror.fault
            if ((parts[2] == "targets" and fault.endless)
                    or (parts[2] == "metadata" and fault.endless_metadata == parts[3])):
                self._endless(data, served)
                return
            start = 0
            match = _RANGE.fullmatch(served.range or "")
            if parts[2] == "targets" and match:
                start = int(match[1])
                self.send_response(206)
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if parts[2] == "targets" and fault.cut_after is not None and not mirror.cut_done.is_set():
                body = body[:fault.cut_after]
                mirror.cut_done.set()
                self.close_connection = True
            self.wfile.write(body)
            self.wfile.flush()
            served.bytes_sent = len(body)

        def _endless(self, data: bytes, served: Served) -> None:
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            zeros = bytes(64 * 1024)
            try:
                self.wfile.write(data)
                served.bytes_sent = len(data)
                while True:                       # until the kiosk hangs up
                    self.wfile.write(zeros)
                    served.bytes_sent += len(zeros)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _plain(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass                                      # a kiosk hanging up on a cut or endless answer is the point


@pytest.fixture
def mirror(staff: Staff) -> Iterator[Mirror]:
    """A mirror of the staff's repository on loopback that misbehaves as its `fault` says."""
    holder: list[Mirror] = []
    server = _QuietServer(("127.0.0.1", 0), _handler(staff.served, holder))
    holder.append(Mirror("http://127.0.0.1:%d/tuf" % server.server_address[1], Fault()))
    thread = threading.Thread(target=server.serve_forever, name="mirror", daemon=True)
    thread.start()
    yield holder[0]
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture
def mirrored_kiosk(staff: Staff, mirror: Mirror, tmp_path: Path) -> kiosk_config.KioskConfig:
    return kiosk_configuration(tmp_path / "kiosk", mirror.url, firmware_root(staff, tmp_path))
