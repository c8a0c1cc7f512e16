"""The dashboard's announcements for the kiosks' attract screens (central/announcements.py).

    GET  /dashboard/announcements                             every announcement and its state (showing, ended,
                                                              withdrawn); the form       (operators get the form)
    POST /dashboard/announcements                             publish one: Arabic and English text, a governorate
                                                              or everywhere, an end time or none (operator, publisher)
    POST /dashboard/announcements/{announcement_id}/withdraw  withdraw one                (operator, publisher)

The forms go through the dashboard's guard (web.py) and are written in the staff audit trail. central/
announcements.py decides what it takes (`checked_text`, `parse_until`, the governorate's pattern); what it
refuses is shown on the page again, field by field, in the staff's language, with what was typed kept.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' Annotated aliases from the live
# annotations (as web.py).
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse, Response

from central.announcements import TEXT_MAX, AnnouncementError, AnnouncementRow, Announcements, checked_text, \
    parse_until
from central.dashboard import pages
from central.dashboard.audit import Outcome
from central.dashboard.roles import Permission, may
from central.dashboard.sessions import Staff
from central.dashboard.web import PREFIX, Action, Dashboard
from central.db import iso_utc, utc_now
from central.devices import GOVERNORATE
from kiosk import wire

PAGE = PREFIX + "/announcements"
_LONG_AGO = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Shown:
    """An announcement as the page lists it: its row and its state now."""

    row: AnnouncementRow
    state: str                 # showing | ended | withdrawn


def state_of(row: AnnouncementRow, now: str) -> str:
    if row.withdrawn_at:
        return "withdrawn"
    return "ended" if row.until is not None and row.until <= now else "showing"


def _text_problem(text: str, language: str) -> str | None:
    """Why `checked_text` refuses `text`, as a code: empty, too_long or not_plain; None if it takes it."""
    try:
        checked_text(text, language)
    except AnnouncementError:
        stripped = text.strip()
        return "empty" if not stripped else "too_long" if len(stripped) > TEXT_MAX else "not_plain"
    return None


def read(form: dict[str, str]) -> tuple[dict[str, str], dict[str, object]]:
    """The problems of the form (field -> code of ``announcements.error.<field>.<code>``), and the
    announcement's keywords when there are none."""
    problems: dict[str, str] = {}
    for field, language in (("text_ar", "Arabic"), ("text_en", "English")):
        code = _text_problem(form.get(field, ""), language)
        if code:
            problems[field] = code
    governorate = form.get("governorate", "").strip()
    if governorate and not GOVERNORATE.fullmatch(governorate):
        problems["governorate"] = "invalid"
    until_text, until = form.get("until", "").strip(), None
    if until_text and not _readable(until_text):
        problems["until"] = "invalid"
    elif until_text:
        try:
            until = parse_until(until_text)
        except AnnouncementError:                          # readable, and past
            problems["until"] = "past"
    if problems:
        return problems, {}
    return {}, {"text_ar": form["text_ar"], "text_en": form["text_en"], "governorate": governorate, "until": until}


def _readable(text: str) -> bool:
    """Whether `parse_until` can read `text` at all (whatever the time now)."""
    try:
        parse_until(text, now=_LONG_AGO)
    except AnnouncementError:
        return False
    return True


def install(app: FastAPI, announcements: Announcements) -> None:
    """The announcements' page and forms on `app`, behind the dashboard `install`ed there already."""
    dashboard: Dashboard = app.state.dashboard
    SignedIn = Annotated[Staff, Depends(dashboard.signed_in)]
    AnnouncementId = Annotated[str, PathParam(pattern=wire.ID_PATTERN)]

    def page(staff: Staff, *, problems: dict[str, str] | None = None, form: dict[str, str] | None = None,
             status_code: int = 200) -> Response:
        now = iso_utc(utc_now())
        shown = [Shown(row, state_of(row, now)) for row in announcements.list()]
        return pages.render("announcements.html", staff.language, status_code=status_code, staff=staff,
                            page="announcements", here=PAGE, announcements=shown, form=form or {},
                            problems=problems or {}, max_chars=TEXT_MAX, governorates=dashboard.fleet.governorates(),
                            may_operate=may(staff.role, Permission.OPERATE))

    @app.get(PAGE, include_in_schema=False)
    def announcements_page(staff: SignedIn) -> Response:
        return page(staff)

    @app.post(PAGE, include_in_schema=False)
    def publish(action: Annotated[Action, Depends(dashboard.guard(Permission.OPERATE, "announcement.publish"))]
                ) -> Response:
        problems, made = read(action.form)
        if problems:
            action.done(Outcome.FAILED, "invalid: %s" % ",".join("%s=%s" % item for item in sorted(problems.items())))
            return page(action.staff, problems=problems, form=action.form, status_code=422)
        row = announcements.announce(made["text_ar"], made["text_en"], governorate=made["governorate"],
                                     until=made["until"])
        replace(action, target=row.announcement_id).done(
            Outcome.OK, "%s, until %s" % (row.governorate or "everywhere", row.until or "withdrawn"))
        return RedirectResponse(PAGE, status_code=303)

    @app.post(PAGE + "/{announcement_id}/withdraw", include_in_schema=False)
    def withdraw(announcement_id: AnnouncementId, action: Annotated[Action, Depends(
            dashboard.guard(Permission.OPERATE, "announcement.withdraw", target_param="announcement_id"))]
                 ) -> Response:
        if not announcements.withdraw(announcement_id):
            action.done(Outcome.FAILED, "unknown")
            return pages.render("not_found.html", action.staff.language, status_code=404, staff=action.staff,
                                page="announcements", reason="not_found.announcement", here=PAGE)
        action.done()
        return RedirectResponse(PAGE, status_code=303)

