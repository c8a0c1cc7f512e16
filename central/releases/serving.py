"""The release repository served read-only to the kiosks, as plain static files.

    GET /tuf/metadata/<name>    N.root.json, N.targets.json, N.snapshot.json, timestamp.json, root.json
    GET /tuf/targets/<name>     <sha256>.kiosk-<version>-<platform>.tar, with HTTP Range (a cut download
                                resumes where it stopped)

Only these names are served, each checked against its pattern before the disk
is looked at, from these two directories and nothing under them (no listing,
no other file of the repository: its keys and pending root stay put), and only
a regular file (not a link that would lead out). Everything else is 404. The
metadata is public by design (TUF trusts signatures, not secrecy) and so is a
bundle, so no device signature is asked: the kiosk's ngclient reads these
paths like any mirror. Metadata may not be cached (the timestamp changes every
few hours); a bundle, named by its hash, never changes.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse, Response

from kiosk import wire

_METADATA = re.compile(r"(?:[1-9][0-9]{0,9}\.)?(?:root|targets|snapshot|timestamp)\.json")
_TARGET = re.compile(r"[0-9a-f]{64}\.(?P<target>[A-Za-z0-9._-]{1,128})")
_NOT_FOUND = {"status": "error", "reason": "not_found"}


def _regular_file(directory: Path, name: str) -> tuple[Path, os.stat_result] | None:
    path = directory / name
    try:
        info = os.lstat(path)
    except (OSError, ValueError):
        return None
    return (path, info) if stat.S_ISREG(info.st_mode) else None


def router(repository: Path | str) -> APIRouter:
    """The /tuf routes over the repository directory `repository` (its metadata/ and targets/); ValueError
    when it holds no release repository (`kiosk-central release keys init` makes one)."""
    metadata_dir = Path(repository) / "metadata"
    targets_dir = Path(repository) / "targets"
    if not (metadata_dir / "1.root.json").is_file():
        raise ValueError("%s holds no release repository (kiosk-central release keys init %s)"
                         % (repository, repository))
    routes = APIRouter()

    @routes.get(wire.TUF_METADATA + "/{name}")
    def metadata(name: str) -> Response:
        found = _regular_file(metadata_dir, name) if _METADATA.fullmatch(name) else None
        if found is None:
            return JSONResponse(_NOT_FOUND, status_code=404)
        path, info = found
        return FileResponse(path, stat_result=info, media_type="application/json",
                            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    @routes.get(wire.TUF_TARGETS + "/{name}")
    def target(name: str) -> Response:
        match = _TARGET.fullmatch(name)
        found = (_regular_file(targets_dir, name)
                 if match is not None and wire.RELEASE_TARGET.fullmatch(match["target"]) else None)
        if found is None:
            return JSONResponse(_NOT_FOUND, status_code=404)
        path, info = found
        return FileResponse(path, stat_result=info, media_type="application/octet-stream",
                            headers={"Cache-Control": "public, max-age=31536000, immutable",
                                     "X-Content-Type-Options": "nosniff"})

    return routes
