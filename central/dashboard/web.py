"""The dashboard's routes under /dashboard, and what guards them.

    GET  /dashboard/login                   the password form (?lang=en for English)
    POST /dashboard/login                   the password: a session awaiting the second factor
    GET  /dashboard/second-factor           the code form
    POST /dashboard/second-factor           the TOTP code: signed in
    POST /dashboard/logout
    GET  /dashboard                         the overview                           (every signed-in role)
    GET  /dashboard/kiosks                  the kiosks, with filters
    GET  /dashboard/kiosks/{device_id}      one kiosk
    GET  /dashboard/audit                   the staff audit trail
    POST /dashboard/kiosks/{device_id}/revoke                                      (operator, publisher)

A page without a signed-in session redirects to the sign-in form. Every form carries the session's form
token (CSRF; the sign-in form a token of its own cookie, as no session exists yet); a POST without the
right one, or from a role without the permission its route names, is answered 403 and written in the
staff audit trail, as is every POST that is carried out. The session cookie is HttpOnly,
SameSite=Strict, limited to /dashboard, and Secure when central serves HTTPS.

Other features add their forms on central's app with ``app.state.dashboard.guard(permission, action)``
(a dependency that answers the checked ``Action``; its ``done()`` writes the audit entry) and their pages
with ``Dashboard.signed_in`` (``Dashboard.allowed(permission, name)`` for a page some roles may not see)
and ``pages.render``.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' Annotated aliases, local to
# Dashboard.add_routes, from the live annotations.
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse, Response

from central.dashboard import fleet, pages
from central.dashboard.accounts import StaffAccounts, Verdict
from central.dashboard.audit import Outcome, StaffAudit
from central.dashboard.roles import Permission, may
from central.dashboard.sessions import Staff, StaffSessions
from central.dashboard.texts import LANGUAGES
from central.db import Database, utc_now
from central.devices import Devices
from kiosk import wire

PREFIX = "/dashboard"
SESSION_COOKIE = "kiosk_staff"
LOGIN_COOKIE = "kiosk_staff_login"          # the sign-in form's token, before any session exists
_FORM_FIELDS = 20


class Answered(Exception):
    """A guard's answer in place of the route's: a redirect to sign in, a refusal page."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def _answered(_request: Request, exc: Exception) -> Response:
    return exc.response if isinstance(exc, Answered) else Response(status_code=500)   # registered for Answered


async def form_fields(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the first value of each); {} for any other body."""
    if request.headers.get("content-type", "").partition(";")[0].strip().lower() \
            != "application/x-www-form-urlencoded":
        return {}
    try:
        pairs = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True,
                          max_num_fields=_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return {}
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


def _same(given: str | None, expected: str | None) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _language(asked: str | None, fallback: str = LANGUAGES[0]) -> str:
    return asked if asked in LANGUAGES else fallback


def _redirect(path: str, **query: str) -> RedirectResponse:
    return RedirectResponse(path + ("?" + urlencode(query) if query else ""), status_code=303)


@dataclass(frozen=True)
class Action:
    """A form that passed its guard: who sent it, its fields, and the audit entry to write once done."""

    staff: Staff
    form: dict[str, str]
    name: str
    target: str | None
    _audit: StaffAudit

    def done(self, outcome: Outcome = Outcome.OK, detail: str = "") -> None:
        self._audit.record(self.staff.username, self.name, outcome, self.target, detail)


class Dashboard:
    def __init__(self, database: Database, devices: Devices, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.accounts = StaffAccounts(database, clock=clock)
        self.sessions = StaffSessions(database, clock=clock)
        self.audit = StaffAudit(database, clock=clock)
        self.fleet = fleet.Fleet(database, clock=clock)
        self.devices = devices

    # --- guards --------------------------------------------------------------------------------------

    def _set_session_cookie(self, request: Request, response: Response, token: str) -> None:
        response.set_cookie(SESSION_COOKIE, token, httponly=True, secure=request.url.scheme == "https",
                            samesite="strict", path=PREFIX)

    def signed_in(self, request: Request) -> Staff:
        """The signed-in member of staff (any role); else an answer redirecting to the sign-in form.
        ``?lang=`` on any page changes the session's language."""
        token = request.cookies.get(SESSION_COOKIE)
        staff = self.sessions.find(token)
        asked = request.query_params.get("lang")
        if staff is not None and not staff.signed_in:
            raise Answered(_redirect(PREFIX + "/second-factor"))         # the password given, not the code
        if staff is None:
            query = {"lang": _language(asked)}
            if token:
                query["expired"] = "1"
            raise Answered(_redirect(PREFIX + "/login", **query))
        if asked in LANGUAGES and asked != staff.language:
            self.sessions.set_language(token, asked)
            staff = replace(staff, language=asked)
        return staff

    def _refused(self, staff: Staff | None, reason: str, language: str) -> Answered:
        return Answered(pages.render("refused.html", language, status_code=403, staff=staff,
                                     reason="refused." + reason, here=PREFIX))

    def guard(self, permission: Permission, name: str, *, target_param: str | None = None
              ) -> Callable[..., Action]:
        """A dependency for a form's route: a signed-in session, the form token, the permission. It
        answers the Action (whose ``done`` audits it) or refuses (403, audited)."""
        def check(request: Request, form: Annotated[dict[str, str], Depends(form_fields)]) -> Action:
            target = request.path_params.get(target_param) if target_param else None
            staff = self.sessions.find(request.cookies.get(SESSION_COOKIE))
            if staff is None or not staff.signed_in:
                self.audit.record(staff.username if staff else None, name, Outcome.REFUSED, target, "no_session")
                raise Answered(_redirect(PREFIX + "/login", expired="1"))
            if not _same(form.get("csrf"), staff.csrf_token):
                self.audit.record(staff.username, name, Outcome.REFUSED, target, "csrf")
                raise self._refused(staff, "csrf", staff.language)
            if not may(staff.role, permission):
                self.audit.record(staff.username, name, Outcome.REFUSED, target, "role=%s" % staff.role.value)
                raise self._refused(staff, "role", staff.language)
            return Action(staff, form, name, target, self.audit)
        return check

    def allowed(self, permission: Permission, name: str, *, target_param: str | None = None
                ) -> Callable[..., Staff]:
        """A dependency for a page only some roles may see: the signed-in member of staff, or a refusal
        (403, written in the staff audit trail as `name`)."""
        def check(request: Request, staff: Annotated[Staff, Depends(self.signed_in)]) -> Staff:
            if not may(staff.role, permission):
                target = request.path_params.get(target_param) if target_param else None
                self.audit.record(staff.username, name, Outcome.REFUSED, target, "role=%s" % staff.role.value)
                raise self._refused(staff, "role", staff.language)
            return staff
        return check

    # --- the routes ----------------------------------------------------------------------------------

    def add_routes(self, app: FastAPI) -> None:
        """The routes on `app` itself (not an included router: they are listed in ``app.routes``)."""
        def get(path: str) -> Callable:
            return app.get(PREFIX + path, include_in_schema=False)

        def post(path: str) -> Callable:
            return app.post(PREFIX + path, include_in_schema=False)

        SignedIn = Annotated[Staff, Depends(self.signed_in)]
        Language = Annotated[str | None, Query(alias="lang", max_length=8)]
        DeviceId = Annotated[str, PathParam(pattern=wire.ID_PATTERN)]

        def login_page(request: Request, lang: str, *, status_code: int = 200, notice: str | None = None,
                       refused: bool = False) -> Response:
            secure = request.url.scheme == "https"
            token = secrets.token_urlsafe(32)
            response = pages.render("login.html", lang, status_code=status_code, staff=None, csrf=token,
                                    notice=notice, refused=refused)
            response.set_cookie(LOGIN_COOKIE, token, httponly=True, secure=secure, samesite="strict",
                                path=PREFIX + "/login")
            return response

        @get("/login")
        def login_form(request: Request, lang: Language = None, expired: str | None = None,
                       out: str | None = None) -> Response:
            staff = self.sessions.find(request.cookies.get(SESSION_COOKIE))
            if staff is not None and staff.signed_in:
                return _redirect(PREFIX, lang=_language(lang, staff.language))
            notice = "login.expired" if expired else "login.signed_out" if out else None
            return login_page(request, _language(lang), notice=notice)

        @post("/login")
        def login(request: Request, form: Annotated[dict[str, str], Depends(form_fields)]) -> Response:
            lang = _language(form.get("lang"))
            username = form.get("username", "").strip().lower()
            if not _same(form.get("csrf"), request.cookies.get(LOGIN_COOKIE)):
                self.audit.record(None, "login.password", Outcome.REFUSED, None, "csrf")
                raise self._refused(None, "csrf", lang)
            verdict = self.accounts.check_password(username, form.get("password", ""))
            if not verdict.accepted:
                self.audit.record(None if verdict is Verdict.UNKNOWN else username, "login.password",
                                  Outcome.FAILED if verdict in (Verdict.WRONG, Verdict.UNKNOWN) else Outcome.REFUSED,
                                  None, verdict.value)
                return login_page(request, lang, status_code=401, refused=True)
            self.sessions.end_expired()
            token = self.sessions.begin(username, lang)
            self.audit.record(username, "login.password", Outcome.OK)
            response = _redirect(PREFIX + "/second-factor")
            self._set_session_cookie(request, response, token)
            response.delete_cookie(LOGIN_COOKIE, path=PREFIX + "/login")
            return response

        def waiting(request: Request) -> tuple[str, Staff]:
            token = request.cookies.get(SESSION_COOKIE, "")
            staff = self.sessions.find(token)
            if staff is None:
                raise Answered(_redirect(PREFIX + "/login", expired="1"))
            if staff.signed_in:
                raise Answered(_redirect(PREFIX))
            return token, staff

        @get("/second-factor")
        def second_factor_form(request: Request, lang: Language = None) -> Response:
            token, staff = waiting(request)
            if lang in LANGUAGES and lang != staff.language:
                self.sessions.set_language(token, lang)
                staff = replace(staff, language=lang)
            return pages.render("second_factor.html", staff.language, staff=None, csrf=staff.csrf_token,
                                wrong=False)

        @post("/second-factor")
        def second_factor(request: Request, form: Annotated[dict[str, str], Depends(form_fields)]) -> Response:
            token, staff = waiting(request)
            if not _same(form.get("csrf"), staff.csrf_token):
                self.audit.record(staff.username, "login.second_factor", Outcome.REFUSED, None, "csrf")
                raise self._refused(None, "csrf", staff.language)
            verdict = self.accounts.check_code(staff.username, form.get("code", ""))
            if verdict.accepted:
                new_token = self.sessions.complete(token)
                if new_token is not None:
                    self.audit.record(staff.username, "login", Outcome.OK)
                    response = _redirect(PREFIX)
                    self._set_session_cookie(request, response, new_token)
                    return response
            self.audit.record(staff.username, "login.second_factor",
                              Outcome.FAILED if verdict is Verdict.WRONG else Outcome.REFUSED, None, verdict.value)
            if verdict is Verdict.WRONG:
                return pages.render("second_factor.html", staff.language, status_code=401, staff=None,
                                    csrf=staff.csrf_token, wrong=True)
            self.sessions.end(token)
            response = login_page(request, staff.language, status_code=401, refused=True)
            response.delete_cookie(SESSION_COOKIE, path=PREFIX)
            return response

        @post("/logout")
        def logout(request: Request, action: Annotated[Action, Depends(self.guard(Permission.VIEW, "logout"))]
                   ) -> Response:
            self.sessions.end(request.cookies.get(SESSION_COOKIE, ""))
            action.done()
            response = _redirect(PREFIX + "/login", out="1", lang=action.staff.language)
            response.delete_cookie(SESSION_COOKIE, path=PREFIX)
            return response

        @get("")
        def overview(staff: SignedIn) -> Response:
            return pages.render("overview.html", staff.language, staff=staff, page="overview",
                                overview=self.fleet.overview(), conditions_order=fleet.CONDITIONS,
                                silent_minutes=int(fleet.SILENT_AFTER.total_seconds() // 60))

        @get("/kiosks")
        def kiosks(request: Request, staff: SignedIn) -> Response:
            filters = fleet.Filters.from_query(request.query_params)
            return pages.render("kiosks.html", staff.language, staff=staff, page="kiosks", filters=filters,
                                kiosks=self.fleet.kiosks(filters), governorates=self.fleet.governorates(),
                                conditions_order=fleet.CONDITIONS)

        @get("/kiosks/{device_id}")
        def kiosk(device_id: DeviceId, staff: SignedIn) -> Response:
            detail = self.fleet.kiosk(device_id)
            if detail is None:
                return pages.render("not_found.html", staff.language, status_code=404, staff=staff, page="kiosks",
                                    reason="not_found.kiosk")
            return pages.render("kiosk.html", staff.language, staff=staff, page="kiosks", kiosk=detail,
                                audit=self.audit.recent(target=device_id, limit=50),
                                may_operate=may(staff.role, Permission.OPERATE))

        @get("/audit")
        def audit(staff: SignedIn) -> Response:
            return pages.render("audit.html", staff.language, staff=staff, page="audit",
                                audit=self.audit.recent(limit=500))

        @post("/kiosks/{device_id}/revoke")
        def revoke(device_id: DeviceId, action: Annotated[Action, Depends(
                self.guard(Permission.OPERATE, "kiosk.revoke", target_param="device_id"))]) -> Response:
            if not self.devices.revoke(device_id):
                action.done(Outcome.FAILED, "not_enrolled")
                return pages.render("not_found.html", action.staff.language, status_code=404, staff=action.staff,
                                    page="kiosks", reason="not_found.kiosk", here=PREFIX + "/kiosks")
            action.done()
            return _redirect("%s/kiosks/%s" % (PREFIX, device_id))


def install(app: FastAPI, database: Database, devices: Devices, *,
            clock: Callable[[], datetime] = utc_now) -> Dashboard:
    """The dashboard's routes on `app`, and the handler of its guards' answers."""
    dashboard = Dashboard(database, devices, clock=clock)
    dashboard.add_routes(app)
    app.add_exception_handler(Answered, _answered)
    app.state.dashboard = dashboard          # for other features' forms: its guard, its staff
    return dashboard
