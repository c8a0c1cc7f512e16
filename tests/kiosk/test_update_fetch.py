"""The kiosk finds, downloads and verifies its next release from central's release repository on loopback:
the happy path, `kiosk update check`, a key rotation it follows, a download cut and resumed after a
restart, a disk without room, TLS pinned to central's CA. The attacks are test_update_attacks.py's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from central import cli as central_cli
from central import tls
from central.server import start_in_thread
from kiosk.updates import fetch, fetcher
from tests.kiosk.updates_support import (RUNNING, Fault, central_releases, downloads, firmware_root,  # noqa: F401
                                         kiosk, kiosk_configuration, make_staff, mirror, mirrored_kiosk,
                                         served_dir, sha256_of, staff, trusted_metadata, trusted_role)

REPO = Path(__file__).resolve().parents[2]


def test_published_release_is_found_downloaded_and_verified(staff, kiosk) -> None:
    bundle = staff.publish("0.2.0", size=300 * 1024)

    available = fetch.check(kiosk, running=RUNNING)
    assert available is not None
    assert (available.version, available.target, available.length, available.newer) == (
        "0.2.0", bundle.name, 300 * 1024, True)
    release = fetch.download(kiosk, available)

    assert release.version == "0.2.0"
    assert release.path.read_bytes() == bundle.read_bytes()
    assert release.sha256 == sha256_of(bundle)
    assert downloads(kiosk) == [bundle.name]          # nothing half downloaded is left beside it


def test_newest_of_several_releases_is_offered(staff, kiosk) -> None:
    for version in ("0.2.0", "0.9.3", "0.10.0"):
        staff.publish(version)

    assert fetch.check(kiosk, running=RUNNING).version == "0.10.0"
    assert fetch.latest_release(kiosk, running=RUNNING).version == "0.10.0"


def test_release_not_newer_than_the_running_one_is_not_downloaded(staff, kiosk) -> None:
    staff.publish("0.2.0")

    available = fetch.check(kiosk, running="0.2.0")
    assert available.version == "0.2.0" and not available.newer
    assert fetch.latest_release(kiosk, running="0.3.0") is None
    assert downloads(kiosk) == []


def test_a_named_release_is_downloaded_even_when_newer_ones_exist(staff, kiosk) -> None:
    older = staff.publish("0.2.0")
    staff.publish("0.3.0")

    release = fetch.named_release(kiosk, "0.2.0")

    assert (release.version, release.path.read_bytes()) == ("0.2.0", older.read_bytes())
    assert fetch.named_release(kiosk, "0.2.5") is None
    assert downloads(kiosk) == [older.name]


def test_repository_without_releases_offers_none(staff, kiosk) -> None:
    assert fetch.check(kiosk, running=RUNNING) is None


def test_firmware_without_trusted_root_refuses_to_update(staff, central_releases, tmp_path) -> None:
    config = kiosk_configuration(tmp_path, central_releases.url + "/tuf", firmware_root(staff, tmp_path))
    firmware_root(staff, tmp_path).unlink()

    with pytest.raises(fetch.NoTrustedRoot):
        fetch.check(config, running=RUNNING)


def central_release(*args: str) -> int:
    """`kiosk-central release ...`, as central's staff type it."""
    return central_cli.main(["release", *args])


def _kiosk_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def _write_config(config_dir: Path, kiosk_config) -> Path:
    """The kiosk.toml of `kiosk_config`'s settings that the update commands read."""
    updates = fetch.UpdateSettings.of(kiosk_config)
    path = config_dir / "kiosk.toml"
    path.write_text(
        'device_id = "kiosk-update-01"\n'
        '[central]\nurl = "%s"\n'
        '[card]\ntrusted_issuers = ["%s"]\n'
        '[printer]\nhost = "127.0.0.1"\n'
        '[outbox]\npath = "%s"\n'
        '[updates]\nrepository_url = "%s"\ntrusted_root = "%s"\nmetadata_dir = "%s"\ndownload_dir = "%s"\n'
        'disk_margin_mb = 0\n'
        % (kiosk_config.central.url, kiosk_config.card.trusted_issuers[0], kiosk_config.outbox.path,
           updates.repository_url, updates.trusted_root, updates.metadata_dir, updates.download_dir))
    return path


def test_update_check_command_says_what_is_newer(staff, kiosk, tmp_path) -> None:
    config_path = _write_config(tmp_path, kiosk)
    running = fetch.running_version()
    before = _kiosk_command("update", "check", "--config", str(config_path))
    assert before.returncode == 0, before.stderr
    assert before.stdout.strip() == "running %s; no release published for %s" % (running, fetch.this_platform())

    bundle = staff.publish("99.0.0", size=1000)
    after = _kiosk_command("update", "check", "--config", str(config_path))

    assert after.returncode == 0, after.stderr
    assert after.stdout.strip() == "running %s; newest 99.0.0 (%s, 1000 bytes): newer, an update is available" % (
        running, bundle.name)


def test_kiosk_follows_key_rotations_signed_by_a_threshold_of_root_keys(staff, kiosk) -> None:
    staff.publish("0.2.0")
    assert fetch.check(kiosk, running=RUNNING).version == "0.2.0"
    repo, first, second, third = (str(staff.repository.directory), *map(str, staff.root_key_files))

    # Staff replace the targets key (two key holders, one after the other), the timestamp key, then a root key.
    assert central_release("keys", "rotate", "targets", "--repo", repo, "--root-key", first) == 0
    assert staff.repository.pending_root() is not None
    assert central_release("keys", "sign-root", "--repo", repo, "--root-key", second) == 0
    assert central_release("keys", "rotate", "timestamp", "--repo", repo, "--root-key", second,
                            "--root-key", third) == 0
    leaving = Path(first).name.removeprefix("root-").removesuffix(".pem")
    assert central_release("keys", "rotate", "root", "--repo", repo, "--root-key", first, "--root-key", third,
                            "--old", leaving, "--root-keys-dir", str(staff.work_dir / "offline-root-keys")) == 0
    bundle = staff.publish("0.3.0")          # served with the roots and keys above

    available = fetch.check(kiosk, running=RUNNING)
    assert available.version == "0.3.0"
    assert fetch.download(kiosk, available).path.read_bytes() == bundle.read_bytes()
    root = trusted_role(kiosk, "root").signed
    assert root.version == 4
    assert not any(keyid.startswith(leaving) for keyid in root.roles["root"].keyids)
    assert staff.online_signer("targets").public_key.keyid in root.roles["targets"].keyids


def test_cut_download_resumes_after_a_restart_from_where_it_stopped(staff, mirror, mirrored_kiosk,
                                                                     tmp_path) -> None:
    size = 2 * 1024 * 1024
    bundle = staff.publish("0.2.0", size=size)
    mirror.fault = Fault(cut_after=size // 2 + 12345)
    available = fetch.check(mirrored_kiosk, running=RUNNING)

    with pytest.raises(fetch.UpdateUnreachable):
        fetch.download(mirrored_kiosk, available)
    assert mirror.cut_done.is_set()
    download_dir = fetch.UpdateSettings.of(mirrored_kiosk).download_dir
    (partial,) = [path for path in download_dir.iterdir() if path.name.endswith(".part")]
    kept = partial.stat().st_size           # what arrived, less the read the cut interrupted (a chunk at most)
    assert size // 2 + 12345 - fetcher.CHUNK_BYTES <= kept <= size // 2 + 12345
    assert partial.read_bytes() == bundle.read_bytes()[:kept]
    assert not (download_dir / bundle.name).exists()

    # The kiosk restarts: a new process goes on from the partial file.
    finished = _kiosk_command("update", "download", "--config", str(_write_config(tmp_path, mirrored_kiosk)))

    assert finished.returncode == 0, finished.stderr
    final = fetch.UpdateSettings.of(mirrored_kiosk).download_dir / bundle.name
    assert "downloaded and verified: %s" % final in finished.stdout
    assert final.read_bytes() == bundle.read_bytes()
    first, second = mirror.bundle_requests()
    assert (first.range, first.bytes_sent) == (None, size // 2 + 12345)
    assert (second.range, second.bytes_sent) == ("bytes=%d-" % kept, size - kept)
    assert downloads(mirrored_kiosk) == [bundle.name]


def test_download_refused_without_room_on_disk_asks_nothing(staff, mirror, mirrored_kiosk, tmp_path) -> None:
    staff.publish("0.2.0")
    crowded = kiosk_configuration(tmp_path / "crowded", mirror.url, firmware_root(staff, tmp_path),
                                  disk_margin_mb=1024 * 1024)      # a terabyte to be kept free
    available = fetch.check(crowded, running=RUNNING)

    with pytest.raises(fetch.NotEnoughSpace, match="MB kept free"):
        fetch.download(crowded, available)
    assert mirror.bundle_requests() == []
    assert downloads(crowded) == []


@pytest.fixture(scope="module")
def tls_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    ours, other = tmp_path_factory.mktemp("tls-ours"), tmp_path_factory.mktemp("tls-other")
    tls.init(ours, ["127.0.0.1"])
    tls.init(other, ["127.0.0.1"])
    return ours, other


def test_repository_over_https_is_trusted_only_under_centrals_pinned_ca(tls_dirs, tmp_path) -> None:
    ours, other = (tls.TlsFiles.in_directory(directory) for directory in tls_dirs)
    staff = make_staff(tmp_path / "served", tmp_path / "staff")
    staff.publish("0.2.0")
    central = start_in_thread("sqlite:///%s" % (tmp_path / "central.sqlite3"), release_repo=staff.served,
                              tls_cert=ours.server_cert, tls_key=ours.server_key)
    try:
        pinned = kiosk_configuration(tmp_path / "pinned", central.url + "/tuf", firmware_root(staff, tmp_path),
                                     ca_file=ours.ca_cert)
        assert fetch.check(pinned, running=RUNNING).version == "0.2.0"

        elsewhere = kiosk_configuration(tmp_path / "elsewhere", central.url + "/tuf", firmware_root(staff, tmp_path),
                                        ca_file=other.ca_cert)
        with pytest.raises(fetch.UpdateUnreachable):
            fetch.check(elsewhere, running=RUNNING)
        assert trusted_metadata(elsewhere).keys() == {"root.json", "root_history/1.root.json"}
    finally:
        central.stop()
