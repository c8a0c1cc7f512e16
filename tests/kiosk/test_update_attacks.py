"""Attacks on the kiosk's updates, each against a real repository served over loopback (central's /tuf, or
a mirror that misbehaves), each refused: the kiosk offers or downloads nothing of the attacker's, keeps the
version it runs, and keeps the metadata it trusted before as it was.

The attacker controls what is served (the served copy of the repository, `staff.served`) and, where a test
says so, holds some keys: the online snapshot and timestamp keys (central's machine broken into), an old
targets key rotated out, one root key of a threshold of two.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import MetaFile, TargetFile

from central.releases.repository import ReleaseRepository
from kiosk.updates import fetch
from tests.kiosk.updates_support import (RUNNING, Fault, Staff, central_releases, downloads,  # noqa: F401
                                         firmware_root, kiosk, kiosk_configuration, make_staff, mirror,
                                         mirrored_kiosk, served_dir, served_role, staff, trusted_metadata,
                                         trusted_role, write_signed)


def _meta(metadata_bytes: bytes, version: int) -> MetaFile:
    return MetaFile(version, len(metadata_bytes), {"sha256": hashlib.sha256(metadata_bytes).hexdigest()})


def _forge_release(staff: Staff, bundle: Path, version: str, *, targets_signers: list[CryptoSigner],
                   snapshot_signer: CryptoSigner, timestamp_signer: CryptoSigner) -> None:
    """The attacker's release in the served copy: the bundle, new targets listing it signed by
    `targets_signers`, and the snapshot and timestamp above it signed by the keys given."""
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    shutil.copyfile(bundle, staff.served / "targets" / ("%s.%s" % (digest, bundle.name)))
    targets = served_role(staff.served, "targets")
    targets.signed.version += 1
    targets.signed.targets[bundle.name] = TargetFile(
        bundle.stat().st_size, {"sha256": digest}, bundle.name,
        {"custom": {"kiosk": {"version": version, "platform": fetch.this_platform()}}})
    targets_data = write_signed(staff.served, targets, *targets_signers)
    snapshot = served_role(staff.served, "snapshot")
    snapshot.signed.version += 1
    snapshot.signed.meta["targets.json"] = _meta(targets_data, targets.signed.version)
    snapshot_data = write_signed(staff.served, snapshot, snapshot_signer)
    timestamp = served_role(staff.served, "timestamp")
    timestamp.signed.version += 1
    timestamp.signed.snapshot_meta = _meta(snapshot_data, snapshot.signed.version)
    write_signed(staff.served, timestamp, timestamp_signer)


def _trusted_releases(config) -> list[str]:
    return sorted(trusted_role(config, "targets").signed.targets)


# --- a target not signed by the targets role --------------------------------------------------------------

def test_release_listed_by_another_key_than_the_targets_role_is_refused(staff, kiosk) -> None:
    legitimate = staff.publish("0.2.0")
    assert fetch.check(kiosk, running=RUNNING).version == "0.2.0"
    # The attacker has broken into central: the online snapshot and timestamp keys, not the targets key.
    _forge_release(staff, staff.bundle("9.9.9"), "9.9.9", targets_signers=[CryptoSigner.generate_ed25519()],
                   snapshot_signer=staff.online_signer("snapshot"), timestamp_signer=staff.online_signer("timestamp"))

    with pytest.raises(fetch.UpdateRefused, match="UnsignedMetadataError"):
        fetch.check(kiosk, running=RUNNING)
    with pytest.raises(fetch.UpdateRefused):
        fetch.latest_release(kiosk, running=RUNNING)
    assert _trusted_releases(kiosk) == [legitimate.name]
    assert downloads(kiosk) == []


def test_release_signed_by_the_snapshot_key_instead_of_the_targets_key_is_refused(staff, kiosk) -> None:
    staff.publish("0.2.0")
    _forge_release(staff, staff.bundle("9.9.9"), "9.9.9", targets_signers=[staff.online_signer("snapshot")],
                   snapshot_signer=staff.online_signer("snapshot"), timestamp_signer=staff.online_signer("timestamp"))

    with pytest.raises(fetch.UpdateRefused, match="UnsignedMetadataError"):
        fetch.check(kiosk, running=RUNNING)
    assert "targets.json" not in trusted_metadata(kiosk)
    assert downloads(kiosk) == []


def test_bundle_swapped_on_the_server_is_refused_and_deleted(staff, kiosk) -> None:
    bundle = staff.publish("0.2.0")
    available = fetch.check(kiosk, running=RUNNING)
    # No key at all: the attacker swaps the bytes of the published bundle (same name, same length).
    (served,) = (staff.served / "targets").glob("*." + bundle.name)
    served.write_bytes(b"\x00" * bundle.stat().st_size)
    trusted_before = trusted_metadata(kiosk)

    with pytest.raises(fetch.UpdateRefused, match="not the signed ones"):
        fetch.download(kiosk, available)
    assert downloads(kiosk) == []                    # neither the bundle nor a partial file is kept
    assert trusted_metadata(kiosk) == trusted_before

    staff.sync()                                      # the genuine bundle served again: it is taken
    assert fetch.download(kiosk, available).path.read_bytes() == bundle.read_bytes()


# --- rollback ---------------------------------------------------------------------------------------

def test_rollback_to_an_older_repository_is_refused(staff, kiosk, tmp_path) -> None:
    staff.publish("0.2.0")
    older = tmp_path / "older-copy"
    shutil.copytree(staff.served, older)              # what the attacker kept of the repository then
    staff.publish("0.3.0")
    assert fetch.check(kiosk, running=RUNNING).version == "0.3.0"
    trusted_before = trusted_metadata(kiosk)

    shutil.rmtree(staff.served / "metadata")
    shutil.copytree(older / "metadata", staff.served / "metadata")    # targets, snapshot, timestamp of 0.2.0

    with pytest.raises(fetch.UpdateRefused, match="BadVersionNumberError"):
        fetch.check(kiosk, running=RUNNING)
    assert trusted_metadata(kiosk) == trusted_before

    staff.sync()
    assert fetch.check(kiosk, running=RUNNING).version == "0.3.0"


def test_rollback_of_the_snapshot_under_a_new_timestamp_is_refused(staff, kiosk) -> None:
    staff.publish("0.2.0")
    staff.publish("0.3.0")
    assert fetch.check(kiosk, running=RUNNING).version == "0.3.0"
    trusted_before = trusted_metadata(kiosk)
    # With the timestamp key, the attacker points a newer timestamp at the snapshot of 0.2.0.
    timestamp = served_role(staff.served, "timestamp")
    old_snapshot = (staff.served / "metadata" / "2.snapshot.json").read_bytes()
    timestamp.signed.version += 1
    timestamp.signed.snapshot_meta = _meta(old_snapshot, 2)
    write_signed(staff.served, timestamp, staff.online_signer("timestamp"))

    with pytest.raises(fetch.UpdateRefused, match="BadVersionNumberError"):
        fetch.check(kiosk, running=RUNNING)
    assert trusted_metadata(kiosk) == trusted_before


# --- a frozen timestamp -----------------------------------------------------------------------------

def test_frozen_repository_whose_timestamp_expired_is_refused(served_dir, central_releases, tmp_path) -> None:
    days_ago = lambda days: lambda: datetime.now(timezone.utc) - timedelta(days=days)  # noqa: E731
    # Made three days ago, the release published two days ago, and nobody signed the timestamp since.
    staff = make_staff(served_dir, tmp_path / "staff", now=days_ago(3))
    staff.repository = ReleaseRepository(staff.repository.directory, now=days_ago(2))
    staff.publish("0.2.0")
    kiosk = kiosk_configuration(tmp_path / "kiosk", central_releases.url + "/tuf", firmware_root(staff, tmp_path))

    with pytest.raises(fetch.UpdateRefused, match="ExpiredMetadataError"):
        fetch.check(kiosk, running=RUNNING)
    assert set(trusted_metadata(kiosk)) == {"root.json", "root_history/1.root.json"}

    staff.repository = ReleaseRepository(staff.repository.directory)   # today: the hourly refresh runs again
    assert [state.role for state in staff.repository.refresh()] == ["timestamp"]
    staff.sync()
    assert fetch.check(kiosk, running=RUNNING).version == "0.2.0"


# --- mix and match ----------------------------------------------------------------------------------

@pytest.mark.parametrize("swapped", ["3.targets.json", "3.snapshot.json"])
def test_metadata_mixed_from_two_releases_is_refused(staff, kiosk, tmp_path, swapped) -> None:
    staff.publish("0.2.0")
    older = {path.name: path.read_bytes() for path in (staff.served / "metadata").iterdir()}
    staff.publish("0.3.0")
    # The newest timestamp (and snapshot), with a file of the release before under the newest name.
    (staff.served / "metadata" / swapped).write_bytes(older[swapped.replace("3.", "2.")])

    with pytest.raises(fetch.UpdateRefused, match="LengthOrHashMismatchError|BadVersionNumberError"):
        fetch.check(kiosk, running=RUNNING)
    assert "targets.json" not in trusted_metadata(kiosk)
    assert downloads(kiosk) == []

    staff.sync()
    assert fetch.check(kiosk, running=RUNNING).version == "0.3.0"


# --- endless data -----------------------------------------------------------------------------------

def test_bundle_longer_than_its_signed_length_is_refused_and_nothing_kept(staff, mirror, mirrored_kiosk) -> None:
    bundle = staff.publish("0.2.0", size=256 * 1024)
    available = fetch.check(mirrored_kiosk, running=RUNNING)
    mirror.fault = Fault(endless=True)                # the bundle's bytes, then zeros without end

    with pytest.raises(fetch.UpdateRefused, match="more than the signed length"):
        fetch.download(mirrored_kiosk, available)
    assert downloads(mirrored_kiosk) == []

    mirror.fault = Fault()
    assert fetch.download(mirrored_kiosk, available).path.read_bytes() == bundle.read_bytes()


@pytest.mark.parametrize("endless", ["timestamp.json", "2.snapshot.json", "2.targets.json"])
def test_endless_metadata_is_refused(staff, mirror, mirrored_kiosk, endless) -> None:
    staff.publish("0.2.0")
    mirror.fault = Fault(endless_metadata=endless)

    with pytest.raises(fetch.UpdateRefused, match="DownloadLengthMismatchError"):
        fetch.check(mirrored_kiosk, running=RUNNING)
    assert "targets.json" not in trusted_metadata(mirrored_kiosk)


# --- a root signed below threshold ------------------------------------------------------------------

@pytest.mark.parametrize("signed_by", ["one root key", "the new root's keys only"])
def test_root_signed_below_threshold_is_refused(staff, kiosk, signed_by) -> None:
    legitimate = staff.publish("0.2.0")
    assert fetch.check(kiosk, running=RUNNING).version == "0.2.0"
    trusted_before = trusted_metadata(kiosk)
    # The attacker's root: every key theirs but the root key they stole, threshold 1; the release theirs.
    stolen = staff.root_signers[0]
    theirs = {role: CryptoSigner.generate_ed25519() for role in ("root", "targets", "snapshot", "timestamp")}
    root = served_role(staff.served, "root")
    root.signed.version += 1
    for role, signer in theirs.items():
        for keyid in list(root.signed.roles[role].keyids):
            if role != "root" or signed_by == "the new root's keys only" or keyid != stolen.public_key.keyid:
                root.signed.revoke_key(keyid, role)
        root.signed.add_key(signer.public_key, role)
    root.signed.roles["root"].threshold = 1
    signers = [stolen, theirs["root"]] if signed_by == "one root key" else [theirs["root"]]
    write_signed(staff.served, root, *signers)
    _forge_release(staff, staff.bundle("9.9.9"), "9.9.9", targets_signers=[theirs["targets"]],
                   snapshot_signer=theirs["snapshot"], timestamp_signer=theirs["timestamp"])

    with pytest.raises(fetch.UpdateRefused, match="UnsignedMetadataError"):
        fetch.check(kiosk, running=RUNNING)
    assert trusted_metadata(kiosk) == trusted_before
    assert trusted_role(kiosk, "root").signed.version == 1
    assert _trusted_releases(kiosk) == [legitimate.name]


# --- a key rotated out, still signing ---------------------------------------------------------------

@pytest.mark.parametrize("kiosk_followed_rotation", [True, False])
def test_targets_key_rotated_out_is_refused(staff, kiosk, kiosk_followed_rotation) -> None:
    old_targets_key = staff.online_signer("targets")
    change = staff.repository.rotate("targets", staff.root_signers[:2])
    assert change.published
    legitimate = staff.publish("0.2.0")
    if kiosk_followed_rotation:
        assert fetch.check(kiosk, running=RUNNING).version == "0.2.0"
    # The old targets key (rotated out after it leaked) lists the attacker's release.
    _forge_release(staff, staff.bundle("9.9.9"), "9.9.9", targets_signers=[old_targets_key],
                   snapshot_signer=staff.online_signer("snapshot"), timestamp_signer=staff.online_signer("timestamp"))

    with pytest.raises(fetch.UpdateRefused, match="UnsignedMetadataError"):
        fetch.check(kiosk, running=RUNNING)
    assert trusted_role(kiosk, "root").signed.version == 2
    if kiosk_followed_rotation:
        assert _trusted_releases(kiosk) == [legitimate.name]
    else:
        assert "targets.json" not in trusted_metadata(kiosk)
    assert downloads(kiosk) == []


def test_root_key_rotated_out_cannot_sign_the_next_root(staff, kiosk) -> None:
    first, second, third = staff.root_signers
    change = staff.repository.rotate("root", [first, second], old_keyid=first.public_key.keyid[:16],
                                     root_keys_dir=staff.work_dir / "offline-root-keys")
    assert change.published
    staff.sync()
    assert fetch.check(kiosk, running=RUNNING) is None
    trusted_before = trusted_metadata(kiosk)
    # Root version 3 by the key rotated out and one current key: a threshold of the old root's keys, not
    # of version 2's, which no longer names the first key.
    root = served_role(staff.served, "root")
    root.signed.version += 1
    attacker = CryptoSigner.generate_ed25519()
    for keyid in list(root.signed.roles["targets"].keyids):
        root.signed.revoke_key(keyid, "targets")
    root.signed.add_key(attacker.public_key, "targets")
    write_signed(staff.served, root, first, second)

    with pytest.raises(fetch.UpdateRefused, match="UnsignedMetadataError"):
        fetch.check(kiosk, running=RUNNING)
    assert trusted_metadata(kiosk) == trusted_before
    assert trusted_role(kiosk, "root").signed.version == 2
