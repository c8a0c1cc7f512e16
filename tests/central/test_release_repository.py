"""Central staff's release repository (`kiosk-central release ...`): keys made and kept as staff need them,
releases published forward only, the online roles signed again before they expire, and a new root
published only with a threshold of the previous root's keys and of its own."""

from __future__ import annotations

import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata

from central import cli as central_cli
from central.releases import keys
from central.releases.repository import EXPIRY, ReleaseError, ReleaseRepository
from kiosk import wire


def _bundle(directory: Path, version: str, data: bytes | None = None, platform: str = "linux_aarch64") -> Path:
    path = directory / wire.release_target(version, platform)
    path.write_bytes(os.urandom(4096) if data is None else data)
    return path


@pytest.fixture
def made(tmp_path: Path) -> tuple[ReleaseRepository, list[Path]]:
    return ReleaseRepository.create(tmp_path / "repo", tmp_path / "offline", root_keys=3, threshold=2)


def _verifies_against(root: Metadata, role: str, metadata: Metadata) -> bool:
    return bool(root.signed.get_verification_result(role, metadata.signed_bytes, metadata.signatures))


def test_init_makes_offline_root_keys_online_keys_and_a_first_root(made, tmp_path) -> None:
    repository, root_key_files = made

    assert [path.parent for path in root_key_files] == [tmp_path / "offline"] * 3
    for path in [*root_key_files, *(repository.keys_dir / ("%s.pem" % role) for role in keys.ONLINE_ROLES)]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    root = repository.current("root")
    assert (root.signed.version, root.signed.consistent_snapshot, root.signed.roles["root"].threshold) == (1, True, 2)
    assert sorted(root.signed.roles["root"].keyids) == sorted(keys.load(p).public_key.keyid for p in root_key_files)
    assert root.signed.get_root_verification_result(None, root.signed_bytes, root.signatures).verified
    for role in keys.ONLINE_ROLES:
        assert _verifies_against(root, role, repository.current(role))
    assert (repository.metadata_dir / "root.json").read_bytes() == (repository.metadata_dir / "1.root.json").read_bytes()
    with pytest.raises(ReleaseError, match="already"):
        ReleaseRepository.create(repository.directory, tmp_path / "again")


def test_publish_lists_the_bundle_under_its_hash_with_new_targets_snapshot_and_timestamp(made, tmp_path) -> None:
    repository, _ = made
    bundle = _bundle(tmp_path, "0.2.0")

    published = repository.publish(bundle, "0.2.0")

    target = repository.current("targets").signed.targets[bundle.name]
    assert (target.length, target.hashes, target.custom) == (
        4096, {"sha256": published.sha256}, {"kiosk": {"version": "0.2.0", "platform": "linux_aarch64"}})
    assert (repository.targets_dir / ("%s.%s" % (published.sha256, bundle.name))).read_bytes() == bundle.read_bytes()
    snapshot, timestamp = repository.current("snapshot").signed, repository.current("timestamp").signed
    assert snapshot.meta["targets.json"].version == repository.current("targets").signed.version == 2
    assert timestamp.snapshot_meta.version == snapshot.version == 2
    assert timestamp.snapshot_meta.length == repository.path_of("snapshot").stat().st_size
    assert repository.versions("targets") == [1, 2]          # the earlier version stays (consistent snapshots)


def test_publish_refuses_a_misnamed_bundle_an_older_version_and_other_bytes_under_a_version(made, tmp_path) -> None:
    repository, _ = made
    bundle = _bundle(tmp_path, "0.3.0")
    repository.publish(bundle, "0.3.0")
    timestamp_before = repository.path_of("timestamp").read_bytes()

    with pytest.raises(ReleaseError, match="named kiosk-0.4.0-"):
        repository.publish(bundle, "0.4.0")
    with pytest.raises(ReleaseError, match="not newer than 0.3.0"):
        repository.publish(_bundle(tmp_path, "0.2.9"), "0.2.9")
    (tmp_path / "other").mkdir()
    with pytest.raises(ReleaseError, match="published already with other content"):
        repository.publish(_bundle(tmp_path / "other", "0.3.0"), "0.3.0")
    again = repository.publish(bundle, "0.3.0")

    assert not again.new
    assert repository.path_of("timestamp").read_bytes() == timestamp_before
    assert sorted(path.name.split(".", 1)[1] for path in repository.targets_dir.iterdir()) == [bundle.name]
    # Another platform has versions of its own.
    assert repository.publish(_bundle(tmp_path, "0.1.0", platform="linux_x86_64"), "0.1.0").new


def test_refresh_signs_each_online_role_again_before_it_expires(made) -> None:
    repository, _ = made
    start = datetime.now(timezone.utc)

    def at(delta: timedelta) -> ReleaseRepository:
        return ReleaseRepository(repository.directory, now=lambda: start + delta)

    assert at(timedelta(hours=1)).refresh() == []
    assert [s.role for s in at(timedelta(hours=13)).refresh()] == ["timestamp"]
    assert [s.role for s in at(timedelta(days=5)).refresh()] == ["snapshot", "timestamp"]
    assert [s.role for s in at(timedelta(days=61)).refresh()] == ["targets", "snapshot", "timestamp"]
    timestamp = repository.current("timestamp").signed
    assert timestamp.version == 4                 # made, then signed again three times
    assert timestamp.expires == (start + timedelta(days=61)).replace(microsecond=0) + EXPIRY["timestamp"]
    root = repository.current("root")
    for role in keys.ONLINE_ROLES:
        assert _verifies_against(root, role, repository.current(role))


def test_rotated_online_key_waits_for_a_threshold_of_root_keys(made) -> None:
    repository, root_key_files = made
    first, second, _third = (keys.load(path) for path in root_key_files)
    old_targets_key = keys.load(repository.keys_dir / "targets.pem").public_key.keyid

    waiting = repository.rotate("targets", [first])
    assert (waiting.published, waiting.missing_previous, waiting.missing_new) == (False, 1, 1)
    assert repository.versions("root") == [1]                 # nothing a kiosk could fetch yet
    with pytest.raises(ReleaseError, match="waits for signatures already"):
        repository.rotate("snapshot", [first, second])
    published = repository.sign_root([second])

    assert published.published and repository.versions("root") == [1, 2]
    root = repository.current("root")
    new_targets_key = keys.load(repository.keys_dir / "targets.pem").public_key.keyid
    assert root.signed.roles["targets"].keyids == [new_targets_key] != [old_targets_key]
    assert _verifies_against(root, "targets", repository.current("targets"))   # signed again with the new key
    assert repository.pending_root() is None and not repository.pending_dir.exists()


def test_root_key_rotation_needs_the_old_and_the_new_threshold(made, tmp_path) -> None:
    repository, root_key_files = made
    first, second, third = (keys.load(path) for path in root_key_files)

    with pytest.raises(ReleaseError, match="not a root key"):
        repository.renew_root([keys.load(repository.keys_dir / "targets.pem")])
    assert repository.pending_root() is None
    change = repository.rotate("root", [first], old_keyid=keys.short_id(first), root_keys_dir=tmp_path / "offline")
    # The leaving key and the new key: one of the old root's two, one of the new root's two.
    assert (change.published, change.missing_previous, change.missing_new) == (False, 1, 1)
    assert change.new_root_key is not None and change.new_root_key.is_file()
    assert repository.sign_root([second]).published

    root = repository.current("root").signed
    assert first.public_key.keyid not in root.roles["root"].keyids
    assert keys.load(change.new_root_key).public_key.keyid in root.roles["root"].keyids
    assert third.public_key.keyid in root.roles["root"].keyids
    assert root.version == 2 and repository.current("root").signed.roles["root"].threshold == 2


def test_release_commands_from_staff_to_published(tmp_path, capsys) -> None:
    repo = tmp_path / "repo"
    assert central_cli.main(["release", "keys", "init", str(repo), "--root-keys", "2", "--threshold", "2"]) == 0
    out = capsys.readouterr().out
    assert "root version 1, 2 root keys, any 2 of which sign a root" in out
    assert "every hour" in out
    bundle = _bundle(tmp_path, "1.0.0")

    assert central_cli.main(["release", "publish", str(bundle), "--version", "1.0.0", "--repo", str(repo)]) == 0
    assert "published %s: version 1.0.0 for linux_aarch64" % bundle.name in capsys.readouterr().out
    assert central_cli.main(["release", "publish", str(bundle), "--version", "0.9", "--repo", str(repo)]) == 2
    assert "a bundle is named kiosk-0.9-" in capsys.readouterr().err
    key_files = sorted((repo / "offline-root-keys").iterdir())
    assert central_cli.main(["release", "keys", "rotate", "snapshot", "--repo", str(repo),
                             "--root-key", str(key_files[0])]) == 0
    assert "waits in" in capsys.readouterr().out
    assert central_cli.main(["release", "keys", "sign-root", "--repo", str(repo), "--root-key", str(key_files[1])]) == 0
    assert "root version 2 published" in capsys.readouterr().out
    assert central_cli.main(["release", "refresh", "--repo", str(repo)]) == 0
    assert "nothing due" in capsys.readouterr().out
    assert central_cli.main(["release", "status", "--repo", str(repo)]) == 0
    status = capsys.readouterr().out
    assert "root: version 2" in status and "release %s: 4096 bytes" % bundle.name in status
    assert central_cli.main(["release", "status", "--repo", str(tmp_path / "nowhere")]) == 2
