"""`kiosk update run` (kiosk/updates/install_updater.py): the offered release installed, the settled
bundles deleted, the outcomes reported, whatever happened. Central's rollout and TUF are stood in
for at kiosk/updates/offer.py's functions (their own tests run them against central on loopback);
the installer and the versions are real (tests/release_bundles.py)."""

from __future__ import annotations

import shutil

import pytest

from kiosk.updates import fetch, guard, install, install_updater, offer
from tests import release_bundles
from tests.kiosk.updates_support import kiosk_configuration


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    return release_bundles.installed_root(tmp_path_factory.getbasetemp())


@pytest.fixture
def config(tmp_path):
    (tmp_path / "root.json").write_text("{}")            # the firmware's root: never read here
    return kiosk_configuration(tmp_path, "https://central.test/tuf", tmp_path / "root.json")


class Rollout:
    """What offer.py would have done: the release it offers (downloaded already), and what it was told."""

    def __init__(self, monkeypatch, release: fetch.Release | None = None, error: Exception | None = None) -> None:
        self.release, self.error = release, error
        self.failed: list[tuple[str, str]] = []
        self.calls: list[str] = []           # "offer" and "report", in the order the updater made them
        monkeypatch.setattr(offer, "offered_release", self.offered_release)
        monkeypatch.setattr(offer, "install_failed", lambda _config, version, reason="install_failed":
                            self.failed.append((version, reason)))
        monkeypatch.setattr(offer, "report_outcomes", self.report_outcomes)

    def offered_release(self, _config, *, root):
        self.calls.append("offer")
        if self.error is not None:
            raise self.error
        return self.release

    def report_outcomes(self, _config, *, root):
        self.calls.append("report")
        return 0


# What became of earlier installs goes to central before it is asked for an offer (a failed trial has
# paused its rollout by then, so the version is not staged again), and what this run did goes after.
ONE_RUN = ["report", "offer", "report"]


def downloaded(device, config, version: str) -> fetch.Release:
    folder = fetch.UpdateSettings.of(config).download_dir
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(device.bundles.paths[version], folder)
    return fetch.Release(version, folder / device.bundles.paths[version].name, 0, "")


def test_the_offered_release_is_installed_and_its_bundle_kept_until_it_proves_itself(device, config, monkeypatch):
    root = release_bundles.fresh_root(device)
    release_bundles.bring(device, "0.2.0")
    release = downloaded(device, config, "0.2.0")
    rollout = Rollout(monkeypatch, release)
    said: list[str] = []
    assert install_updater.run(config, root, say=said.append) == 0
    assert install.status(root)["pending"] == "0.2.0" and said[-1].startswith("installed 0.2.0")
    assert release.path.exists() and rollout.calls == ONE_RUN    # kept: its trial may fail and be tried again

    layout = guard.Layout(root)                                  # ... the guard switched, and it proved itself
    with guard.locked(layout):
        state = guard.load_state(layout)
        state.update(pending=None, proven=state["proven"] + ["0.2.0"])
        guard.save_state(layout, state)
    rollout.release = None
    assert install_updater.run(config, root, say=said.append) == 0
    assert not release.path.exists() and rollout.calls == ONE_RUN * 2


def test_a_release_the_installer_refuses_is_a_failure_for_its_rollout(device, config, monkeypatch, tmp_path):
    root = release_bundles.fresh_root(device)
    release = downloaded(device, config, "0.2.0")
    release.path.write_bytes(b"not a bundle at all")
    rollout = Rollout(monkeypatch, release)
    assert install_updater.run(config, root, say=lambda _line: None) == 1
    assert rollout.failed == [("0.2.0", "install_failed")] and rollout.calls == ONE_RUN
    assert install.status(root)["pending"] is None and guard.Layout(root).current_version() == "0.1.0"


def test_a_repository_tuf_refuses_is_recorded_for_central(device, config, monkeypatch):
    root = release_bundles.fresh_root(device)
    rollout = Rollout(monkeypatch, error=fetch.UpdateRefused("targets: signature below threshold"))
    assert install_updater.run(config, root, say=lambda _line: None) == 1
    (event,) = install.events(root)
    assert (event["code"], event["version"]) == ("update.refused", None)
    assert event["reason"] == "the release repository was refused: targets: signature below threshold"
    assert rollout.calls == ONE_RUN and guard.Layout(root).current_version() == "0.1.0"


def test_nothing_offered_is_nothing_to_do_but_report(device, config, monkeypatch):
    root = release_bundles.fresh_root(device)
    rollout = Rollout(monkeypatch)
    said: list[str] = []
    assert install_updater.run(config, root, say=said.append) == 0
    assert said == ["kiosk update run: no newer release is offered to this kiosk"] and rollout.calls == ONE_RUN
