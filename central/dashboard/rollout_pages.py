"""The dashboard's rollouts (central/rollouts.py): the pages and their forms.

    GET  /dashboard/rollouts                       every rollout, its state and counts; the start form
    GET  /dashboard/rollouts/{rollout_id}          one rollout: its cohorts and counts, failures, history
    POST /dashboard/rollouts                       start a rollout                       (publisher)
    POST /dashboard/rollouts/{rollout_id}/widen    add a cohort                          (publisher)
    POST /dashboard/rollouts/{rollout_id}/pause    pause it                              (operator, publisher)
    POST /dashboard/rollouts/{rollout_id}/resume   resume it                             (publisher)
    POST /dashboard/rollouts/{rollout_id}/rollback stop it for good, maybe roll forward  (publisher)

Every form goes through the dashboard's guard (web.py: session, form token, role) and is written in the
staff audit trail with its outcome; what the rollouts refuse is shown on the page again, in the staff's
language (by the refusal's code), the English detail beside it.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' Annotated aliases from the live
# annotations (as web.py).
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse, Response

from central.dashboard import pages
from central.dashboard.audit import Outcome
from central.dashboard.roles import Permission, may
from central.dashboard.sessions import Staff
from central.dashboard.web import PREFIX, Action, Dashboard
from central.rollouts import (DEFAULT_PLATFORM, DEVICES, GOVERNORATE, KIOSK_BY, PAUSED, PERCENT, Cohort,
                              RolloutError, Rollouts, RolloutView)
from kiosk import wire

PAGE = PREFIX + "/rollouts"
COHORT_KINDS = (PERCENT, GOVERNORATE, DEVICES)


@dataclass(frozen=True)
class Refusal:
    """What the rollouts refused, for the page: the kind (`rollouts.error.<code>`) and the English detail."""

    code: str
    detail: str


def cohort_of(form: dict[str, str]) -> Cohort:
    """The cohort a form names: its kind and value ("10", "aleppo", "id1 id2" or "id1, id2")."""
    kind, value = form.get("kind", ""), form.get("value", "").strip()
    if kind == PERCENT:
        if not (value.isascii() and value.isdigit() and len(value) <= 3):
            raise RolloutError("a percentage of the fleet is a whole number from 1 to 100")
        return Cohort.of(percent=int(value))
    if kind == GOVERNORATE:
        return Cohort.of(governorate=value.lower()[:64])
    if kind == DEVICES:
        return Cohort.of(device_ids=value.replace(",", " ").split()[:200])
    raise RolloutError("name one cohort: a percentage, a governorate or device ids")


def pause_note(view: RolloutView) -> tuple[str, str | None, str]:
    """Who paused the rollout and why, from its history: (at, by, detail) of its last pause."""
    for at, event, by, detail in reversed(view.events):
        if event == "paused":
            return at, by, detail
    return view.changed_at, None, ""


@dataclass(frozen=True)
class HistoryRow:
    """One event of a rollout as its page shows it: who (`kiosk` and its id, or a member of staff's name) and
    what it concerned (a cohort, a failure's reason code, a rollout, staff's own words), in the page's words."""

    at: str
    event: str
    by_kiosk: str | None
    by: str | None
    cohort: Cohort | None = None
    failure: str | None = None
    rollout_id: str | None = None
    words: str = ""


def history(view: RolloutView) -> list[HistoryRow]:
    """`view`'s events for its page. Cohorts come one by one with `start` and `widen` (a rollout that rolls
    another back starts with all of that one's), so the n-th widening added the cohort n places from the end."""
    widenings = sum(1 for _at, event, _by, _detail in view.events if event == "widened")
    next_cohort = len(view.cohorts) - widenings
    rows = []
    for at, event, by, detail in view.events:
        kiosk = by[len(KIOSK_BY):] if by and by.startswith(KIOSK_BY) else None
        row = HistoryRow(at, event, kiosk, None if kiosk else by)
        if event == "started" and view.supersedes:
            row = replace(row, rollout_id=view.supersedes)
        elif event == "started" and view.cohorts:
            row = replace(row, cohort=view.cohorts[0].cohort)
        elif event == "widened" and 0 <= next_cohort < len(view.cohorts):
            row = replace(row, cohort=view.cohorts[next_cohort].cohort)
            next_cohort += 1
        elif event in ("paused", "failure") and kiosk:
            row = replace(row, failure=detail)
        elif event == "rolled_back" and view.superseded_by:
            row = replace(row, rollout_id=view.superseded_by)
        elif event == "paused":
            row = replace(row, words=detail)
        rows.append(row)
    return rows


def install(app: FastAPI, rollouts: Rollouts) -> None:
    """The rollouts' pages and forms on `app`, behind the dashboard `install`ed there already."""
    dashboard: Dashboard = app.state.dashboard
    SignedIn = Annotated[Staff, Depends(dashboard.signed_in)]
    RolloutId = Annotated[str, PathParam(pattern=wire.ID_PATTERN)]

    def get(path: str) -> Callable:
        return app.get(PAGE + path, include_in_schema=False)

    def post(path: str) -> Callable:
        return app.post(PAGE + path, include_in_schema=False)

    def guarded(permission: Permission, name: str) -> object:
        return Depends(dashboard.guard(permission, name, target_param="rollout_id"))

    def list_page(staff: Staff, *, refusal: Refusal | None = None, form: dict[str, str] | None = None) -> Response:
        return pages.render("rollouts.html", staff.language, status_code=422 if refusal else 200, staff=staff,
                            page="rollouts", here=PAGE, rollouts=rollouts.list(), refusal=refusal, form=form or {},
                            may_publish=may(staff.role, Permission.PUBLISH), kinds=COHORT_KINDS,
                            default_platform=DEFAULT_PLATFORM)

    def rollout_page(staff: Staff, rollout_id: str, *, refusal: Refusal | None = None) -> Response:
        try:
            view = rollouts.show(rollout_id)
        except RolloutError:
            return pages.render("not_found.html", staff.language, status_code=404, staff=staff, page="rollouts",
                                reason="not_found.rollout", here=PAGE)
        return pages.render("rollout.html", staff.language, status_code=422 if refusal else 200, staff=staff,
                            page="rollouts", here="%s/%s" % (PAGE, rollout_id), rollout=view, refusal=refusal,
                            pause=pause_note(view) if view.state == PAUSED else None, kinds=COHORT_KINDS,
                            history=history(view),
                            may_publish=may(staff.role, Permission.PUBLISH),
                            may_operate=may(staff.role, Permission.OPERATE))

    def done(action: Action, rollout_id: str, detail: str = "") -> Response:
        action.done(Outcome.OK, detail)
        return RedirectResponse("%s/%s" % (PAGE, rollout_id), status_code=303)

    def refused(action: Action, exc: RolloutError, rollout_id: str | None) -> Response:
        action.done(Outcome.FAILED, exc.code)
        refusal = Refusal(exc.code, str(exc))
        if rollout_id is None:
            return list_page(action.staff, refusal=refusal, form=action.form)
        return rollout_page(action.staff, rollout_id, refusal=refusal)

    @get("")
    def rollouts_list(staff: SignedIn, version: str | None = None, platform: str | None = None) -> Response:
        # ?version=&platform= fill the start form in (the releases page links here with them).
        return list_page(staff, form={name: value[:32] for name, value in (("version", version),
                                                                          ("platform", platform)) if value})

    @get("/{rollout_id}")
    def rollout(rollout_id: RolloutId, staff: SignedIn) -> Response:
        return rollout_page(staff, rollout_id)

    @post("")
    def start(action: Annotated[Action, Depends(dashboard.guard(Permission.PUBLISH, "rollout.start"))]) -> Response:
        form = action.form
        try:
            view = rollouts.start(form.get("version", "").strip(), cohort_of(form),
                                  platform=form.get("platform", "").strip() or DEFAULT_PLATFORM,
                                  by=action.staff.username)
        except RolloutError as exc:
            return refused(action, exc, None)
        return done(action, view.rollout_id, "rollout %s: %s" % (view.rollout_id, view.version))

    @post("/{rollout_id}/widen")
    def widen(rollout_id: RolloutId, action: Annotated[Action, guarded(Permission.PUBLISH, "rollout.widen")]
              ) -> Response:
        try:
            rollouts.widen(rollout_id, cohort_of(action.form), by=action.staff.username)
        except RolloutError as exc:
            return refused(action, exc, rollout_id)
        return done(action, rollout_id)

    @post("/{rollout_id}/pause")
    def pause(rollout_id: RolloutId, action: Annotated[Action, guarded(Permission.OPERATE, "rollout.pause")]
              ) -> Response:
        try:
            rollouts.pause(rollout_id, reason=action.form.get("reason", "").strip()[:120], by=action.staff.username)
        except RolloutError as exc:
            return refused(action, exc, rollout_id)
        return done(action, rollout_id)

    @post("/{rollout_id}/resume")
    def resume(rollout_id: RolloutId, action: Annotated[Action, guarded(Permission.PUBLISH, "rollout.resume")]
               ) -> Response:
        try:
            rollouts.resume(rollout_id, by=action.staff.username)
        except RolloutError as exc:
            return refused(action, exc, rollout_id)
        return done(action, rollout_id)

    @post("/{rollout_id}/rollback")
    def rollback(rollout_id: RolloutId, action: Annotated[Action, guarded(Permission.PUBLISH, "rollout.rollback")]
                 ) -> Response:
        to_version = action.form.get("to", "").strip() or None
        try:
            _stopped, replacement = rollouts.rollback(rollout_id, to_version=to_version, by=action.staff.username)
        except RolloutError as exc:
            return refused(action, exc, rollout_id)
        if replacement is None:
            return done(action, rollout_id)
        return done(action, replacement.rollout_id, "to %s: rollout %s" % (replacement.version, replacement.rollout_id))
