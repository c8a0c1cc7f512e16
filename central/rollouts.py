"""Staged rollouts: which kiosks may install which signed release, and what became of it.

    kiosk-central rollout start VERSION [--platform P] (--percent N | --governorate G | --device ID ...) [--repo DIR]
    kiosk-central rollout widen ID (--percent N | --governorate G | --device ID ...)
    kiosk-central rollout pause ID [--reason TEXT]
    kiosk-central rollout resume ID
    kiosk-central rollout rollback ID [--to V] [--repo DIR]
    kiosk-central rollout list
    kiosk-central rollout show ID

A rollout offers one release (a version for a platform, published in the release repository:
central/releases/) to its cohorts, added one after the other: a percentage of the fleet, a governorate,
or a list of device ids. A kiosk's place in the fleet is a hash of its id (salted by the rollout's seed),
from 0 to 9999: "10%" holds the places below 1000, so widening to 50% keeps the first 10% and adds the
next 40%. A kiosk is counted in the first cohort that holds it.

The kiosk's updater asks (`offer`, GET wire.ROLLOUT, signed): it is offered the newest version that an
active rollout whose cohorts hold it rolls out, newer than the version it runs, else nothing; central's
answer only chooses, the kiosk still verifies the release through TUF (kiosk/updates/offer.py). It
reports what became of it (`report`, POST wire.ROLLOUT_REPORT): installed, proven, failed, each
update event once by its id (a report sent again counts once). The first failure pauses the rollout at
once (the reason and the kiosk are kept): a paused rollout offers nothing, to anyone, until staff
resume it; the kiosk that failed is not offered that rollout's version again.

Rolling back. A kiosk never goes down a version on central's word: TUF's repository only goes forward
(`release publish` refuses a version that is not newer), and the kiosk takes only a version newer than
the one it runs. `rollout rollback ID` stops the rollout for good (it offers nothing any more: a kiosk
that has not installed it never will); `rollout rollback ID --to V`, with V the old code published under
a version newer than the rolled-back one, also starts a rollout of V to the same cohorts (same seed, so
the same kiosks), which carries every kiosk that took the bad release forward to the old code, through
the same trial as any release. A kiosk whose start of the bad release failed went back by itself
already (kiosk/updates/guard.py).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import secrets
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from central.commands import Commands, CohortError
from central.db import Database, iso_utc, utc_now
from central.models import Device, Rollout, RolloutCohort, RolloutDevice, RolloutEvent, RolloutReport
from central.wire import Answer, Body, Identifier, rejected
from kiosk import wire

log = logging.getLogger(__name__)

DEFAULT_PLATFORM = "linux_aarch64"           # a Raspberry Pi (kiosk.updates.fetch.this_platform() there)
PLACES = 10_000                              # a kiosk's place in the fleet: 0 .. 9999 (a percent is 100 places)
VERSION_PATTERN = r"^[0-9]{1,6}(?:\.[0-9]{1,6}){0,3}$"
PLATFORM_PATTERN = r"^[a-z0-9_]{1,32}$"
KIOSK_TIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?Z$"
ACTIVE, PAUSED, ROLLED_BACK = "active", "paused", "rolled_back"
KIOSK_BY = "kiosk "                          # a rollout event's `by` when a kiosk's report caused it
PERCENT, GOVERNORATE, DEVICES = "percent", "governorate", "devices"
Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class RolloutError(ValueError):
    """What staff asked cannot be done: the message says why (in English, for the command line), `code` what
    kind of refusal it is (for the dashboard's words): cohort, no_rollout, state, not_published, version,
    not_newer, duplicate."""

    def __init__(self, message: str, code: str = "cohort") -> None:
        super().__init__(message)
        self.code = code


class ReportBody(Body):
    rollout_id: Identifier
    version: Annotated[str, Field(pattern=VERSION_PATTERN)]
    outcome: Literal["installed", "proven", "failed"]
    event_id: Annotated[str, Field(pattern=wire.EVENT_ID_PATTERN)]
    at: Annotated[str, Field(pattern=KIOSK_TIME_PATTERN, max_length=32)]
    reason: Code | None = None


def place(seed: str, device_id: str) -> int:
    """`device_id`'s place in the fleet for a rollout seeded `seed`: 0 .. PLACES-1, the same every time."""
    digest = hashlib.sha256(("%s:%s" % (seed, device_id)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % PLACES


@dataclass(frozen=True)
class Cohort:
    """Which kiosks: `percent` of the fleet (1 to 100), a `governorate`, or the `devices` named."""

    kind: str
    value: str

    @classmethod
    def of(cls, *, percent: int | None = None, governorate: str | None = None,
           device_ids: Sequence[str] = ()) -> Cohort:
        given = [percent is not None, governorate is not None, bool(device_ids)]
        if given.count(True) != 1:
            raise RolloutError("name one cohort: --percent N, --governorate G or --device ID ...")
        if percent is not None:
            if not 1 <= percent <= 100:
                raise RolloutError("a percentage of the fleet is 1 to 100, not %d" % percent)
            return cls(PERCENT, str(percent))
        if governorate is not None:
            return cls(GOVERNORATE, governorate)
        if not all(wire.is_id(device) for device in device_ids):
            raise RolloutError("a device id is letters, digits and . _ : - (at most 64)")
        return cls(DEVICES, " ".join(dict.fromkeys(device_ids)))

    @property
    def device_ids(self) -> list[str]:
        return self.value.split() if self.kind == DEVICES else []

    def holds(self, device: Device, seed: str) -> bool:
        if self.kind == PERCENT:
            return place(seed, device.device_id) < int(self.value) * (PLACES // 100)
        if self.kind == GOVERNORATE:
            return device.governorate == self.value
        return device.device_id in self.device_ids

    def check(self, commands: Commands) -> None:
        """A governorate or a list of ids must name enrolled kiosks, not revoked (the commands' way of
        picking kiosks, central/commands.py); CohortError says which does not."""
        if self.kind == GOVERNORATE:
            commands.cohort(governorate=self.value)
        elif self.kind == DEVICES:
            commands.cohort(device_ids=self.device_ids)

    def describe(self) -> str:
        if self.kind == PERCENT:
            return "%s%% of the fleet" % self.value
        if self.kind == GOVERNORATE:
            return "governorate %s" % self.value
        ids = self.device_ids
        return "%d kiosk%s: %s" % (len(ids), "" if len(ids) == 1 else "s",
                                   " ".join(ids[:5]) + (" ..." if len(ids) > 5 else ""))


@dataclass(frozen=True)
class CohortCount:
    """One cohort of a rollout and its kiosks: in it now (enrolled, not revoked, not in an earlier cohort),
    offered the version, installed it, proven, failed."""

    position: int
    cohort: Cohort
    kiosks: int
    offered: int
    installed: int
    proven: int
    failed: int

    def line(self) -> str:
        return "cohort %d: %s: %d kiosks, offered %d, installed %d, proven %d, failed %d" % (
            self.position, self.cohort.describe(), self.kiosks, self.offered, self.installed, self.proven,
            self.failed)


@dataclass(frozen=True)
class Failure:
    device_id: str
    at: str
    reason: str | None


@dataclass(frozen=True)
class RolloutView:
    """A rollout as `rollout list` and `show` print it."""

    rollout_id: str
    version: str
    platform: str
    state: str
    created_at: str
    created_by: str | None
    changed_at: str
    reason: str | None
    paused_by_device: str | None
    supersedes: str | None
    superseded_by: str | None
    cohorts: tuple[CohortCount, ...]
    failures: tuple[Failure, ...]
    events: tuple[tuple[str, str, str | None, str], ...]       # (at, event, by, detail), oldest first

    def total(self, what: str) -> int:
        return sum(getattr(count, what) for count in self.cohorts)

    def state_line(self) -> str:
        if self.state == PAUSED:
            return "paused since %s: %s" % (self.changed_at, self.reason or "by staff")
        if self.state == ROLLED_BACK:
            return "rolled back %s%s" % (self.changed_at, ", superseded by rollout %s" % self.superseded_by
                                         if self.superseded_by else "")
        return "active"

    def line(self) -> str:
        return "\t".join((self.rollout_id, self.version, self.platform, self.state, "started %s" % self.created_at,
                          "%d cohort%s" % (len(self.cohorts), "" if len(self.cohorts) == 1 else "s"),
                          "offered %d installed %d proven %d failed %d" % (
                              self.total("offered"), self.total("installed"), self.total("proven"),
                              self.total("failed"))))

    def lines(self) -> list[str]:
        lines = ["rollout %s: %s for %s, %s" % (self.rollout_id, self.version, self.platform, self.state_line()),
                 "started %s by %s" % (self.created_at, self.created_by or "-")]
        if self.supersedes:
            lines.append("rolls back rollout %s" % self.supersedes)
        lines += [count.line() for count in self.cohorts]
        lines += ["failed: kiosk %s at %s (%s)" % (f.device_id, f.at, f.reason or "no reason given")
                  for f in self.failures]
        lines += ["%s\t%s\t%s\t%s" % (at, event, by or "-", detail) for at, event, by, detail in self.events]
        return lines


def _event(session: Session, rollout_id: str, at: str, event: str, by: str | None, detail: str = "") -> None:
    session.add(RolloutEvent(rollout_id=rollout_id, at=at, event=event, by=by, detail=detail[:200]))


def _cohorts(session: Session, rollout_id: str) -> list[tuple[int, Cohort]]:
    return [(row.position, Cohort(row.kind, row.value)) for row in session.scalars(
        select(RolloutCohort).where(RolloutCohort.rollout_id == rollout_id).order_by(RolloutCohort.position))]


def _first_holding(cohorts: Iterable[tuple[int, Cohort]], device: Device, seed: str) -> int | None:
    return next((position for position, cohort in cohorts if cohort.holds(device, seed)), None)


class Rollouts:
    """Rollouts in central's database. `published(version, platform)`, when given, says whether the
    release repository lists that release: a rollout of anything else is refused."""

    def __init__(self, database: Database, *, published: Callable[[str, str], bool] | None = None) -> None:
        self._database = database
        self._commands = Commands(database)
        self._published = published

    # -- central's staff ----------------------------------------------------------------------------------

    def start(self, version: str, cohort: Cohort, *, platform: str = DEFAULT_PLATFORM,
              by: str | None = None) -> RolloutView:
        """A new rollout of `version` for `platform` to `cohort` (more are added with `widen`), active now."""
        self._check_release(version, platform)
        self._check_cohort(cohort)
        with self._database.writing() as session:
            rollout = self._new(session, version, platform, secrets.token_hex(8), by)
            self._add_cohort(session, rollout, [(1, cohort)], by)
            _event(session, rollout.rollout_id, rollout.created_at, "started", by,
                   "%s for %s: %s" % (version, platform, cohort.describe()))
        log.info("rollouts.started rollout=%s version=%s platform=%s cohort=%s", rollout.rollout_id, version,
                 platform, cohort.kind)
        return self.show(rollout.rollout_id)

    def widen(self, rollout_id: str, cohort: Cohort, *, by: str | None = None) -> RolloutView:
        """`cohort` added to the rollout (active or paused: a paused one offers it once resumed)."""
        self._check_cohort(cohort)
        with self._database.writing() as session:
            rollout = self._get(session, rollout_id)
            if rollout.state == ROLLED_BACK:
                raise RolloutError("rollout %s was rolled back: start a new one" % rollout_id, "state")
            cohorts = _cohorts(session, rollout_id)
            if cohort in (existing for _position, existing in cohorts):
                raise RolloutError("rollout %s has the cohort %s already" % (rollout_id, cohort.describe()),
                                   "duplicate")
            self._add_cohort(session, rollout, [(len(cohorts) + 1, cohort)], by)
            _event(session, rollout_id, iso_utc(utc_now()), "widened", by, cohort.describe())
        log.info("rollouts.widened rollout=%s cohort=%s", rollout_id, cohort.kind)
        return self.show(rollout_id)

    def pause(self, rollout_id: str, *, reason: str = "", by: str | None = None) -> RolloutView:
        with self._database.writing() as session:
            rollout = self._get(session, rollout_id)
            if rollout.state != ACTIVE:
                raise RolloutError("rollout %s is %s, not active" % (rollout_id, rollout.state), "state")
            at = iso_utc(utc_now())
            rollout.state, rollout.changed_at = PAUSED, at
            rollout.reason = ("paused by %s%s" % (by or "staff", ": " + reason if reason else ""))[:200]
            rollout.paused_by_device = None
            _event(session, rollout_id, at, "paused", by, reason)
        log.info("rollouts.paused rollout=%s by=staff", rollout_id)
        return self.show(rollout_id)

    def resume(self, rollout_id: str, *, by: str | None = None) -> RolloutView:
        with self._database.writing() as session:
            rollout = self._get(session, rollout_id)
            if rollout.state != PAUSED:
                raise RolloutError("rollout %s is %s, not paused" % (rollout_id, rollout.state), "state")
            at = iso_utc(utc_now())
            rollout.state, rollout.changed_at, rollout.reason, rollout.paused_by_device = ACTIVE, at, None, None
            _event(session, rollout_id, at, "resumed", by)
        log.info("rollouts.resumed rollout=%s", rollout_id)
        return self.show(rollout_id)

    def rollback(self, rollout_id: str, *, to_version: str | None = None,
                 by: str | None = None) -> tuple[RolloutView, RolloutView | None]:
        """The rollout stopped for good; with `to_version` (the old code, published under a newer version),
        a rollout of it to the same cohorts, active now. Both, as shown afterwards."""
        if to_version is not None:
            with self._database.reading() as session:
                platform = self._get(session, rollout_id).platform
            self._check_release(to_version, platform)
        with self._database.writing() as session:
            rollout = self._get(session, rollout_id)
            if rollout.superseded_by is not None:
                raise RolloutError("rollout %s was rolled back to rollout %s already"
                                   % (rollout_id, rollout.superseded_by), "state")
            if rollout.state == ROLLED_BACK and to_version is None:
                raise RolloutError("rollout %s is rolled back already (--to V rolls its cohorts forward to V)"
                                   % rollout_id, "state")
            at = iso_utc(utc_now())
            replacement = None
            if to_version is not None:
                if wire.release_version_key(to_version) <= wire.release_version_key(rollout.version):
                    raise RolloutError("a kiosk never goes down a version: publish the old code as a version newer "
                                       "than %s and roll back to that" % rollout.version, "not_newer")
                replacement = self._new(session, to_version, rollout.platform, rollout.seed, by,
                                        supersedes=rollout_id)
                self._add_cohort(session, replacement, _cohorts(session, rollout_id), by)
                _event(session, replacement.rollout_id, at, "started", by,
                       "%s for %s: rolls back rollout %s" % (to_version, rollout.platform, rollout_id))
                rollout.superseded_by = replacement.rollout_id
            if rollout.state != ROLLED_BACK:
                rollout.state, rollout.changed_at, rollout.paused_by_device = ROLLED_BACK, at, None
                rollout.reason = "rolled back by %s" % (by or "staff")
            _event(session, rollout_id, at, "rolled_back", by,
                   "to %s (rollout %s)" % (to_version, replacement.rollout_id) if replacement else "")
        log.info("rollouts.rolled_back rollout=%s to=%s", rollout_id, to_version or "-")
        return self.show(rollout_id), self.show(replacement.rollout_id) if replacement else None

    def list(self) -> list[RolloutView]:
        """Every rollout, the newest first."""
        with self._database.reading() as session:
            ids = list(session.scalars(select(Rollout.rollout_id).order_by(Rollout.created_at.desc(),
                                                                           Rollout.rollout_id)))
        return [self.show(rollout_id) for rollout_id in ids]

    def show(self, rollout_id: str) -> RolloutView:
        with self._database.reading() as session:
            rollout = self._get(session, rollout_id)
            cohorts = _cohorts(session, rollout_id)
            devices = session.scalars(select(Device).where(Device.revoked_at.is_(None))).all()
            in_cohort = [_first_holding(cohorts, device, rollout.seed) for device in devices]
            rows = session.scalars(select(RolloutDevice).where(RolloutDevice.rollout_id == rollout_id)).all()
            events = tuple((e.at, e.event, e.by, e.detail) for e in session.scalars(
                select(RolloutEvent).where(RolloutEvent.rollout_id == rollout_id).order_by(RolloutEvent.id)))
        counts = tuple(CohortCount(
            position, cohort, kiosks=in_cohort.count(position),
            offered=sum(1 for r in rows if r.position == position),
            installed=sum(1 for r in rows if r.position == position and (r.installed_at or r.proven_at)),
            proven=sum(1 for r in rows if r.position == position and r.proven_at),
            failed=sum(1 for r in rows if r.position == position and r.failed_at)) for position, cohort in cohorts)
        failures = tuple(Failure(r.device_id, r.failed_at, r.failure)
                         for r in sorted(rows, key=lambda r: r.failed_at or "") if r.failed_at)
        return RolloutView(rollout.rollout_id, rollout.version, rollout.platform, rollout.state, rollout.created_at,
                           rollout.created_by, rollout.changed_at, rollout.reason, rollout.paused_by_device,
                           rollout.supersedes, rollout.superseded_by, counts, failures, events)

    # -- the kiosks' side ---------------------------------------------------------------------------------

    def offer(self, device_id: str, platform: str, running: str) -> Answer:
        """What `device_id`, running `running` on `platform`, may install now: the newest version an active
        rollout whose cohorts hold it offers, newer than `running` (and not one it failed), or nothing."""
        running_key = wire.release_version_key(running)
        nothing = Answer(200, {"version": None, "rollout_id": None})
        with self._database.reading() as session:
            device = session.get(Device, device_id)
            if device is None:
                return nothing
            rollouts = sorted(session.scalars(select(Rollout).where(Rollout.state == ACTIVE,
                                                                    Rollout.platform == platform)),
                              key=lambda r: (wire.release_version_key(r.version), r.created_at), reverse=True)
            for rollout in rollouts:
                if wire.release_version_key(rollout.version) <= running_key:
                    continue
                position = _first_holding(_cohorts(session, rollout.rollout_id), device, rollout.seed)
                if position is None:
                    continue
                offered = session.get(RolloutDevice, (rollout.rollout_id, device_id))
                if offered is not None and offered.failed_at is not None:
                    continue
                break
            else:
                return nothing
        if offered is None:
            with self._database.writing() as session:
                if session.get(RolloutDevice, (rollout.rollout_id, device_id)) is None:
                    session.add(RolloutDevice(rollout_id=rollout.rollout_id, device_id=device_id, position=position,
                                              offered_at=iso_utc(utc_now()), from_version=running))
            log.info("rollouts.offered rollout=%s device=%s version=%s from=%s cohort=%d", rollout.rollout_id,
                     device_id, rollout.version, running, position)
        return Answer(200, {"version": rollout.version, "rollout_id": rollout.rollout_id})

    def report(self, device_id: str, body: ReportBody) -> Answer:
        """A kiosk's outcome of the version its rollout offered it, kept once by its event id; a failure
        pauses an active rollout at once."""
        received_at = iso_utc(utc_now())
        with self._database.writing() as session:
            rollout = session.get(Rollout, body.rollout_id)
            offered = session.get(RolloutDevice, (body.rollout_id, device_id))
            if rollout is None or offered is None or rollout.version != body.version:
                log.warning("rollouts.report_unknown device=%s rollout=%s version=%s", device_id, body.rollout_id,
                            body.version)
                return rejected(wire.UNKNOWN_ROLLOUT, http_status=404)
            if session.get(RolloutReport, (device_id, body.event_id)) is not None:
                return Answer(200, {"status": wire.ROLLOUT_RECORDED, "counted": False})
            session.add(RolloutReport(device_id=device_id, event_id=body.event_id, rollout_id=body.rollout_id,
                                      outcome=body.outcome, version=body.version, at=body.at, reason=body.reason,
                                      received_at=received_at))
            if body.outcome == wire.RolloutOutcome.INSTALLED.value:
                offered.installed_at = offered.installed_at or body.at
            elif body.outcome == wire.RolloutOutcome.PROVEN.value:
                offered.installed_at = offered.installed_at or body.at
                offered.proven_at = offered.proven_at or body.at
            else:
                offered.failed_at, offered.failure = offered.failed_at or body.at, body.reason
                self._paused_by_failure(session, rollout, device_id, body.reason, received_at)
        log.info("rollouts.reported rollout=%s device=%s outcome=%s reason=%s", body.rollout_id, device_id,
                 body.outcome, body.reason or "-")
        return Answer(200, {"status": wire.ROLLOUT_RECORDED, "counted": True})

    # -- inside -------------------------------------------------------------------------------------------

    @staticmethod
    def _paused_by_failure(session: Session, rollout: Rollout, device_id: str, reason: str | None, at: str) -> None:
        by, code = KIOSK_BY + device_id, reason or "no_reason"
        if rollout.state != ACTIVE:
            _event(session, rollout.rollout_id, at, "failure", by, code)
            return
        rollout.state, rollout.changed_at, rollout.paused_by_device = PAUSED, at, device_id
        rollout.reason = "kiosk %s failed: %s" % (device_id, reason or "no reason given")
        _event(session, rollout.rollout_id, at, "paused", by, code)
        log.warning("rollouts.paused rollout=%s by=failure device=%s reason=%s", rollout.rollout_id, device_id,
                    reason or "-")

    def _check_release(self, version: str, platform: str) -> None:
        try:
            wire.release_target(version, platform)
        except ValueError as exc:
            raise RolloutError(str(exc), "version") from None
        if self._published is not None and not self._published(version, platform):
            raise RolloutError("version %s for %s is not published in the release repository "
                               "(kiosk-central release publish)" % (version, platform), "not_published")

    def _check_cohort(self, cohort: Cohort) -> None:
        try:
            cohort.check(self._commands)
        except CohortError as exc:
            raise RolloutError(str(exc)) from None

    @staticmethod
    def _get(session: Session, rollout_id: str) -> Rollout:
        rollout = session.get(Rollout, rollout_id) if wire.is_id(rollout_id) else None
        if rollout is None:
            raise RolloutError("no rollout %s" % rollout_id[:64], "no_rollout")
        return rollout

    @staticmethod
    def _new(session: Session, version: str, platform: str, seed: str, by: str | None, *,
             supersedes: str | None = None) -> Rollout:
        for existing in session.scalars(select(Rollout).where(Rollout.version == version, Rollout.platform == platform,
                                                              Rollout.state != ROLLED_BACK)):
            raise RolloutError("version %s for %s is rolled out already by rollout %s (%s): widen it"
                               % (version, platform, existing.rollout_id, existing.state), "duplicate")
        rollout_id = secrets.token_hex(4)
        while session.get(Rollout, rollout_id) is not None:
            rollout_id = secrets.token_hex(4)
        at = iso_utc(utc_now())
        rollout = Rollout(rollout_id=rollout_id, version=version, platform=platform, seed=seed, state=ACTIVE,
                          created_at=at, created_by=by, changed_at=at, supersedes=supersedes)
        session.add(rollout)
        session.flush()
        return rollout

    @staticmethod
    def _add_cohort(session: Session, rollout: Rollout, cohorts: Iterable[tuple[int, Cohort]], by: str | None) -> None:
        at = iso_utc(utc_now())
        for position, cohort in cohorts:
            session.add(RolloutCohort(rollout_id=rollout.rollout_id, position=position, kind=cohort.kind,
                                      value=cohort.value, added_at=at, added_by=by))


def published_in(repo: Path | str) -> Callable[[str, str], bool]:
    """Whether the release repository at `repo` lists a version for a platform (central/releases/), read
    when asked; RolloutError when there is no repository there."""
    from central.releases.repository import ReleaseError, ReleaseRepository

    def published(version: str, platform: str) -> bool:
        try:
            targets = ReleaseRepository(repo).current("targets").signed.targets
        except ReleaseError as exc:
            raise RolloutError(str(exc), "not_published") from None
        return wire.release_target(version, platform) in targets
    return published


# -- `kiosk-central rollout ...` ---------------------------------------------------------------------------

ROLLOUT_HELP = """\
Staged rollouts of signed releases to the fleet.

  start VERSION [--platform linux_aarch64] (--percent N | --governorate G | --device ID ...) [--repo DIR]
      offer the release VERSION (published in the release repository DIR) to a first cohort: N% of the
      fleet (by a hash of each kiosk's id: 10 then 50 keeps the first 10%), a governorate's kiosks, or
      the kiosks named. Prints the rollout's id.
  widen ID (--percent N | --governorate G | --device ID ...)
      add a cohort.
  pause ID [--reason TEXT] / resume ID
      a paused rollout offers nothing. A kiosk that reports a failure pauses its rollout at once.
  rollback ID [--to V] [--repo DIR]
      stop the rollout for good; with --to V (the old code published under a version newer than
      the rolled-back one: a kiosk never goes down a version), also start a rollout of V to the
      same cohorts.
  list / show ID
      each rollout; each cohort: kiosks in it, offered, installed, proven, failed; the failures and
      the rollout's history.

Exit 2: no such rollout, a rollout not in the state the action needs, a cohort that names no
enrolled kiosk, a version not published."""


def _open(args: argparse.Namespace, *, with_repo: bool = False) -> tuple[Database, Rollouts]:
    from central.seeding import prepare_database

    published = published_in(args.repo) if with_repo else None
    database = Database(args.db)
    prepare_database(database)
    return database, Rollouts(database, published=published)


def _cohort_of(args: argparse.Namespace) -> Cohort:
    return Cohort.of(percent=args.percent, governorate=args.governorate, device_ids=args.device or ())


def _print(view: RolloutView) -> None:
    for line in view.lines():
        print(line)


def _cli(run: Callable[[argparse.Namespace, Rollouts], int], *,
         with_repo: Callable[[argparse.Namespace], bool] = lambda _args: False) -> Callable[[argparse.Namespace], int]:
    """`run` on the database (and the release repository, when `with_repo` says a version is named)."""
    def cli(args: argparse.Namespace) -> int:
        database = None
        try:
            database, rollouts = _open(args, with_repo=with_repo(args))
            return run(args, rollouts)
        except RolloutError as exc:
            print("kiosk-central rollout %s: %s" % (args.rollout_action, exc), file=sys.stderr)
            return 2
        finally:
            if database is not None:
                database.dispose()
    return cli


def _start(args: argparse.Namespace, rollouts: Rollouts) -> int:
    _print(rollouts.start(args.version, _cohort_of(args), platform=args.platform))
    return 0


def _widen(args: argparse.Namespace, rollouts: Rollouts) -> int:
    _print(rollouts.widen(args.rollout_id, _cohort_of(args)))
    return 0


def _pause(args: argparse.Namespace, rollouts: Rollouts) -> int:
    _print(rollouts.pause(args.rollout_id, reason=args.reason))
    return 0


def _resume(args: argparse.Namespace, rollouts: Rollouts) -> int:
    _print(rollouts.resume(args.rollout_id))
    return 0


def _rollback(args: argparse.Namespace, rollouts: Rollouts) -> int:
    stopped, replacement = rollouts.rollback(args.rollout_id, to_version=args.to)
    _print(stopped)
    if replacement is not None:
        print()
        _print(replacement)
    else:
        print("kiosks that installed %s keep it until a newer release reaches them: publish the old code as a "
              "newer version and run `kiosk-central rollout rollback %s --to V`" % (stopped.version,
                                                                                   stopped.rollout_id))
    return 0


def _list(_args: argparse.Namespace, rollouts: Rollouts) -> int:
    for view in rollouts.list():
        print(view.line())
    return 0


def _show(args: argparse.Namespace, rollouts: Rollouts) -> int:
    _print(rollouts.show(args.rollout_id))
    return 0


def add_parser(commands: argparse._SubParsersAction,
               with_db: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]) -> None:
    """`rollout` and its actions, under `kiosk-central` (`with_db` adds its --db option)."""
    from central.releases.cli import DEFAULT_REPO

    rollout = commands.add_parser("rollout", help="staged rollouts of releases: start, widen, pause, resume, "
                                                  "rollback, list, show",
                                  description=ROLLOUT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = rollout.add_subparsers(dest="rollout_action", required=True)

    def with_cohort(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
        target = command.add_mutually_exclusive_group(required=True)
        target.add_argument("--percent", type=int, metavar="N", help="N%% of the fleet (1 to 100)")
        target.add_argument("--governorate", metavar="G", help="every kiosk of governorate G")
        target.add_argument("--device", action="append", metavar="ID", help="a kiosk's id (again for more)")
        return command

    def with_repo(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
        command.add_argument("--repo", type=Path, default=DEFAULT_REPO,
                             help="the release repository the version is published in (default %(default)s)")
        return command

    start = with_repo(with_cohort(with_db(actions.add_parser("start", help="offer a release to a first cohort"))))
    start.add_argument("version", metavar="VERSION")
    start.add_argument("--platform", default=DEFAULT_PLATFORM, help="the kiosks' platform (default %(default)s)")
    start.set_defaults(run=_cli(_start, with_repo=lambda _args: True))
    widen = with_cohort(with_db(actions.add_parser("widen", help="add a cohort to a rollout")))
    widen.add_argument("rollout_id", metavar="ID")
    widen.set_defaults(run=_cli(_widen))
    pause = with_db(actions.add_parser("pause", help="offer nothing until resumed"))
    pause.add_argument("rollout_id", metavar="ID")
    pause.add_argument("--reason", default="", help="why, for the others (a few words)")
    pause.set_defaults(run=_cli(_pause))
    resume = with_db(actions.add_parser("resume", help="offer the release again"))
    resume.add_argument("rollout_id", metavar="ID")
    resume.set_defaults(run=_cli(_resume))
    rollback = with_repo(with_db(actions.add_parser(
        "rollback", help="stop a rollout for good; --to V: roll its cohorts forward to V (the old code)")))
    rollback.add_argument("rollout_id", metavar="ID")
    rollback.add_argument("--to", metavar="V", help="a release newer than the rolled-back one, with the old code")
    rollback.set_defaults(run=_cli(_rollback, with_repo=lambda args: args.to is not None))
    with_db(actions.add_parser("list", help="every rollout, the newest first")).set_defaults(run=_cli(_list))
    show = with_db(actions.add_parser("show", help="a rollout's cohorts, counts, failures and history"))
    show.add_argument("rollout_id", metavar="ID")
    show.set_defaults(run=_cli(_show))
