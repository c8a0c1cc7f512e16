"""The dashboard's releases (central/dashboard/release_pages.py): a publisher uploads a bundle, which the
release repository signs and a kiosk's TUF client then verifies and downloads; what the repository refuses
(a misnamed bundle, a version not newer, a version published with other bytes, a file that is no tar) is
shown beside its field in Arabic and English, and leaves nothing behind; an operator or a viewer sees the
list and no form, and is refused 403 (audited); a form without its token is refused; the upload's route
takes up to its own limit while every other route stays at 64 KB. In-process (Starlette's TestClient) on
central's own app, and over HTTP for the streamed upload and the kiosk's fetch; in a real browser:
test_release_pages_browser.py."""

from __future__ import annotations

import hashlib
import html
import io
import re
import tarfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from starlette.testclient import TestClient

from central.app import create_app
from central.dashboard import release_pages, totp
from central.dashboard.accounts import StaffAccounts
from central.dashboard.roles import Role
from central.db import Database
from central.releases.repository import ReleaseRepository
from central.server import start_in_thread
from kiosk.updates import fetch
from tests.central.test_dashboard import PASSWORD, Site, audit_rows, hidden
from tests.kiosk.updates_support import kiosk_configuration

PLATFORM = fetch.this_platform()
TIMEOUT_S = 30


class RealClock:
    """The dashboard of central's own app counts time for real: the codes are taken now."""

    @property
    def now(self) -> datetime:
        return datetime.now(UTC)


def bundle(version: str, text: str = "the firmware", platform: str = PLATFORM) -> tuple[str, bytes]:
    """A small tar named as `make release` names a bundle (TUF moves the bytes only)."""
    data = text.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        member = tarfile.TarInfo("kiosk/VERSION")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    return "kiosk-%s-%s.tar" % (version, platform), buffer.getvalue()


def words(page: str) -> str:
    """What a page says, without its markup."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def leftovers(repository: ReleaseRepository) -> list[str]:
    """Uploads not cleaned away: temporary directories in the repository, stray files beside its bundles."""
    return sorted(path.name for path in [*repository.directory.iterdir(), *repository.targets_dir.glob(".*")]
                  if path.name.startswith((".upload.", ".publish.")))


@pytest.fixture
def repository(tmp_path: Path) -> ReleaseRepository:
    repository, _root_keys = ReleaseRepository.create(tmp_path / "release-repo", tmp_path / "offline")
    return repository


def central_site(db_url: str, release_repo: Path | None, **options) -> Iterator[Site]:
    app = create_app(db_url, release_repo=release_repo, **options)
    with TestClient(app, base_url="https://testserver") as client:
        yield Site(client, app.state.dashboard, RealClock(), {})


@pytest.fixture
def site(tmp_path: Path, repository: ReleaseRepository) -> Iterator[Site]:
    """Central's own app (its body limits and all), serving `repository`."""
    yield from central_site("sqlite:///%s" % (tmp_path / "central.sqlite3"), repository.directory)


def signed_in(site: Site, username: str, role: Role) -> str:
    """`username` signed in; the releases page as they see it."""
    site.add(username, role)
    site.sign_in(username)
    return site.client.get(release_pages.PAGE).text


def upload(site: Site, page: str, version: str, name: str, content: bytes, **overrides: str):
    data = {"csrf": hidden(page), "version": version, **overrides}
    return site.client.post(release_pages.PAGE, data=data, files={"bundle": (name, content, "application/x-tar")},
                            follow_redirects=False)


def release_audit(site: Site) -> list[tuple]:
    return [row for row in audit_rows(site.client.app.state.database) if row[1] == "release.publish"]


def test_a_publisher_publishes_a_bundle_sees_it_listed_and_a_kiosk_verifies_it(site, repository, tmp_path):
    page = signed_in(site, "nour", Role.PUBLISHER)
    assert 'id="publish-form"' in page and "لم يُنشر أي إصدار بعد" in words(page)
    name, content = bundle("0.2.0")
    digest = hashlib.sha256(content).hexdigest()
    answer = upload(site, page, "0.2.0", name, content)
    assert answer.status_code == 303 and answer.headers["location"].startswith(release_pages.PAGE + "?published=")
    listed = site.client.get(answer.headers["location"] + "&lang=en").text
    said = words(listed)
    assert "Published: %s" % name in said
    assert re.search(r"0\.2\.0\s+%s\s+%s\s+%s" % (PLATFORM, "{:,}".format(len(content)), digest[:16]), said)
    assert "expiry-warning" not in listed                     # the timestamp was signed just now
    assert release_audit(site)[-1][:4] == ("nour", "release.publish", None, "ok")
    assert "0.2.0" in release_audit(site)[-1][4] and digest in release_audit(site)[-1][4]
    assert leftovers(repository) == []

    # The link starts a rollout of it: the rollout form filled in with its version and platform.
    link = html.unescape(re.search(r'class="start-rollout" href="([^"]+)"', listed).group(1))
    form = site.client.get(link).text
    assert re.search(r'id="version" name="version"[^>]* value="0.2.0"', form)
    assert re.search(r'id="platform" name="platform"[^>]* value="%s"' % PLATFORM, form)

    # A kiosk whose firmware trusts this repository's root verifies the release and downloads its bytes.
    trusted_root = tmp_path / "firmware-root.json"
    trusted_root.write_bytes((repository.metadata_dir / "root.json").read_bytes())
    running = start_in_thread("sqlite:///%s" % (tmp_path / "serving.sqlite3"), release_repo=repository.directory)
    try:
        kiosk = kiosk_configuration(tmp_path / "kiosk", running.url + "/tuf", trusted_root)
        available = fetch.check(kiosk, running="0.1.0")
        assert (available.version, available.target, available.sha256, available.newer) == \
               ("0.2.0", name, digest, True)
        assert fetch.download(kiosk, available).path.read_bytes() == content
    finally:
        running.stop()


@pytest.mark.parametrize(("refusal", "field", "arabic", "english"), [
    ("bad_name", "bundle", "اسم الملف ليس اسم حزمة هذا الإصدار", "The file's name is not this version's"),
    ("other_version", "bundle", "اسم الملف ليس اسم حزمة هذا الإصدار", "The file's name is not this version's"),
    ("not_tar", "bundle", "الملف ليس أرشيف tar", "The file is not a tar archive"),
    ("not_newer", "version", "الإصدار ليس أحدث من المنشور", "This version is not newer than one"),
    ("other_bytes", "bundle", "هذا الإصدار منشور من قبل بمحتوى آخر", "This version is published already"),
    ("no_file", "bundle", "اختر ملف الحزمة", "Choose the bundle's file"),
])
def test_what_the_repository_refuses_is_shown_beside_its_field_and_leaves_nothing(site, repository, refusal, field,
                                                                                 arabic, english):
    page = signed_in(site, "nour", Role.PUBLISHER)
    first_name, first = bundle("0.3.0")
    assert upload(site, page, "0.3.0", first_name, first).status_code == 303
    stored = sorted(path.name for path in repository.targets_dir.iterdir())
    targets_version = repository.current("targets").signed.version
    version, (name, content) = {
        "bad_name": ("0.4.0", ("firmware.tar", bundle("0.4.0")[1])),
        "other_version": ("0.4.0", bundle("0.5.0")),
        "not_tar": ("0.4.0", (bundle("0.4.0")[0], b"MZ not a tar at all" * 64)),
        "not_newer": ("0.2.0", bundle("0.2.0")),
        "other_bytes": ("0.3.0", bundle("0.3.0", "other firmware")),
        "no_file": ("0.4.0", ("", b"")),
    }[refusal]
    for language, expected in (("ar", arabic), ("en", english)):
        site.client.get(release_pages.PAGE + "?lang=" + language)
        answer = upload(site, page, version, name, content)
        assert answer.status_code == 422
        beside = re.search(r'<p class="warn-text field-error" role="alert" id="error-%s">(.*?)</p>' % field,
                           answer.text, re.S)
        assert beside and expected in words(beside.group(1))
        assert 'value="%s"' % version in answer.text              # the version typed is kept
    assert sorted(path.name for path in repository.targets_dir.iterdir()) == stored
    assert repository.current("targets").signed.version == targets_version
    assert leftovers(repository) == []
    codes = {"other_version": "bad_name"}
    assert [row[3] for row in release_audit(site)] == ["ok", "failed", "failed"]
    assert release_audit(site)[-1][4].startswith(codes.get(refusal, refusal) + ":")


def test_the_same_bundle_again_changes_nothing(site, repository):
    page = signed_in(site, "nour", Role.PUBLISHER)
    name, content = bundle("0.2.0")
    assert upload(site, page, "0.2.0", name, content).status_code == 303
    targets_version = repository.current("targets").signed.version
    assert upload(site, page, "0.2.0", name, content).status_code == 303
    assert repository.current("targets").signed.version == targets_version
    assert release_audit(site)[-1][4].endswith("(published already)") and leftovers(repository) == []


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_an_operator_or_a_viewer_sees_the_releases_and_may_not_publish(site, repository, role):
    publisher = signed_in(site, "nour", Role.PUBLISHER)
    name, content = bundle("0.2.0")
    assert upload(site, publisher, "0.2.0", name, content).status_code == 303
    site.client.cookies.clear()
    page = signed_in(site, "sami", role)
    assert "0.2.0" in words(page) and 'id="publish-form"' not in page and "start-rollout" not in page
    name, content = bundle("0.3.0")
    answer = upload(site, site.client.get("/dashboard").text, "0.3.0", name, content)
    assert answer.status_code == 403 and "لا تسمح صلاحيتك بهذا الإجراء" in answer.text
    assert release_audit(site)[-1] == ("sami", "release.publish", None, "refused", "role=%s" % role.value)
    assert [release.version for release in release_pages.releases_in(repository)] == ["0.2.0"]
    assert leftovers(repository) == []


def test_a_form_without_its_token_is_refused(site, repository):
    page = signed_in(site, "nour", Role.PUBLISHER)
    name, content = bundle("0.2.0")
    answer = upload(site, page, "0.2.0", name, content, csrf="forged")
    assert answer.status_code == 403 and "انتهت صلاحية النموذج" in answer.text
    assert release_audit(site)[-1] == ("nour", "release.publish", None, "refused", "csrf")
    assert repository.releases() == [] and leftovers(repository) == []
    answer = site.client.post(release_pages.PAGE, data={"csrf": hidden(page), "version": "0.2.0"},
                              follow_redirects=False)         # not multipart: no token read
    assert answer.status_code == 403 and repository.releases() == []


def test_the_upload_route_alone_takes_more_than_64_kb(site, repository):
    page = signed_in(site, "nour", Role.PUBLISHER)
    name, content = bundle("0.2.0", "x" * 300_000)
    assert len(content) > 300_000 and upload(site, page, "0.2.0", name, content).status_code == 303
    over = {"csrf": hidden(page), "version": "0.2.0", "kind": "percent", "value": "1" + "0" * 70_000}
    answer = site.client.post("/dashboard/rollouts", data=over, follow_redirects=False)
    assert (answer.status_code, answer.json()["reason"]) == (413, "body_too_large")
    declared = site.client.post(release_pages.PAGE, content=b"x" * 16, follow_redirects=False,
                                headers={"content-length": str(release_pages.BODY_LIMITS[release_pages.PAGE] + 1),
                                         "content-type": "multipart/form-data; boundary=x"})
    assert declared.status_code == 413


def test_the_timestamp_near_its_end_is_warned_of(tmp_path):
    thirteen_hours_ago = datetime.now(UTC) - timedelta(hours=13)
    repository, _keys = ReleaseRepository.create(tmp_path / "release-repo", tmp_path / "offline",
                                                 now=lambda: thirteen_hours_ago)
    for site in central_site("sqlite:///%s" % (tmp_path / "central.sqlite3"), repository.directory):
        page = signed_in(site, "sami", Role.VIEWER)
        warning = re.search(r'id="expiry-warning">(.*?)</p>', page, re.S)
        assert warning and "kiosk-central release refresh" in words(warning.group(1))
        assert "خلال أقل من ١٢ ساعة" in words(warning.group(1))


def test_without_a_release_repository_the_page_says_so_and_has_no_form(tmp_path):
    for site in central_site("sqlite:///%s" % (tmp_path / "central.sqlite3"), None):
        page = signed_in(site, "nour", Role.PUBLISHER)
        assert 'id="not-served"' in page and "publish-form" not in page
        name, content = bundle("0.2.0")
        assert upload(site, page, "0.2.0", name, content).status_code == 405


# --- over HTTP: the upload streamed, and cut at its route's limit -----------------------------------------

def http_sign_in(url: str, accounts: StaffAccounts, username: str, role: Role) -> requests.Session:
    secret = accounts.add(username, role, PASSWORD).secret
    session = requests.Session()
    form = session.get(url + "/dashboard/login", timeout=TIMEOUT_S).text
    session.post(url + "/dashboard/login", data={"csrf": hidden(form), "username": username, "password": PASSWORD,
                                                 "lang": "en"}, timeout=TIMEOUT_S)
    form = session.get(url + "/dashboard/second-factor", timeout=TIMEOUT_S).text
    answer = session.post(url + "/dashboard/second-factor",
                          data={"csrf": hidden(form), "code": totp.code_at(secret, time.time())}, timeout=TIMEOUT_S)
    assert answer.url.endswith("/dashboard")
    return session


def test_an_upload_over_its_routes_limit_is_cut_off_with_413_and_leaves_nothing(tmp_path, repository):
    limit = 256 * 1024
    db_url = "sqlite:///%s" % (tmp_path / "central.sqlite3")
    running = start_in_thread(db_url, release_repo=repository.directory, body_limits={release_pages.PAGE: limit})
    try:
        session = http_sign_in(running.url, StaffAccounts(Database(db_url)), "nour", Role.PUBLISHER)
        token = hidden(session.get(running.url + release_pages.PAGE, timeout=TIMEOUT_S).text)
        boundary = "release-upload"

        def chunked(version: str, name: str, content: bytes) -> Iterator[bytes]:
            """The form as a browser sends it, in pieces and without a Content-Length: counted as it streams."""
            body = ("--{b}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{t}\r\n"
                    "--{b}\r\nContent-Disposition: form-data; name=\"version\"\r\n\r\n{v}\r\n"
                    "--{b}\r\nContent-Disposition: form-data; name=\"bundle\"; filename=\"{n}\"\r\n"
                    "Content-Type: application/x-tar\r\n\r\n").format(b=boundary, t=token, v=version, n=name).encode()
            body += content + ("\r\n--%s--\r\n" % boundary).encode()
            for start in range(0, len(body), 16 * 1024):
                yield body[start:start + 16 * 1024]

        def post(version: str, text: str) -> requests.Response:
            return session.post(running.url + release_pages.PAGE, data=chunked(version, *bundle(version, text)),
                                headers={"Content-Type": "multipart/form-data; boundary=%s" % boundary},
                                timeout=TIMEOUT_S, allow_redirects=False)

        assert post("0.2.0", "x" * (limit // 2)).status_code == 303      # within the limit, streamed: published
        answer = post("0.3.0", "x" * (limit * 2))
        assert (answer.status_code, answer.json()["reason"]) == (413, "body_too_large")
        assert [release.version for release in release_pages.releases_in(repository)] == ["0.2.0"]
        assert leftovers(repository) == []
    finally:
        running.stop()
