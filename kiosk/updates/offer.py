"""Which release this kiosk may install (the one its staged rollout offers it), and what became of it.

    offered_release(config) -> fetch.Release | None   central's offer, downloaded and verified through TUF
    report_outcomes(config) -> int                     what became of offered releases, told to central
    install_failed(config, version, reason)            an offered release that could not be installed

The background updater (`kiosk update run`, kiosk-update.service) calls them: `offered_release` in
place of installing the newest release published, `report_outcomes` at the end of every run.

Central chooses, TUF proves. The kiosk asks central which version it may install (GET wire.ROLLOUT,
signed with its device key; central/rollouts.py answers from the rollouts whose cohorts hold this
kiosk); then it downloads exactly that release through TUF (`fetch.named_release`), which verifies it
against the signed metadata as any release. Central's answer cannot make the kiosk take a release the
targets role did not sign, nor go down a version: a version that is not newer than the running one is
refused here (a rollback reaches a kiosk as the old code published under a newer version).

What became of it is the installer's and the guard's record (`update-events.json` under the install
root, kiosk/updates/guard.py): staged (installed), installed (proven), rolled_back and refused
(failed). Each event of a version that came from a rollout is sent once (POST wire.ROLLOUT_REPORT),
with the rollout's id and an id of its own (a digest of the event), so that sending it again after a
lost answer counts once. Which rollout offered which version, and which events central holds, are
kept in `rollout.json` beside the updater's downloads. Everything here blocks on the network and the
disk: the updater's process, never the UI thread. Nothing here raises because central cannot be
reached: the next run asks again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from kiosk import wire
from kiosk.atomic_file import write_atomically
from kiosk.central_client import signed_by
from kiosk.config import KioskConfig
from kiosk.provisioning import load_device_key
from kiosk.updates import fetch, guard
from kiosk.updates.install import refusal

log = logging.getLogger(__name__)

ROOT = guard.ROOT
MEMORY = "rollout.json"
REPORTED_KEPT = 500              # event ids central holds, remembered (the guard keeps 100 events)
INSTALL_FAILED = "update.install_failed"     # this module's own event: an offered release was not installed
REASON = re.compile(r"[a-z][a-z0-9_]{0,63}")
CONNECT_TIMEOUT_S = 3.0
# The guard's event codes as a rollout's outcomes, with the reason code a failure carries.
OUTCOMES: dict[str, tuple[wire.RolloutOutcome, str | None]] = {
    guard.STAGED: (wire.RolloutOutcome.INSTALLED, None),
    guard.INSTALLED: (wire.RolloutOutcome.PROVEN, None),
    guard.ROLLED_BACK: (wire.RolloutOutcome.FAILED, "rolled_back"),
    guard.REFUSED: (wire.RolloutOutcome.FAILED, "refused_after_strikes"),
    INSTALL_FAILED: (wire.RolloutOutcome.FAILED, "install_failed"),     # or the event's own reason code
}


@dataclass(frozen=True)
class Offer:
    version: str
    rollout_id: str


class _Central:
    """Central's rollout calls, signed with this kiosk's device key (kiosk.central_client.signed_by), with
    central's CA pinned when the kiosk pins it, a timeout on each, no retry and no redirect."""

    def __init__(self, config: KioskConfig) -> None:
        key = load_device_key(config.central.device_key_path)
        self.usable = key is not None
        self._base = config.central.url.rstrip("/")
        ca_file = config.central.ca_file
        self._verify: str | bool = os.fspath(ca_file) if ca_file is not None else True
        timeout_s = config.central.timeout_s
        self._timeout = (min(CONNECT_TIMEOUT_S, timeout_s), timeout_s)
        self._http = requests.Session()
        self._http.headers["User-Agent"] = "citizen-kiosk/%s" % config.device_id
        if key is not None:
            self._http.auth = signed_by(config.device_id, key)

    def call(self, method: str, path: str, **options: Any) -> requests.Response:
        return self._http.request(method, self._base + path, timeout=self._timeout, verify=self._verify,
                                  allow_redirects=False, **options)

    def close(self) -> None:
        self._http.close()


def ask(config: KioskConfig, *, running: str | None = None) -> Offer | None:
    """The version central's rollouts offer this kiosk, newer than `running` (the version running), or None:
    none offered, or central not reachable, refusing this kiosk, or answering what cannot be read."""
    running = running or fetch.running_version()
    central = _Central(config)
    try:
        if not central.usable:
            return None
        try:
            response = central.call("GET", wire.ROLLOUT, params={"platform": fetch.this_platform(),
                                                                 "version": running})
        except (requests.RequestException, OSError) as exc:
            log.info("rollout.unreachable call=offer error=%s", type(exc).__name__)
            return None
    finally:
        central.close()
    if response.status_code != 200:
        log.warning("rollout.no_offer http=%d", response.status_code)
        return None
    try:
        answer = response.json()
        version, rollout_id = answer["version"], answer["rollout_id"]
    except (ValueError, TypeError, KeyError):
        log.warning("rollout.unreadable_offer")
        return None
    if version is None:
        log.info("rollout.nothing_offered running=%s", running)
        return None
    if not (isinstance(version, str) and wire.is_id(rollout_id) and _newer(version, running)):
        log.warning("rollout.offer_refused reason=not_a_newer_version running=%s", running)
        return None
    log.info("rollout.offered version=%s rollout=%s running=%s", version, rollout_id, running)
    return Offer(version, rollout_id)


def offered_release(config: KioskConfig, *, running: str | None = None, root: Path = ROOT) -> fetch.Release | None:
    """The verified bundle of the release this kiosk's rollout offers it, or None (nothing offered, central
    not reachable, a version this kiosk refuses for good, or one the repository does not list).
    fetch.UpdateError (and its kinds) as `fetch.latest_release` raises them."""
    offer = ask(config, running=running)
    if offer is None:
        return None
    refused = refusal(offer.version, root)
    if refused is not None:
        log.warning("rollout.offer_declined version=%s rollout=%s why=%s", offer.version, offer.rollout_id, refused)
        return None
    _remember_offer(config, offer)          # before anything is installed: its events must find their rollout
    release = fetch.named_release(config, offer.version)
    if release is None:
        log.error("rollout.offer_unlisted version=%s rollout=%s: the release repository does not list it",
                  offer.version, offer.rollout_id)
    return release


def install_failed(config: KioskConfig, version: str, reason: str = "install_failed") -> None:
    """The offered release `version` could not be installed (the installer refused it: `install_failed`;
    TUF refused its bundle: `update_refused`; a reason code): a failure for its rollout, reported with the
    next `report_outcomes`. Nothing for a version no rollout offered."""
    memory = _memory(config)
    if not any(offer["version"] == version for offer in memory["offers"]):
        return
    memory["events"] = (memory["events"] + [{
        "at": guard.utc_now(), "code": INSTALL_FAILED, "version": version, "from_version": fetch.running_version(),
        "reason": reason if REASON.fullmatch(reason) else "install_failed", "strikes": 0}])[-guard.EVENTS_KEPT:]
    _keep(config, memory)


def report_outcomes(config: KioskConfig, *, root: Path = ROOT) -> int:
    """Each update event of an offered release that central does not hold yet, sent to it in order; how many
    central took now. It stops at the first that cannot be sent now (the next run goes on from there)."""
    memory = _memory(config)
    if not memory["offers"]:
        return 0
    found = guard.read_json(guard.Layout(root).events_path)
    events = [e for e in (found if isinstance(found, list) else []) + memory["events"] if isinstance(e, dict)]
    reported = set(memory["reported"])
    due = []
    for event in events:
        outcome = OUTCOMES.get(event.get("code"))
        rollout_id = _rollout_of(memory, event)
        if outcome is not None and rollout_id is not None and event_id(event) not in reported:
            due.append((event, outcome, rollout_id))
    if not due:
        return 0
    central = _Central(config)
    taken = 0
    try:
        for event, (outcome, reason), rollout_id in due:
            if event.get("code") == INSTALL_FAILED:
                reason = event.get("reason") or reason
            if not central.usable or not _send(central, event, outcome, reason, rollout_id):
                break
            memory["reported"] = (memory["reported"] + [event_id(event)])[-REPORTED_KEPT:]
            _keep(config, memory)
            taken += 1
    finally:
        central.close()
    return taken


def event_id(event: dict) -> str:
    """An update event's id: the digest of the event as recorded, the same however often it is read."""
    return hashlib.sha256(json.dumps(event, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()[:32]


def _send(central: _Central, event: dict, outcome: wire.RolloutOutcome, reason: str | None, rollout_id: str) -> bool:
    """True once central holds the event (or never will: it knows no such rollout for this kiosk, or calls
    the report invalid), False when it must be sent again later."""
    body = {"rollout_id": rollout_id, "version": event.get("version"), "outcome": outcome.value,
            "event_id": event_id(event), "at": event.get("at"), "reason": reason}
    try:
        response = central.call("POST", wire.ROLLOUT_REPORT, json=body)
    except (requests.RequestException, OSError) as exc:
        log.info("rollout.unreachable call=report error=%s", type(exc).__name__)
        return False
    if response.status_code == 200:
        log.info("rollout.reported rollout=%s version=%s outcome=%s", rollout_id, body["version"], outcome.value)
        return True
    if response.status_code in (400, 404, 422):
        log.error("rollout.report_refused rollout=%s version=%s outcome=%s http=%d", rollout_id, body["version"],
                  outcome.value, response.status_code)
        return True
    log.warning("rollout.report_later http=%d", response.status_code)
    return False


def _newer(version: str, running: str) -> bool:
    try:
        return wire.release_version_key(version) > wire.release_version_key(running)
    except ValueError:
        return False


def _memory_path(config: KioskConfig) -> Path:
    return fetch.UpdateSettings.of(config).download_dir.parent / MEMORY


def _memory(config: KioskConfig) -> dict:
    """{"offers": [{"version", "rollout_id", "since"}], "reported": [event ids central holds], "events": [this
    module's own]}: what `rollout.json` holds, or an empty memory."""
    found = guard.read_json(_memory_path(config))
    found = found if isinstance(found, dict) else {}
    return {"offers": [o for o in found.get("offers") or [] if isinstance(o, dict)
                       and {"version", "rollout_id", "since"} <= o.keys()],
            "reported": [i for i in found.get("reported") or [] if isinstance(i, str)],
            "events": [e for e in found.get("events") or [] if isinstance(e, dict)]}


def _rollout_of(memory: dict, event: dict) -> str | None:
    """The rollout that offered the event's version last before the event (a version offered again by a new
    rollout: its earlier events stay its first rollout's)."""
    at = event.get("at")
    offers = [o for o in memory["offers"] if o["version"] == event.get("version")
              and isinstance(at, str) and o["since"] <= at]
    return offers[-1]["rollout_id"] if offers else None


def _remember_offer(config: KioskConfig, offer: Offer) -> None:
    memory = _memory(config)
    known = [o for o in memory["offers"] if o["version"] == offer.version]
    if not known or known[-1]["rollout_id"] != offer.rollout_id:
        memory["offers"] = (memory["offers"] + [{"version": offer.version, "rollout_id": offer.rollout_id,
                                                 "since": guard.utc_now()}])[-REPORTED_KEPT:]
        _keep(config, memory)


def _keep(config: KioskConfig, memory: dict) -> None:
    path = _memory_path(config)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomically(path, json.dumps(memory, sort_keys=True, indent=1).encode("utf-8"), mode=0o600)
