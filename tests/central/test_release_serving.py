"""Central serves the release repository read-only under /tuf (`serve --release-repo DIR`): the metadata
and the bundles as they are on disk, a bundle's Range honoured, and nothing else of the directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from central.releases.repository import ReleaseRepository
from central.server import RunningCentral, start_in_thread
from kiosk import wire


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> ReleaseRepository:
    work = tmp_path_factory.mktemp("releases")
    repository, _ = ReleaseRepository.create(work / "repo", work / "offline")
    bundle = work / wire.release_target("0.2.0", "linux_aarch64")
    bundle.write_bytes(os.urandom(100_000))
    repository.publish(bundle, "0.2.0")
    return repository


@pytest.fixture(scope="module")
def central(repository: ReleaseRepository, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCentral]:
    db = tmp_path_factory.mktemp("central") / "central.sqlite3"
    running = start_in_thread("sqlite:///%s" % db, release_repo=repository.directory)
    yield running
    running.stop()


def _get(central: RunningCentral, path: str, **headers: str) -> requests.Response:
    return requests.get(central.url + path, headers=headers, timeout=10, allow_redirects=False)


def _bundle_file(repository: ReleaseRepository) -> Path:
    (path,) = repository.targets_dir.iterdir()
    return path


def test_metadata_is_served_as_written_and_never_cached(central, repository) -> None:
    for name in ("1.root.json", "root.json", "2.targets.json", "2.snapshot.json", "timestamp.json"):
        response = _get(central, "%s/%s" % (wire.TUF_METADATA, name))
        assert response.status_code == 200, name
        assert response.content == (repository.metadata_dir / name).read_bytes()
        assert response.headers["Cache-Control"] == "no-cache"


def test_bundle_is_served_whole_and_by_range(central, repository) -> None:
    path = _bundle_file(repository)
    data = path.read_bytes()
    url = "%s/%s" % (wire.TUF_TARGETS, path.name)

    whole = _get(central, url)
    part = _get(central, url, Range="bytes=60000-")

    assert (whole.status_code, whole.content) == (200, data)
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert (part.status_code, part.content) == (206, data[60000:])
    assert part.headers["Content-Range"] == "bytes 60000-99999/100000"
    assert _get(central, url, Range="bytes=200000-").status_code == 416


@pytest.mark.parametrize("path", [
    wire.TUF_METADATA + "/", wire.TUF_TARGETS + "/", wire.TUF,       # no listing
    wire.TUF_METADATA + "/3.targets.json",                           # a version not (yet) written
    wire.TUF_METADATA + "/..%2Fkeys%2Ftargets.pem",                  # the online keys stay put
    wire.TUF_METADATA + "/%2E%2E/keys/targets.pem",
    wire.TUF + "/keys/targets.pem",
    wire.TUF_METADATA + "/.lock",
    wire.TUF_TARGETS + "/kiosk-0.2.0-linux_aarch64.tar",              # a bundle only under its hash
    wire.TUF_TARGETS + "/.publish.x",
])
def test_nothing_but_the_metadata_and_bundles_is_served(central, repository, path) -> None:
    response = _get(central, path)
    assert response.status_code == 404
    assert b"PRIVATE KEY" not in response.content


def test_a_link_planted_in_the_repository_is_not_followed(central, repository) -> None:
    secret = repository.keys_dir / "timestamp.pem"
    planted = repository.metadata_dir / "9.root.json"
    planted.symlink_to(secret)
    try:
        assert _get(central, wire.TUF_METADATA + "/9.root.json").status_code == 404
    finally:
        planted.unlink()


def test_without_a_release_repository_there_is_no_tuf(tmp_path) -> None:
    running = start_in_thread("sqlite:///%s" % (tmp_path / "central.sqlite3"))
    try:
        assert _get(running, wire.TUF_METADATA + "/timestamp.json").status_code == 404
    finally:
        running.stop()


def test_serving_a_directory_that_holds_no_repository_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="holds no release repository"):
        start_in_thread("sqlite:///%s" % (tmp_path / "central.sqlite3"), release_repo=tmp_path / "empty")
