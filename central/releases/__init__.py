"""Signed releases of the kiosk's firmware: a repository of The Update Framework (python-tuf).

Central staff keep the repository in one directory (`kiosk-central release ...`,
`central/releases/cli.py`); central serves its `metadata/` and `targets/`
read-only under /tuf (`serving.py`), and kiosks read it with python-tuf's
ngclient (`kiosk/updates/`).

    DIR/metadata/   N.root.json, N.targets.json, N.snapshot.json, timestamp.json (consistent snapshots),
                    and root.json, a copy of the newest root, which a firmware build ships as its trust anchor
    DIR/targets/    <sha256>.kiosk-<version>-<platform>.tar, the bundles, named by their hash
    DIR/keys/       the online keys of targets, snapshot and timestamp (0600): never served
    DIR/pending/    a new root waiting for a threshold of root signatures, and the keys it brings

The root keys are made apart (`keys init --root-keys-dir`) and kept offline by
central staff: they sign a new root only (a key rotated, the root renewed).
"""
