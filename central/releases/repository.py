"""The release repository on central staff's machine, written with python-tuf's Metadata API.

Consistent snapshots throughout: every root, targets and snapshot version is a
file of its own (`N.<role>.json`) that is never written again, and a bundle's
file is named by its SHA-256, so a kiosk reading the repository while staff
publish sees the old set or the new one, never a mix. `timestamp.json` is the
one file replaced, last, and atomically.

Roles and their lifetimes (EXPIRY): root a year, signed by a threshold of
offline keys; targets 90 days, snapshot a week, timestamp a day, each signed by
its online key in DIR/keys. `refresh` re-signs an online role when less than
RESIGN_BEFORE of its life is left: run it every hour (the timestamp then gets
a new version about twice a day, and an hour of failed refreshes costs
nothing), and at least every 12 hours, or every kiosk refuses the repository
once the timestamp expires, as it must.

A new root (a key rotated, the root renewed) is first written to DIR/pending
with the signatures of the root keys at hand; it is published when it carries
a threshold of signatures of the previous root's keys and of its own
(`sign-root` adds them, one key holder after another). The online roles whose
keys it changes are signed again at once with their new keys.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import MetaFile, Metadata, Root, Snapshot, TargetFile, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

from central.releases import keys
from kiosk import wire
from kiosk.atomic_file import write_atomically

EXPIRY = {"root": timedelta(days=365), "targets": timedelta(days=90), "snapshot": timedelta(days=7),
          "timestamp": timedelta(days=1)}
# `refresh` signs an online role again when less than this is left of its life.
RESIGN_BEFORE = {"targets": timedelta(days=30), "snapshot": timedelta(days=3), "timestamp": timedelta(hours=12)}
# `refresh` and `status` warn when the root expires within this: staff renew it with the offline keys.
ROOT_WARNING = timedelta(days=60)
DEFAULT_ROOT_KEYS = 3
DEFAULT_THRESHOLD = 2
_PRETTY = JSONSerializer(compact=False)
_VERSIONED = re.compile(r"([1-9][0-9]{0,9})\.(root|targets|snapshot)\.json")
_COPY_CHUNK = 1024 * 1024


class ReleaseError(Exception):
    """What central staff must put right, in one line (a bundle misnamed, a key missing, a root unsigned)."""


@dataclass(frozen=True)
class RootChange:
    """A new root: published, or waiting in DIR/pending for `missing_previous` signatures of the previous
    root's keys and `missing_new` of its own."""

    version: int
    published: bool
    missing_previous: int = 0
    missing_new: int = 0
    new_root_key: Path | None = None     # a rotation of a root key: the new key's file (to take offline)


@dataclass(frozen=True)
class Published:
    target: str
    version: str
    platform: str
    length: int
    sha256: str
    targets_version: int
    new: bool                            # False: the same bundle was published already


@dataclass(frozen=True)
class RoleState:
    role: str
    version: int
    expires: datetime


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _meta(version: int, data: bytes) -> MetaFile:
    """What snapshot says of a targets file, and timestamp of a snapshot file: version, length and hash,
    so that a kiosk takes no other file under that name, nor a longer one."""
    return MetaFile(version=version, length=len(data), hashes={"sha256": hashlib.sha256(data).hexdigest()})


class ReleaseRepository:
    """The repository in `directory` (made by `create`). `now` is the clock every expiry is counted from."""

    def __init__(self, directory: Path | str, *, now: Callable[[], datetime] = _utc_now,
                 _new: bool = False) -> None:
        self.directory = Path(directory)
        self.metadata_dir = self.directory / "metadata"
        self.targets_dir = self.directory / "targets"
        self.keys_dir = self.directory / "keys"
        self.pending_dir = self.directory / "pending"
        self._now = now
        if not _new and not (self.metadata_dir / "1.root.json").is_file():
            raise ReleaseError("%s: no release repository here (kiosk-central release keys init %s)"
                               % (self.directory, self.directory))

    # --- creating -------------------------------------------------------------------------------------

    @classmethod
    def create(cls, directory: Path | str, root_keys_dir: Path | str, *, root_keys: int = DEFAULT_ROOT_KEYS,
               threshold: int = DEFAULT_THRESHOLD,
               now: Callable[[], datetime] = _utc_now) -> tuple[ReleaseRepository, list[Path]]:
        """A new repository in `directory`: `root_keys` root keys written to `root_keys_dir` (returned: staff
        take them offline), any `threshold` of which sign a root; an online key for each other role; root
        version 1 signed by every root key, and empty targets, snapshot and timestamp."""
        directory, root_keys_dir = Path(directory), Path(root_keys_dir)
        if not 1 <= threshold <= root_keys <= 16:
            raise ReleaseError("a threshold of 1 to --root-keys root keys (at most 16), not %d of %d"
                               % (threshold, root_keys))
        if (directory / "metadata").exists() or (directory / "keys").exists():
            raise ReleaseError("%s holds a release repository already" % directory)
        start = now().replace(microsecond=0)
        root_signers = [keys.generate() for _ in range(root_keys)]
        online = {role: keys.generate() for role in keys.ONLINE_ROLES}
        root = Root(expires=start + EXPIRY["root"], consistent_snapshot=True)
        for signer in root_signers:
            root.add_key(signer.public_key, keys.ROOT)
        root.roles[keys.ROOT].threshold = threshold
        for role, signer in online.items():
            root.add_key(signer.public_key, role)
        root_metadata = Metadata(root)
        for signer in root_signers:
            root_metadata.sign(signer, append=True)
        key_files = [keys.write(root_keys_dir / ("root-%s.pem" % keys.short_id(signer)), signer)
                     for signer in root_signers]
        for role, signer in online.items():
            keys.write(directory / "keys" / ("%s.pem" % role), signer)
        for sub in ("metadata", "targets"):
            (directory / sub).mkdir(mode=0o755, parents=True, exist_ok=True)
        repository = cls(directory, now=now, _new=True)
        repository._write_root(root_metadata)
        targets = Metadata(Targets(expires=start + EXPIRY["targets"]))
        targets_data = repository._sign_and_write("targets", targets)
        snapshot = Metadata(Snapshot(expires=start + EXPIRY["snapshot"]))
        snapshot.signed.meta["targets.json"] = _meta(1, targets_data)
        snapshot_data = repository._sign_and_write("snapshot", snapshot)
        timestamp = Metadata(Timestamp(expires=start + EXPIRY["timestamp"], snapshot_meta=_meta(1, snapshot_data)))
        repository._sign_and_write("timestamp", timestamp)
        return repository, key_files

    # --- reading --------------------------------------------------------------------------------------

    def versions(self, role: str) -> list[int]:
        """The versions of `role` (root, targets or snapshot) written, oldest first."""
        found = []
        for path in self.metadata_dir.iterdir():
            match = _VERSIONED.fullmatch(path.name)
            if match and match[2] == role:
                found.append(int(match[1]))
        return sorted(found)

    def path_of(self, role: str, version: int | None = None) -> Path:
        if role == "timestamp":
            return self.metadata_dir / "timestamp.json"
        return self.metadata_dir / ("%d.%s.json" % (version or self.versions(role)[-1], role))

    def current(self, role: str) -> Metadata:
        """The newest metadata of `role`, as published."""
        return Metadata.from_file(str(self.path_of(role)))

    def status(self) -> list[RoleState]:
        return [RoleState(role, metadata.signed.version, metadata.signed.expires)
                for role in keys.ROLES for metadata in (self.current(role),)]

    def releases(self) -> list[TargetFile]:
        """The bundles published, oldest version first."""
        targets = self.current("targets").signed.targets.values()
        return sorted(targets, key=lambda target: (target.custom["kiosk"]["platform"],
                                                   wire.release_version_key(target.custom["kiosk"]["version"])))

    def pending_root(self) -> Metadata | None:
        paths = sorted(self.pending_dir.glob("*.root.json")) if self.pending_dir.is_dir() else []
        return Metadata.from_file(str(paths[-1])) if paths else None

    def root_expires_soon(self) -> datetime | None:
        """The root's expiry when it is within ROOT_WARNING, else None."""
        expires = self.current("root").signed.expires
        return expires if expires - self._now() < ROOT_WARNING else None

    # --- online roles: publish and refresh ----------------------------------------------------------

    def publish(self, bundle: Path | str, version: str) -> Published:
        """The bundle added as a target (its length, SHA-256 and {"kiosk": {"version", "platform"}}) and
        new targets, snapshot and timestamp. The bundle is named kiosk-<version>-<platform>.tar with this
        version, newer than every version published for its platform (a release goes forward only: old code
        goes out again under a new version). Publishing the same bundle again changes nothing."""
        bundle = Path(bundle)
        match = wire.RELEASE_TARGET.fullmatch(bundle.name)
        if match is None or match["version"] != version:
            raise ReleaseError("%s: a bundle is named kiosk-%s-<platform>.tar (platform e.g. linux_aarch64)"
                               % (bundle.name, version))
        if not bundle.is_file():
            raise ReleaseError("%s: no such file" % bundle)
        platform = match["platform"]
        name = bundle.name
        with self._locked():
            targets = self.current("targets")
            stored_path, length, digest, created = self._store_bundle(bundle, name)
            known = targets.signed.targets.get(name)
            if known is not None and known.hashes.get("sha256") == digest:
                return Published(name, version, platform, length, digest, targets.signed.version, new=False)
            if known is not None:
                if created:
                    stored_path.unlink()
                raise ReleaseError("version %s for %s is published already with other content: publish a new "
                                   "version" % (version, platform))
            newest = self._newest_version(targets.signed, platform)
            if newest is not None and wire.release_version_key(version) <= wire.release_version_key(newest):
                if created:
                    stored_path.unlink()
                raise ReleaseError("version %s is not newer than %s, published for %s already: a release goes "
                                   "forward only (publish the old code under a new version)"
                                   % (version, newest, platform))
            targets.signed.targets[name] = TargetFile(length, {"sha256": digest}, name,
                                                      {"custom": {"kiosk": {"version": version,
                                                                            "platform": platform}}})
            self._commit(targets=targets)
            return Published(name, version, platform, length, digest, targets.signed.version, new=True)

    def refresh(self) -> list[RoleState]:
        """Each online role whose life ends within RESIGN_BEFORE signed again with a new version (and the
        roles above it: snapshot and timestamp after targets, timestamp after snapshot); what was signed."""
        with self._locked():
            now = self._now()
            due = [role for role in keys.ONLINE_ROLES
                   if self.current(role).signed.expires - now < RESIGN_BEFORE[role]]
            if "targets" in due:
                self._commit(targets=self.current("targets"))
            elif "snapshot" in due:
                self._commit(snapshot=True)
            elif "timestamp" in due:
                self._commit()
            signed = (["targets", "snapshot", "timestamp"] if "targets" in due else
                      ["snapshot", "timestamp"] if "snapshot" in due else ["timestamp"] if due else [])
            return [state for state in self.status() if state.role in signed]

    # --- root: rotate, renew, sign --------------------------------------------------------------------

    def rotate(self, role: str, root_signers: Sequence[CryptoSigner], *, old_keyid: str | None = None,
               root_keys_dir: Path | None = None) -> RootChange:
        """A new root in which `role`'s key is replaced by a new one: for an online role, its only key (the
        new one waits in DIR/pending until the root is published); for root, the key whose id starts with
        `old_keyid`, the new key written to `root_keys_dir`. Signed by `root_signers` (and the new root key),
        published when that makes a threshold of the previous root's keys and of the new root's."""
        if role not in keys.ROLES:
            raise ReleaseError("no role %r: one of %s" % (role, ", ".join(keys.ROLES)))
        new_signer = keys.generate()
        current = self.current("root").signed
        if role == keys.ROOT:
            if not old_keyid or root_keys_dir is None:
                raise ReleaseError("rotating a root key needs --old KEYID (the key leaving) and --root-keys-dir")
            leaving = [keyid for keyid in current.roles[keys.ROOT].keyids if keyid.startswith(old_keyid.lower())]
            if len(leaving) != 1:
                raise ReleaseError("--old %s names %s of the root keys (%s)" % (
                    old_keyid, "none" if not leaving else "more than one",
                    ", ".join(keys.short_id(keyid) for keyid in current.roles[keys.ROOT].keyids)))
        elif old_keyid is not None:
            raise ReleaseError("--old goes with rotating a root key only")

        def edit(root: Root) -> None:
            for keyid in list(root.roles[role].keyids) if role != keys.ROOT else leaving:
                root.revoke_key(keyid, role)
            root.add_key(new_signer.public_key, role)

        with self._locked():
            self._refuse_second_pending()
            # The new key is written before any root names it, and removed again when no root was proposed.
            if role == keys.ROOT:
                key_file = keys.write(Path(root_keys_dir) / ("root-%s.pem" % keys.short_id(new_signer)), new_signer)
            else:
                key_file = keys.write(self.pending_dir / "keys" / ("%s.pem" % role), new_signer)
            try:
                change = self._propose_root(edit, [*root_signers, new_signer] if role == keys.ROOT else root_signers)
            except BaseException:
                if self.pending_root() is None:
                    key_file.unlink(missing_ok=True)
                raise
            return dataclasses.replace(change, new_root_key=key_file) if role == keys.ROOT else change

    def renew_root(self, root_signers: Sequence[CryptoSigner]) -> RootChange:
        """The same root for another year, under a new version."""
        with self._locked():
            self._refuse_second_pending()
            return self._propose_root(lambda _root: None, root_signers)

    def sign_root(self, root_signers: Sequence[CryptoSigner]) -> RootChange:
        """The pending root signed by `root_signers` too; published once it has its threshold."""
        with self._locked():
            pending = self.pending_root()
            if pending is None:
                raise ReleaseError("no root is waiting for signatures in %s" % self.pending_dir)
            current = self.current("root")
            for signer in root_signers:
                self._add_root_signature(pending, current, signer)
            self._write_pending(pending)
            return self._publish_root_if_signed()

    # --- inside ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One change at a time (a publish while the hourly refresh runs waits for it)."""
        with (self.directory / ".lock").open("a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            yield

    def _expiry(self, role: str) -> datetime:
        return self._now().replace(microsecond=0) + EXPIRY[role]

    def _online_signer(self, role: str, root: Root) -> CryptoSigner:
        """The key root names for `role`: in DIR/keys, or in DIR/pending when a new root brought it."""
        for path in (self.keys_dir / ("%s.pem" % role), self.pending_dir / "keys" / ("%s.pem" % role)):
            if path.is_file():
                signer = keys.load(path)
                if signer.public_key.keyid in root.roles[role].keyids:
                    return signer
        raise ReleaseError("no key for %s in %s that root version %d names" % (role, self.keys_dir, root.version))

    def _sign_and_write(self, role: str, metadata: Metadata) -> bytes:
        """`metadata` signed by its role's online key, checked against the root, and written; its bytes."""
        root = self.current("root").signed
        metadata.signatures.clear()
        metadata.sign(self._online_signer(role, root))
        if not root.get_verification_result(role, metadata.signed_bytes, metadata.signatures):
            raise ReleaseError("%s does not verify against root version %d" % (role, root.version))
        data = metadata.to_bytes(_PRETTY)
        path = self.path_of(role, metadata.signed.version)
        if role != "timestamp" and path.exists():
            raise ReleaseError("%s exists already: a version is never written twice" % path)
        write_atomically(path, data, mode=0o644)
        return data

    def _commit(self, *, targets: Metadata | None = None, snapshot: bool = False) -> None:
        """New versions of `targets` (edited by the caller) and of the roles above it: snapshot when targets
        changed or `snapshot` is asked, then always timestamp, written last."""
        snapshot_metadata = self.current("snapshot") if targets is not None or snapshot else None
        if targets is not None:
            targets.signed.version += 1
            targets.signed.expires = self._expiry("targets")
            snapshot_metadata.signed.meta["targets.json"] = _meta(targets.signed.version,
                                                                  self._sign_and_write("targets", targets))
        if snapshot_metadata is not None:
            snapshot_metadata.signed.version += 1
            snapshot_metadata.signed.expires = self._expiry("snapshot")
            snapshot_data = self._sign_and_write("snapshot", snapshot_metadata)
        else:
            snapshot_metadata = self.current("snapshot")
            snapshot_data = self.path_of("snapshot").read_bytes()
        timestamp = self.current("timestamp")
        timestamp.signed.version += 1
        timestamp.signed.expires = self._expiry("timestamp")
        timestamp.signed.snapshot_meta = _meta(snapshot_metadata.signed.version, snapshot_data)
        self._sign_and_write("timestamp", timestamp)

    def _store_bundle(self, bundle: Path, name: str) -> tuple[Path, int, str, bool]:
        """The bundle copied to DIR/targets/<sha256>.<name> (hashed as it is copied); path, length, hash, and
        whether the file is new (False: the same bytes were there)."""
        self.targets_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        digest = hashlib.sha256()
        length = 0
        handle, temporary = tempfile.mkstemp(dir=self.targets_dir, prefix=".publish.")
        try:
            os.fchmod(handle, 0o644)
            with os.fdopen(handle, "wb") as out, bundle.open("rb") as source:
                while chunk := source.read(_COPY_CHUNK):
                    digest.update(chunk)
                    length += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if length == 0:
                raise ReleaseError("%s is empty" % bundle)
            stored = self.targets_dir / ("%s.%s" % (digest.hexdigest(), name))
            created = not stored.exists()
            if created:
                os.replace(temporary, stored)
            else:
                os.unlink(temporary)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return stored, length, digest.hexdigest(), created

    @staticmethod
    def _newest_version(targets: Targets, platform: str) -> str | None:
        versions = [target.custom["kiosk"]["version"] for target in targets.targets.values()
                    if target.custom["kiosk"]["platform"] == platform]
        return max(versions, key=wire.release_version_key, default=None)

    def _write_root(self, root: Metadata) -> None:
        data = root.to_bytes(_PRETTY)
        path = self.path_of("root", root.signed.version)
        if path.exists():
            raise ReleaseError("%s exists already: a root version is never written twice" % path)
        write_atomically(path, data, mode=0o644)
        write_atomically(self.metadata_dir / "root.json", data, mode=0o644)

    def _refuse_second_pending(self) -> None:
        pending = self.pending_root()
        if pending is not None:
            raise ReleaseError("root version %d waits for signatures already (kiosk-central release keys "
                               "sign-root); sign it, or remove %s to drop it" % (pending.signed.version,
                                                                                  self.pending_dir))

    def _propose_root(self, edit: Callable[[Root], None], root_signers: Sequence[CryptoSigner]) -> RootChange:
        current = self.current("root")
        proposed = Metadata.from_bytes(current.to_bytes())
        proposed.signed.version += 1
        proposed.signed.expires = self._expiry("root")
        edit(proposed.signed)
        proposed.signatures.clear()
        for signer in root_signers:
            self._add_root_signature(proposed, current, signer)
        self._write_pending(proposed)
        return self._publish_root_if_signed()

    @staticmethod
    def _add_root_signature(proposed: Metadata, current: Metadata, signer: CryptoSigner) -> None:
        keyid = signer.public_key.keyid
        if keyid not in current.signed.roles[keys.ROOT].keyids and keyid not in proposed.signed.roles[keys.ROOT].keyids:
            raise ReleaseError("key %s is not a root key of root version %d or %d" % (
                keys.short_id(keyid), current.signed.version, proposed.signed.version))
        proposed.sign(signer, append=True)

    def _write_pending(self, proposed: Metadata) -> None:
        self.pending_dir.mkdir(mode=0o700, exist_ok=True)
        write_atomically(self.pending_dir / ("%d.root.json" % proposed.signed.version), proposed.to_bytes(_PRETTY),
                         mode=0o644)

    def _publish_root_if_signed(self) -> RootChange:
        proposed = self.pending_root()
        current = self.current("root")
        result = proposed.signed.get_root_verification_result(current.signed, proposed.signed_bytes,
                                                              proposed.signatures)
        if not result.verified:
            return RootChange(proposed.signed.version, False, result.first.missing, result.second.missing)
        self._write_root(proposed)
        changed = [role for role in keys.ONLINE_ROLES
                   if set(proposed.signed.roles[role].keyids) != set(current.signed.roles[role].keyids)]
        # The online roles the new root gives new keys, signed with them now (the new key still in pending/).
        if "targets" in changed:
            self._commit(targets=self.current("targets"))
        elif "snapshot" in changed:
            self._commit(snapshot=True)
        elif "timestamp" in changed:
            self._commit()
        for role in changed:
            keys.move(self.pending_dir / "keys" / ("%s.pem" % role), self.keys_dir / ("%s.pem" % role))
        shutil.rmtree(self.pending_dir)
        return RootChange(proposed.signed.version, True)
