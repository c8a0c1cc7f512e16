"""`kiosk-central release ...`: central staff sign and publish the kiosk's releases.

    kiosk-central release keys init DIR [--root-keys 3] [--threshold 2] [--root-keys-dir OUT]
    kiosk-central release keys rotate ROLE --root-key PEM [--root-key PEM ...] [--old KEYID --root-keys-dir OUT]
    kiosk-central release keys sign-root --root-key PEM [--root-key PEM ...]
    kiosk-central release keys renew-root --root-key PEM [--root-key PEM ...]
    kiosk-central release publish BUNDLE --version V
    kiosk-central release refresh
    kiosk-central release status
    (each takes --repo DIR, default ./release-repo)
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime
from pathlib import Path

from central.releases import keys
from central.releases.repository import (DEFAULT_ROOT_KEYS, DEFAULT_THRESHOLD, EXPIRY, ReleaseError,
                                         ReleaseRepository, RootChange)

DEFAULT_REPO = Path("release-repo")

RELEASE_HELP = """\
Signed updates (The Update Framework). `keys init DIR` makes the repository:
the root keys (Ed25519, one file each, written to --root-keys-dir: central
staff take each to its holder's offline media and delete it here), an online
key each for targets, snapshot and timestamp (DIR/keys, 0600), and root
version 1 signed by every root key. DIR/metadata/root.json is the trust anchor
a firmware build ships. `publish` adds a bundle (kiosk-<version>-<platform>.tar)
and signs new targets, snapshot and timestamp. The timestamp lasts a day:
run `refresh` every hour (a systemd timer or cron), which signs it again when
less than 12 hours are left (and the snapshot and targets when they near
their end). A key is replaced with `keys rotate ROLE`, which writes a new root
signed by the root keys given; with fewer than the threshold it waits in
DIR/pending until other key holders add theirs with `keys sign-root`. The root
lasts a year: `keys renew-root` before then (`status` and `refresh` warn 60
days ahead). Exit 0 done (a root waiting for signatures included: the output
says how many are missing), 2 refused."""


def _repository(args: argparse.Namespace) -> ReleaseRepository:
    return ReleaseRepository(args.repo)


def _root_signers(paths: list[Path]) -> list:
    return [keys.load(path) for path in paths]


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _root_change(change: RootChange, repository: ReleaseRepository) -> None:
    if change.new_root_key is not None:
        print("new root key: %s (take it to its holder's offline media, then delete it here)" % change.new_root_key)
    if change.published:
        print("root version %d published: %s" % (change.version, repository.path_of("root", change.version)))
        return
    print("root version %d waits in %s for %d more signature(s) of the previous root's keys and %d of its own: "
          "kiosk-central release keys sign-root --repo %s --root-key PEM"
          % (change.version, repository.pending_dir, change.missing_previous, change.missing_new,
             repository.directory))


def _init(args: argparse.Namespace) -> int:
    root_keys_dir = args.root_keys_dir or args.directory / "offline-root-keys"
    repository, key_files = ReleaseRepository.create(args.directory, root_keys_dir, root_keys=args.root_keys,
                                                     threshold=args.threshold)
    print("release repository %s: root version 1, %d root keys, any %d of which sign a root"
          % (repository.directory, args.root_keys, args.threshold))
    for number, path in enumerate(key_files, 1):
        print("root key %d of %d: %s (offline: to its holder's media, then delete it here)"
              % (number, len(key_files), path))
    print("online keys: %s (targets.pem, snapshot.pem, timestamp.pem; 0600)" % repository.keys_dir)
    print("trust anchor for the firmware: %s" % (repository.metadata_dir / "root.json"))
    print("run `kiosk-central release refresh --repo %s` every hour: the timestamp lasts %d hours"
          % (repository.directory, EXPIRY["timestamp"].total_seconds() // 3600))
    return 0


def _rotate(args: argparse.Namespace) -> int:
    repository = _repository(args)
    change = repository.rotate(args.role, _root_signers(args.root_key), old_keyid=args.old,
                               root_keys_dir=args.root_keys_dir)
    print("%s: a new key in root version %d" % (args.role, change.version))
    _root_change(change, repository)
    return 0


def _sign_root(args: argparse.Namespace) -> int:
    repository = _repository(args)
    _root_change(repository.sign_root(_root_signers(args.root_key)), repository)
    return 0


def _renew_root(args: argparse.Namespace) -> int:
    repository = _repository(args)
    _root_change(repository.renew_root(_root_signers(args.root_key)), repository)
    return 0


def _publish(args: argparse.Namespace) -> int:
    repository = _repository(args)
    published = repository.publish(args.bundle, args.version)
    if not published.new:
        print("%s: published already (targets version %d), nothing changed" % (published.target,
                                                                                 published.targets_version))
        return 0
    print("published %s: version %s for %s, %d bytes, sha256 %s; targets version %d"
          % (published.target, published.version, published.platform, published.length, published.sha256,
             published.targets_version))
    return 0


def _refresh(args: argparse.Namespace) -> int:
    repository = _repository(args)
    signed = repository.refresh()
    for state in signed:
        print("%s: version %d, expires %s" % (state.role, state.version, _when(state.expires)))
    if not signed:
        print("nothing due: every role has time left")
    _warn_root(repository)
    return 0


def _status(args: argparse.Namespace) -> int:
    repository = _repository(args)
    for state in repository.status():
        print("%s: version %d, expires %s" % (state.role, state.version, _when(state.expires)))
    for target in repository.releases():
        print("release %s: %d bytes, sha256 %s" % (target.path, target.length, target.hashes["sha256"]))
    pending = repository.pending_root()
    if pending is not None:
        print("root version %d waits for signatures in %s" % (pending.signed.version, repository.pending_dir))
    _warn_root(repository)
    return 0


def _warn_root(repository: ReleaseRepository) -> None:
    expires = repository.root_expires_soon()
    if expires is not None:
        print("warning: the root expires %s: renew it with the offline keys (keys renew-root)" % _when(expires),
              file=sys.stderr)


def _run(handler):
    def run(args: argparse.Namespace) -> int:
        logging.getLogger("tuf").setLevel(logging.WARNING)    # python-tuf says each missing signature at INFO
        try:
            return handler(args)
        except (ReleaseError, keys.KeyFileError, FileExistsError) as exc:
            print("kiosk-central release: %s" % exc, file=sys.stderr)
            return 2
    return run


def add_parser(commands: argparse._SubParsersAction) -> None:
    """`release` and its commands, under `kiosk-central`."""
    release = commands.add_parser("release", help="signed updates: keys, publish, refresh",
                                  description=RELEASE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = release.add_subparsers(dest="action", required=True)

    def with_repo(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
        command.add_argument("--repo", type=Path, default=DEFAULT_REPO,
                             help="the release repository (default %(default)s)")
        return command

    def with_root_keys(command: argparse.ArgumentParser, *, required: bool = True) -> argparse.ArgumentParser:
        command.add_argument("--root-key", type=Path, action="append", default=[], required=required,
                             metavar="PEM", help="a root key's file (again for more)")
        return with_repo(command)

    key_actions = actions.add_parser("keys", help="the signing keys and the root").add_subparsers(
        dest="keys_action", required=True)
    init = key_actions.add_parser("init", help="a new repository: root keys (offline), online keys, root v1")
    init.add_argument("directory", type=Path, metavar="DIR")
    init.add_argument("--root-keys", type=int, default=DEFAULT_ROOT_KEYS, metavar="N",
                      help="how many root keys (default %(default)s)")
    init.add_argument("--threshold", type=int, default=DEFAULT_THRESHOLD, metavar="T",
                      help="how many of them sign a root (default %(default)s)")
    init.add_argument("--root-keys-dir", type=Path, default=None, metavar="OUT",
                      help="where the root keys are written (default DIR/offline-root-keys)")
    init.set_defaults(run=_run(_init))
    rotate = with_root_keys(key_actions.add_parser(
        "rotate", help="replace a role's key: a new root signed by the root keys given"))
    rotate.add_argument("role", choices=keys.ROLES)
    rotate.add_argument("--old", metavar="KEYID", help="root: the root key leaving (its id, or the id's start)")
    rotate.add_argument("--root-keys-dir", type=Path, default=None, metavar="OUT",
                        help="root: where the new root key is written")
    rotate.set_defaults(run=_run(_rotate))
    with_root_keys(key_actions.add_parser("sign-root", help="add root keys' signatures to the root waiting for them")
                   ).set_defaults(run=_run(_sign_root))
    with_root_keys(key_actions.add_parser("renew-root", help="the same root for another year, as a new version")
                   ).set_defaults(run=_run(_renew_root))

    publish = with_repo(actions.add_parser("publish", help="sign and publish a release bundle"))
    publish.add_argument("bundle", type=Path, metavar="BUNDLE",
                         help="the bundle, named kiosk-<version>-<platform>.tar (make release)")
    publish.add_argument("--version", required=True, help="its version (as in its name)")
    publish.set_defaults(run=_run(_publish))
    with_repo(actions.add_parser("refresh", help="sign the timestamp again (and what else nears its end): hourly")
              ).set_defaults(run=_run(_refresh))
    with_repo(actions.add_parser("status", help="each role's version and expiry, the releases, a root waiting")
              ).set_defaults(run=_run(_status))
