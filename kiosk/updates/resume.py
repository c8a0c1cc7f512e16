"""A bundle's download that survives a cut: it goes on from the partial file, and is verified before use.

The bytes go to `<download dir>/<sha256>.<target>.part` (named by the hash the
signed metadata gives, so a partial file only ever goes on with the same
bundle). A cut (the link drops, a timeout, the kiosk restarts) keeps what
arrived, and the next try asks for the rest with an HTTP Range from the
partial file's length; a server that ignores the Range and sends the whole
bundle again is taken from the start. Never more than the signed length is
written: a server that offers or sends more (endless data) is refused and the
partial file deleted. Once the length is reached the file is checked against
the signed length and hash, and only then takes its final name; a file that
does not match is deleted, and the next try starts over.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import requests
from tuf.api.exceptions import LengthOrHashMismatchError
from tuf.api.metadata import TargetFile

from kiosk.atomic_file import sync_directory
from kiosk.updates.errors import UpdateRefused, UpdateUnreachable
from kiosk.updates.fetcher import CHUNK_BYTES, PinnedSession

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".part"
# What a cut costs at most after a power cut: the partial file is synced every this many bytes.
SYNC_EVERY_BYTES = 8 * 1024 * 1024
_CONTENT_RANGE = re.compile(r"bytes ([0-9]+)-([0-9]+)/([0-9]+|\*)")


def partial_path(download_dir: Path, target: TargetFile) -> Path:
    return download_dir / ("%s.%s%s" % (target.hashes["sha256"], target.path, PARTIAL_SUFFIX))


def partial_length(download_dir: Path, target: TargetFile) -> int:
    try:
        return partial_path(download_dir, target).stat().st_size
    except FileNotFoundError:
        return 0


def download(session: PinnedSession, url: str, target: TargetFile, download_dir: Path) -> Path:
    """The bundle `target` at `url`, whole and verified, at `<download_dir>/<target name>`.
    UpdateUnreachable when the download was cut (what arrived is kept for the next try), UpdateRefused
    when the server sends more than the signed length or other bytes than the signed ones."""
    partial = partial_path(download_dir, target)
    received = partial.stat().st_size if partial.exists() else 0
    if received > target.length:
        partial.unlink()
        received = 0
    if received < target.length:
        received = _receive(session, url, target, partial, received)
    if received < target.length:
        raise UpdateUnreachable("the download stopped at %d of %d bytes; it goes on from there next time"
                                % (received, target.length))
    try:
        with partial.open("rb") as file:
            target.verify_length_and_hashes(file)
    except LengthOrHashMismatchError:
        partial.unlink()
        log.error("updates.bundle_refused target=%s reason=hash_mismatch", target.path)
        raise UpdateRefused("%s: the bytes downloaded are not the signed ones (length or SHA-256): deleted"
                            % target.path) from None
    final = download_dir / target.path
    os.replace(partial, final)
    sync_directory(download_dir)
    return final


def _receive(session: PinnedSession, url: str, target: TargetFile, partial: Path, received: int) -> int:
    """Bytes from `received` on appended to `partial`; the length it has when the answer ends or is cut."""
    headers = {"Range": "bytes=%d-" % received} if received else None
    try:
        response = session.get(url, headers=headers)
    except requests.RequestException as exc:
        raise UpdateUnreachable("the release repository cannot be reached (%s)" % type(exc).__name__) from None
    with response:
        if received and response.status_code == 206:
            _check_content_range(response, received, target, partial)
        elif response.status_code == 200:
            received = 0                       # the whole bundle again: taken from its first byte
        else:
            if received and response.status_code == 416:
                partial.unlink()               # the server will not go on from there: the next try starts over
            raise UpdateUnreachable("HTTP %d for %s" % (response.status_code, target.path))
        offered = response.headers.get("Content-Length")
        if offered is not None and offered.isdigit() and received + int(offered) > target.length:
            _refuse_excess(partial, target, "offers %d bytes" % (received + int(offered)))
        if received:
            log.info("updates.download_resumed target=%s from=%d length=%d", target.path, received, target.length)
        with open(partial, "r+b" if received else "wb") as file:
            file.seek(received)
            file.truncate()
            unsynced = 0
            try:
                for chunk in response.iter_content(CHUNK_BYTES):
                    if received + len(chunk) > target.length:
                        file.close()
                        _refuse_excess(partial, target, "sends more")
                    file.write(chunk)
                    received += len(chunk)
                    unsynced += len(chunk)
                    if unsynced >= SYNC_EVERY_BYTES:
                        file.flush()
                        os.fsync(file.fileno())
                        unsynced = 0
            except (requests.RequestException, ConnectionError, TimeoutError) as exc:
                log.warning("updates.download_cut target=%s received=%d length=%d error=%s", target.path,
                            received, target.length, type(exc).__name__)
            finally:
                if not file.closed:
                    file.flush()
                    os.fsync(file.fileno())
    return received


def _check_content_range(response: requests.Response, received: int, target: TargetFile, partial: Path) -> None:
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    if match is None or int(match[1]) != received or (match[3] != "*" and int(match[3]) != target.length):
        partial.unlink()                       # the next try starts over rather than ask the same again
        raise UpdateUnreachable("the server answered the Range for %s with another part (%s)"
                                % (target.path, response.headers.get("Content-Range", "none")[:60]))


def _refuse_excess(partial: Path, target: TargetFile, what: str) -> None:
    partial.unlink(missing_ok=True)
    log.error("updates.bundle_refused target=%s reason=too_long", target.path)
    raise UpdateRefused("%s: the server %s than the signed length of %d bytes: refused, nothing kept"
                        % (target.path, what, target.length))
