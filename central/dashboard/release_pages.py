"""The dashboard's releases (central/releases/): the list of what the release repository publishes, and a
publisher's upload of a new bundle.

    GET  /dashboard/releases     every published release, the timestamp's expiry; the upload form
    POST /dashboard/releases     publish a bundle: multipart, the file and its version       (publisher)

Central serves releases only with `serve --release-repo DIR`; without one the page says so and has no form
(and there is no POST). The upload is streamed to a temporary directory inside DIR (never held in memory),
published with the repository's own `publish` (central/releases/repository.py: it copies the bundle under its
hash and signs targets, snapshot and timestamp), and removed whatever came of it. What the repository refuses
(a bundle misnamed, a version not newer, a version published already with other bytes, a file that is no tar)
is shown beside its field in the staff's language, the English detail beside it. Every publish is written in
the staff audit trail with the version and the SHA-256; a role without the permission is refused 403 before a
byte of the body is read (web.py's `allowed`), the form's token checked after the body is read (its `guard`).
"""

# No `from __future__ import annotations`: FastAPI reads the routes' Annotated aliases from the live
# annotations (as web.py).
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from central.dashboard import pages
from central.dashboard.audit import Outcome
from central.dashboard.roles import Permission, may
from central.dashboard.sessions import Staff
from central.dashboard.web import PREFIX, Action, Dashboard
from central.releases.repository import RESIGN_BEFORE, Published, ReleaseError, ReleaseRepository
from kiosk import wire

PAGE = PREFIX + "/releases"
ROLLOUTS = PREFIX + "/rollouts"
LARGEST_BUNDLE = 256 * 1024 * 1024
# For create_app's BodyLimit: this route's body is a bundle and a few fields; every other stays at 64 KB.
BODY_LIMITS = {PAGE: LARGEST_BUNDLE + 64 * 1024}
# The timestamp is signed again by `kiosk-central release refresh` (hourly) when less than this is left.
EXPIRY_WARNING = RESIGN_BEFORE["timestamp"]
_FIELD_CHARS = 256
_FIELDS = 8
_UPLOAD_PREFIX = ".upload."


@dataclass(frozen=True)
class Refusal:
    """What was refused, for the page: the kind (`releases.error.<code>`), the field it is shown beside
    ("bundle" or "version") and the English detail."""

    code: str
    field: str
    detail: str


@dataclass(frozen=True)
class Release:
    """One published release as the list shows it."""

    version: str
    platform: str
    target: str
    length: int
    sha256: str
    published_at: str | None     # when its bundle was stored (the file's time), ISO UTC


@dataclass
class Upload:
    """A multipart form as it was read: its text fields, the file's name as sent, and where its bytes went
    (None when it had no acceptable name, and its bytes were dropped)."""

    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    path: Path | None = None
    length: int = 0


class UploadError(Exception):
    """A body that is not the form (not multipart, malformed)."""


def releases_in(repository: ReleaseRepository) -> list[Release]:
    """The repository's releases, newest first within each platform."""
    found = []
    for target in reversed(repository.releases()):
        digest = target.hashes["sha256"]
        stored = repository.targets_dir / ("%s.%s" % (digest, target.path))
        try:
            at = datetime.fromtimestamp(stored.stat().st_mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        except OSError:
            at = None
        found.append(Release(target.custom["kiosk"]["version"], target.custom["kiosk"]["platform"], target.path,
                             target.length, digest, at))
    return found


async def receive_upload(request: Request, directory: Path) -> Upload:
    """The multipart form in `request`'s body, streamed: the one file part written to `directory` under its
    own name when that is a release bundle's name (else its bytes are dropped: nothing is written under a
    name a sender chose freely), the text fields kept (a few, short). UploadError for anything else."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UploadError("not a multipart form")
    upload = Upload()
    part: dict = {}
    header: dict[str, bytes] = {"field": b"", "value": b""}

    def on_part_begin() -> None:
        part.clear()
        part.update(headers={}, data=bytearray(), file=None, is_file=False)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        part["headers"][header["field"].lower()] = header["value"]
        header.update(field=b"", value=b"")

    def on_headers_finished() -> None:
        _disposition, params = parse_options_header(part["headers"].get(b"content-disposition", b""))
        part["name"] = params.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in params:
            return
        part["is_file"] = True
        if upload.filename is not None:
            return                                      # one file only: a second one is dropped
        upload.filename = params[b"filename"].decode("utf-8", "replace")
        if wire.RELEASE_TARGET.fullmatch(upload.filename):
            upload.path = directory / upload.filename
            part["file"] = upload.path.open("xb")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part["file"] is not None:
            part["file"].write(data[start:end])
            upload.length += end - start
        elif not part["is_file"] and len(part["data"]) <= _FIELD_CHARS * 4:
            part["data"] += data[start:end]

    def on_part_end() -> None:
        if part["file"] is not None:
            part["file"].close()
        elif not part["is_file"] and len(upload.fields) < _FIELDS:
            upload.fields.setdefault(part["name"], part["data"].decode("utf-8", "replace")[:_FIELD_CHARS])

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data, "on_part_end": on_part_end})
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError:
        raise UploadError("not a well-formed multipart form") from None
    finally:
        if part.get("file") is not None:
            part["file"].close()
    return upload


def checked(upload: Upload, version: str) -> Refusal | None:
    """What is wrong with the upload before the repository sees it: no file, a name that is not the bundle's of
    this version, nothing in it, no tar in it."""
    if not upload.filename:
        return Refusal("no_file", "bundle", "choose the bundle's file")
    match = wire.RELEASE_TARGET.fullmatch(upload.filename)
    if match is None or match["version"] != version:
        return Refusal("bad_name", "bundle", "%s: a bundle is named kiosk-%s-<platform>.tar (platform e.g. "
                       "linux_aarch64)" % (upload.filename, version or "<version>"))
    if upload.path is None or upload.length == 0:
        return Refusal("empty", "bundle", "%s is empty" % upload.filename)
    if not tarfile.is_tarfile(upload.path):
        return Refusal("not_tar", "bundle", "%s is not a tar archive" % upload.filename)
    return None


def refusal_of(repository: ReleaseRepository, exc: ReleaseError, target: str, version: str, platform: str
               ) -> Refusal:
    """The repository's refusal of `target`, by what the repository holds: the name published with other bytes,
    a version not newer than the newest for its platform, or something else (its detail says what)."""
    published = {release.target: release for release in releases_in(repository)}
    if target in published:
        return Refusal("other_bytes", "bundle", str(exc))
    newer = [release.version for release in published.values() if release.platform == platform
             and wire.release_version_key(release.version) >= wire.release_version_key(version)]
    return Refusal("not_newer" if newer else "failed", "version" if newer else "bundle", str(exc))


def install(app: FastAPI, release_repo: Path | str | None) -> None:
    """The releases' page on `app`, behind the dashboard `install`ed there already; its form only when central
    serves the release repository `release_repo`."""
    dashboard: Dashboard = app.state.dashboard
    SignedIn = Annotated[Staff, Depends(dashboard.signed_in)]
    publisher = dashboard.allowed(Permission.PUBLISH, "release.publish")
    guard = dashboard.guard(Permission.PUBLISH, "release.publish")

    def repository() -> ReleaseRepository | None:
        if release_repo is None:
            return None
        return ReleaseRepository(release_repo)

    def list_page(staff: Staff, *, refusal: Refusal | None = None, form: dict[str, str] | None = None,
                  published: str | None = None) -> Response:
        repo = repository()
        timestamp = next(state for state in repo.status() if state.role == "timestamp") if repo else None
        expires_soon = bool(timestamp) and timestamp.expires - datetime.now(timezone.utc) < EXPIRY_WARNING
        return pages.render("releases.html", staff.language, status_code=422 if refusal else 200, staff=staff,
                            page="releases", here=PAGE, served=repo is not None,
                            releases=releases_in(repo) if repo else [],
                            timestamp_expires=timestamp.expires.strftime("%Y-%m-%dT%H:%M:%SZ") if timestamp else None,
                            expires_soon=expires_soon, refusal=refusal, form=form or {}, published=published,
                            may_publish=may(staff.role, Permission.PUBLISH), rollouts=ROLLOUTS,
                            largest_mb=LARGEST_BUNDLE // (1024 * 1024))

    @app.get(PAGE, include_in_schema=False)
    def releases_list(staff: SignedIn, published: str | None = None) -> Response:
        return list_page(staff, published=published if published and len(published) <= 64 else None)

    if release_repo is None:
        return

    def publish_now(action: Action, upload: Upload) -> Response:
        repo = repository()
        version = action.form.get("version", "").strip()
        refusal = checked(upload, version)
        published: Published | None = None
        if refusal is None:
            try:
                published = repo.publish(upload.path, version)
            except ReleaseError as exc:
                match = wire.RELEASE_TARGET.fullmatch(upload.filename)
                refusal = refusal_of(repo, exc, upload.filename, version, match["platform"])
        if refusal is not None:
            action.done(Outcome.FAILED, "%s: %s" % (refusal.code, (upload.filename or "")[:80]))
            return list_page(action.staff, refusal=refusal, form={"version": version})
        action.done(Outcome.OK, "%s %s sha256 %s%s" % (published.version, published.platform, published.sha256,
                                                       "" if published.new else " (published already)"))
        return RedirectResponse("%s?%s" % (PAGE, urlencode({"published": published.target})), status_code=303)

    @app.post(PAGE, include_in_schema=False)
    async def publish(request: Request, _staff: Annotated[Staff, Depends(publisher)]) -> Response:
        directory = Path(tempfile.mkdtemp(dir=release_repo, prefix=_UPLOAD_PREFIX))
        try:
            try:
                upload = await receive_upload(request, directory)
            except UploadError:
                upload = Upload()
            # The form's token (and the session and role again), written in the audit trail when refused.
            action = await run_in_threadpool(guard, request, upload.fields)
            return await run_in_threadpool(publish_now, action, upload)
        finally:
            await run_in_threadpool(shutil.rmtree, directory, True)
