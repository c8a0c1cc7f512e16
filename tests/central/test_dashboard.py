"""The staff dashboard (central/dashboard/): passwords, TOTP, lockout, sessions, CSRF and roles, the
fleet's figures and filters, and its pages, through its routes in-process (Starlette's TestClient) on a
clock the tests move. The same pages in a real browser: test_dashboard_browser.py."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from starlette.testclient import TestClient

from central import migrate
from central.dashboard import accounts as accounts_module
from central.dashboard import fleet, passwords, sessions, texts, totp
from central.dashboard.accounts import AccountError, StaffAccounts, Verdict
from central.dashboard.roles import Role
from central.dashboard.web import LOGIN_COOKIE, SESSION_COOKIE, Dashboard, install
from central.db import Database
from central.devices import Devices
from central.models import Device, KioskAuditEntry, StaffAuditEntry, StaffSession
from central.telemetry import HeartbeatBody, SelftestBody, Telemetry

PASSWORD = "correct horse battery staple"
RFC_SEEDS = {"sha1": b"12345678901234567890", "sha256": b"12345678901234567890123456789012",
             "sha512": b"1234567890123456789012345678901234567890123456789012345678901234"}
# RFC 6238, appendix B: time, then the 8-digit code for SHA-1, SHA-256, SHA-512.
RFC_VECTORS = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


class Clock:
    """Central's clock, as the test sets it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 29, 10, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def database(fresh_db_url: str) -> Iterator[Database]:
    migrate.upgrade(fresh_db_url)
    database = Database(fresh_db_url)
    yield database
    database.dispose()


@pytest.fixture
def accounts(database: Database, clock: Clock) -> StaffAccounts:
    return StaffAccounts(database, clock=clock)


def audit_rows(database: Database) -> list[tuple]:
    with database.reading() as session:
        return [(e.username, e.action, e.target, e.outcome, e.detail)
                for e in session.scalars(select(StaffAuditEntry).order_by(StaffAuditEntry.id))]


def hidden(page: str, name: str = "csrf") -> str:
    found = re.search(r'name="%s" value="([^"]*)"' % name, page)
    assert found, "no %s field in the page" % name
    return found.group(1)


@dataclass
class Site:
    """The dashboard on an app of its own, and a browser-like client (cookies kept) over HTTPS."""

    client: TestClient
    dashboard: Dashboard
    clock: Clock
    secrets: dict[str, str]

    def add(self, username: str, role: Role) -> None:
        self.secrets[username] = self.dashboard.accounts.add(username, role, PASSWORD).secret

    def password(self, username: str, password: str = PASSWORD, **overrides: str):
        form = self.client.get("/dashboard/login").text
        data = {"csrf": hidden(form), "username": username, "password": password, "lang": "ar", **overrides}
        return self.client.post("/dashboard/login", data=data, follow_redirects=False)

    def code(self, code: str, **overrides: str):
        form = self.client.get("/dashboard/second-factor").text
        return self.client.post("/dashboard/second-factor", data={"csrf": hidden(form), "code": code, **overrides},
                                follow_redirects=False)

    def current_code(self, username: str, *, steps: int = 0) -> str:
        return totp.code_at(self.secrets[username], self.clock.now.timestamp() + steps * totp.STEP_S)

    def sign_in(self, username: str) -> None:
        assert self.password(username).status_code == 303
        answer = self.code(self.current_code(username))
        assert (answer.status_code, answer.headers["location"]) == (303, "/dashboard")

    def csrf(self) -> str:
        return hidden(self.client.get("/dashboard").text)


@pytest.fixture
def site(database: Database, clock: Clock) -> Iterator[Site]:
    app = FastAPI()
    dashboard = install(app, database, Devices(database), clock=clock)
    with TestClient(app, base_url="https://testserver") as client:
        yield Site(client, dashboard, clock, {})


def add_kiosk(database: Database, device_id: str, governorate: str | None = "damascus", *,
              revoked: bool = False) -> None:
    with database.writing() as session:
        session.add(Device(device_id=device_id, public_key="ab" * 32, enrolled_at="2026-11-01T08:00:00Z",
                           governorate=governorate, revoked_at="2026-11-02T08:00:00Z" if revoked else None))


def heartbeat(telemetry: Telemetry, device_id: str, **facts: object) -> None:
    body = {"sent_at": "2026-11-29T10:00:00Z", "version": "0.1.0", "state": "ready", "queue_depth": 0,
            "dead_letters": 0, "devices": {"card_reader": "ready", "terminal": "ready", "printer": "ready"},
            "paper": "ok", "door": "closed", **facts}
    assert telemetry.heartbeat(device_id, HeartbeatBody.model_validate(body)).http_status == 200


# --- passwords ------------------------------------------------------------------------------------


def test_a_password_is_kept_as_a_salted_scrypt_hash_with_its_parameters() -> None:
    first, second = passwords.hash_password(PASSWORD), passwords.hash_password(PASSWORD)
    assert first != second                                   # a salt of its own each time
    assert first.startswith("scrypt$15$8$1$") and PASSWORD not in first
    assert passwords.verify_password(PASSWORD, first) and passwords.verify_password(PASSWORD, second)
    assert not passwords.verify_password(PASSWORD + "x", first)
    assert not passwords.verify_password(PASSWORD, "scrypt$15$8$1$AAAA$garbage")


def test_a_hash_made_with_other_parameters_still_checks_and_asks_to_be_made_again() -> None:
    cheaper = passwords.hash_password(PASSWORD, log2_n=14)
    assert cheaper.startswith("scrypt$14$") and passwords.verify_password(PASSWORD, cheaper)
    assert passwords.needs_rehash(cheaper) and not passwords.needs_rehash(passwords.hash_password(PASSWORD))


def test_a_hash_asking_for_too_much_memory_matches_nothing() -> None:
    made = passwords.hash_password(PASSWORD)
    greedy = made.replace("scrypt$15$", "scrypt$22$", 1)
    assert not passwords.verify_password(PASSWORD, greedy)


def test_a_short_password_is_refused_without_being_echoed() -> None:
    with pytest.raises(passwords.PasswordError) as refused:
        passwords.hash_password("hunter2")
    assert "hunter2" not in str(refused.value)


# --- TOTP -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", RFC_VECTORS, ids=[str(v[0]) for v in RFC_VECTORS])
def test_totp_gives_the_rfc_6238_test_vectors(vector) -> None:
    unix_time, *codes = vector
    for digest, expected in zip(("sha1", "sha256", "sha512"), codes):
        assert totp.hotp(RFC_SEEDS[digest], totp.step_at(unix_time), digits=8, digest=digest) == expected


def test_a_code_is_taken_one_step_either_side_of_now_and_only_once() -> None:
    secret, now = totp.new_secret(), 1_800_000_015.0
    step = totp.step_at(now)
    for offset in (-1, 0, 1):
        assert totp.accept(secret, totp.code_at(secret, now + offset * 30), now, None) == step + offset
    for offset in (-2, 2):
        assert totp.accept(secret, totp.code_at(secret, now + offset * 30), now, None) is None
    taken = totp.accept(secret, totp.code_at(secret, now), now, None)
    assert totp.accept(secret, totp.code_at(secret, now), now, taken) is None          # once
    assert totp.accept(secret, totp.code_at(secret, now - 30), now, taken) is None     # nor an older one
    assert totp.accept(secret, totp.code_at(secret, now + 30), now, taken) == step + 1
    assert totp.accept(secret, "12345", now, None) is None and totp.accept(secret, "abcdef", now, None) is None


def test_the_provisioning_uri_is_what_authenticator_apps_read() -> None:
    secret = totp.new_secret()
    assert len(secret) == 32 and re.fullmatch(r"[A-Z2-7]+", secret)
    uri = totp.provisioning_uri(secret, "amal")
    assert uri.startswith("otpauth://totp/Kiosk%20central%3Aamal?secret=" + secret + "&")
    assert "digits=6" in uri and "period=30" in uri and "algorithm=SHA1" in uri


# --- accounts and lockout -------------------------------------------------------------------------


def test_an_account_name_is_checked_and_taken_once(accounts: StaffAccounts) -> None:
    accounts.add("amal", Role.OPERATOR, PASSWORD)
    for bad in ("Amal", "a", "amal<script>", "-amal"):
        with pytest.raises(AccountError):
            accounts.add(bad, Role.VIEWER, PASSWORD)
    with pytest.raises(AccountError, match="already"):
        accounts.add("amal", Role.VIEWER, PASSWORD)
    with pytest.raises(AccountError, match="12"):
        accounts.add("basel", Role.VIEWER, "short")


def test_five_failures_in_a_row_lock_the_account_even_against_the_right_password(accounts: StaffAccounts,
                                                                                 clock: Clock) -> None:
    accounts.add("amal", Role.OPERATOR, PASSWORD)
    verdicts = [accounts.check_password("amal", "wrong password %d" % n) for n in range(5)]
    assert verdicts == [Verdict.WRONG] * 4 + [Verdict.LOCKED_NOW]
    assert accounts.check_password("amal", PASSWORD) is Verdict.LOCKED
    clock.advance(minutes=14, seconds=59)
    assert accounts.check_password("amal", PASSWORD) is Verdict.LOCKED
    clock.advance(seconds=1)
    assert accounts.check_password("amal", PASSWORD) is Verdict.ACCEPTED


def test_the_password_alone_does_not_clear_the_failures_so_codes_cannot_be_guessed_between_sign_ins(
        accounts: StaffAccounts) -> None:
    accounts.add("amal", Role.OPERATOR, PASSWORD)
    verdicts = []
    for _ in range(3):
        assert accounts.check_password("amal", PASSWORD) is Verdict.ACCEPTED
        verdicts += [accounts.check_code("amal", "000000"), accounts.check_code("amal", "999999")]
    assert Verdict.LOCKED_NOW in verdicts and accounts.check_password("amal", PASSWORD) is Verdict.LOCKED


def test_a_disabled_or_unknown_account_is_refused(accounts: StaffAccounts) -> None:
    accounts.add("amal", Role.OPERATOR, PASSWORD)
    assert accounts.disable("amal") and not accounts.disable("nobody")
    assert accounts.check_password("amal", PASSWORD) is Verdict.DISABLED
    assert accounts.check_password("nobody", PASSWORD) is Verdict.UNKNOWN


def test_a_new_second_factor_replaces_the_old_one(accounts: StaffAccounts, clock: Clock) -> None:
    old = accounts.add("amal", Role.OPERATOR, PASSWORD).secret
    new = accounts.reset_totp("amal").secret
    assert new != old and accounts.reset_totp("nobody") is None
    assert accounts.check_code("amal", totp.code_at(old, clock.now.timestamp())) is Verdict.WRONG
    assert accounts.check_code("amal", totp.code_at(new, clock.now.timestamp())) is Verdict.ACCEPTED


# --- signing in, sessions -------------------------------------------------------------------------


def test_signing_in_takes_the_password_then_a_code_and_opens_the_overview_in_arabic(site: Site,
                                                                                   database: Database) -> None:
    site.add("amal", Role.OPERATOR)
    answer = site.password("amal")
    assert (answer.status_code, answer.headers["location"]) == (303, "/dashboard/second-factor")
    waiting = site.client.cookies[SESSION_COOKIE]
    assert site.client.get("/dashboard", follow_redirects=False).headers["location"] == "/dashboard/second-factor"
    answer = site.code(site.current_code("amal"))
    assert (answer.status_code, answer.headers["location"]) == (303, "/dashboard")
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" in cookie and "Path=/dashboard" in cookie
    assert site.client.cookies[SESSION_COOKIE] != waiting                # a new token once signed in
    page = site.client.get("/dashboard")
    assert page.status_code == 200 and page.text.startswith('<!DOCTYPE html>\n<html dir="rtl" lang="ar">')
    assert "نظرة عامة على الأكشاك" in page.text and "<script" not in page.text
    with database.reading() as session:                              # only digests are kept
        digests = set(session.scalars(select(StaffSession.token_digest)))
    assert site.client.cookies[SESSION_COOKIE] not in digests and len(digests) == 1


def test_pages_without_a_session_lead_to_the_sign_in_form(site: Site) -> None:
    for path in ("/dashboard", "/dashboard/kiosks", "/dashboard/kiosks/kiosk-01", "/dashboard/audit"):
        answer = site.client.get(path + "?lang=en", follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, "/dashboard/login?lang=en")
    form = site.client.get("/dashboard/login")
    assert 'name="password"' in form.text and '<html dir="rtl" lang="ar">' in form.text
    assert "HttpOnly" in form.headers["set-cookie"] and "SameSite=strict" in form.headers["set-cookie"]


def test_a_wrong_password_or_name_is_refused_alike_and_audited(site: Site, database: Database) -> None:
    site.add("amal", Role.OPERATOR)
    wrong_password = site.password("amal", "not the password at all")
    wrong_name = site.password("nobody")
    assert wrong_password.status_code == wrong_name.status_code == 401
    assert "تعذّر تسجيل الدخول" in wrong_password.text and "تعذّر تسجيل الدخول" in wrong_name.text
    assert SESSION_COOKIE not in site.client.cookies
    assert audit_rows(database)[-2:] == [("amal", "login.password", None, "failed", "wrong"),
                                         (None, "login.password", None, "failed", "unknown")]


def test_the_sign_in_form_needs_its_own_token(site: Site, database: Database) -> None:
    site.add("amal", Role.OPERATOR)
    site.client.get("/dashboard/login")
    answer = site.client.post("/dashboard/login", data={"csrf": "forged", "username": "amal", "password": PASSWORD},
                              follow_redirects=False)
    assert answer.status_code == 403 and SESSION_COOKIE not in site.client.cookies
    site.client.cookies.delete(LOGIN_COOKIE, path="/dashboard/login")
    answer = site.client.post("/dashboard/login", data={"csrf": "", "username": "amal", "password": PASSWORD},
                              follow_redirects=False)
    assert answer.status_code == 403
    assert audit_rows(database)[-1] == (None, "login.password", None, "refused", "csrf")


def test_a_code_is_taken_once_even_by_another_sign_in(site: Site, database: Database) -> None:
    site.add("amal", Role.OPERATOR)
    code = site.current_code("amal")
    assert site.password("amal").status_code == 303 and site.code(code).status_code == 303
    site.client.cookies.clear()
    assert site.password("amal").status_code == 303
    again = site.code(code)
    assert again.status_code == 401 and "استُعمل من قبل" in again.text
    assert audit_rows(database)[-1] == ("amal", "login.second_factor", None, "failed", "wrong")
    assert site.code(site.current_code("amal", steps=1)).status_code == 303          # the next one is taken


def test_five_wrong_codes_lock_the_account_and_end_the_waiting_session(site: Site, database: Database) -> None:
    site.add("amal", Role.OPERATOR)
    assert site.password("amal").status_code == 303
    for _ in range(4):
        assert site.code("000000").status_code == 401
    locked = site.code("000000")
    assert locked.status_code == 401 and 'name="password"' in locked.text      # back to the password form
    assert site.password("amal").status_code == 401                             # locked, right password or not
    assert [row[4] for row in audit_rows(database)[-2:]] == ["locked_now", "locked"]


def test_a_session_ends_when_idle_and_when_it_has_lasted_too_long(site: Site) -> None:
    site.add("amal", Role.OPERATOR)
    site.sign_in("amal")
    site.clock.advance(minutes=14)
    assert site.client.get("/dashboard").status_code == 200
    site.clock.advance(minutes=15, seconds=1)
    answer = site.client.get("/dashboard", follow_redirects=False)
    assert answer.headers["location"] == "/dashboard/login?lang=ar&expired=1"
    assert "انتهت الجلسة" in site.client.get(answer.headers["location"]).text

    site.clock.advance(minutes=1)
    site.sign_in("amal")
    for _ in range(8 * 60 // 10 - 1):            # used every 10 minutes, never idle
        site.clock.advance(minutes=10)
        assert site.client.get("/dashboard", follow_redirects=False).status_code == 200
    site.clock.advance(minutes=10, seconds=1)
    assert site.client.get("/dashboard", follow_redirects=False).status_code == 303


def test_a_password_without_its_code_expires(site: Site) -> None:
    site.add("amal", Role.OPERATOR)
    assert site.password("amal").status_code == 303
    form = site.client.get("/dashboard/second-factor").text
    site.clock.advance(minutes=5, seconds=1)
    answer = site.client.post("/dashboard/second-factor",
                              data={"csrf": hidden(form), "code": site.current_code("amal")}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/dashboard/login")


def test_signing_out_ends_the_session(site: Site, database: Database) -> None:
    site.add("amal", Role.VIEWER)
    site.sign_in("amal")
    token = site.client.cookies[SESSION_COOKIE]
    answer = site.client.post("/dashboard/logout", data={"csrf": site.csrf()}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/dashboard/login?out=1")
    site.client.cookies.set(SESSION_COOKIE, token, domain="testserver.local", path="/dashboard")
    assert site.client.get("/dashboard", follow_redirects=False).status_code == 303
    assert audit_rows(database)[-1] == ("amal", "logout", None, "ok", "")


def test_disabling_an_account_ends_its_sessions_at_once(site: Site) -> None:
    site.add("amal", Role.OPERATOR)
    site.sign_in("amal")
    site.dashboard.accounts.disable("amal")
    assert site.client.get("/dashboard", follow_redirects=False).status_code == 303


def test_the_language_is_asked_once_and_kept_in_the_session(site: Site) -> None:
    site.add("amal", Role.VIEWER)
    site.sign_in("amal")
    assert '<html dir="ltr" lang="en">' in site.client.get("/dashboard?lang=en").text
    assert '<html dir="ltr" lang="en">' in site.client.get("/dashboard/audit").text
    page = site.client.get("/dashboard/kiosks?lang=ar").text
    assert '<html dir="rtl" lang="ar">' in page and "الأكشاك" in page
    assert '<html dir="rtl" lang="ar">' in site.client.get("/dashboard/kiosks?lang=xx").text


def test_the_second_factor_form_switches_language_too(site: Site) -> None:
    site.add("amal", Role.VIEWER)
    assert site.password("amal").status_code == 303
    page = site.client.get("/dashboard/second-factor?lang=en").text
    assert '<html dir="ltr" lang="en">' in page and "authenticator app" in page
    assert site.code(site.current_code("amal")).status_code == 303
    assert '<html dir="ltr" lang="en">' in site.client.get("/dashboard").text


def test_pages_say_they_run_nothing_load_nothing_and_are_never_kept(site: Site) -> None:
    site.add("amal", Role.VIEWER)
    site.sign_in("amal")
    for path in ("/dashboard/login", "/dashboard", "/dashboard/audit"):
        headers = site.client.get(path).headers
        policy = headers["content-security-policy"]
        assert policy.startswith("default-src 'none'") and "form-action 'self'" in policy
        assert "frame-ancestors 'none'" in policy and "script-src" not in policy
        assert headers["cache-control"] == "no-store" and headers["x-content-type-options"] == "nosniff"


# --- roles and CSRF on an action ------------------------------------------------------------------


def test_an_operator_revokes_a_kiosk_and_the_audit_trail_says_so(site: Site, database: Database) -> None:
    add_kiosk(database, "kiosk-01")
    site.add("amal", Role.OPERATOR)
    site.sign_in("amal")
    page = site.client.get("/dashboard/kiosks/kiosk-01").text
    assert 'action="/dashboard/kiosks/kiosk-01/revoke"' in page
    answer = site.client.post("/dashboard/kiosks/kiosk-01/revoke", data={"csrf": hidden(page)},
                              follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/dashboard/kiosks/kiosk-01")
    with database.reading() as session:
        assert session.get(Device, "kiosk-01").revoked_at is not None
    assert audit_rows(database)[-1] == ("amal", "kiosk.revoke", "kiosk-01", "ok", "")
    page = site.client.get("/dashboard/kiosks/kiosk-01").text
    assert "هذا الكشك مُبطَل" in page and "/revoke" not in page
    assert "إبطال كشك" in site.client.get("/dashboard/audit").text


def test_a_viewer_sees_no_action_and_is_refused_403_when_posting_one(site: Site, database: Database) -> None:
    add_kiosk(database, "kiosk-01")
    site.add("basel", Role.VIEWER)
    site.sign_in("basel")
    page = site.client.get("/dashboard/kiosks/kiosk-01").text
    assert "/revoke" not in page and "صلاحيتك للاطلاع فقط" in page
    answer = site.client.post("/dashboard/kiosks/kiosk-01/revoke", data={"csrf": hidden(page)},
                              follow_redirects=False)
    assert answer.status_code == 403 and "لا تسمح صلاحيتك بهذا الإجراء" in answer.text
    assert 'href="/dashboard?lang=en"' in answer.text               # the switch leads to a page, not the form
    with database.reading() as session:
        assert session.get(Device, "kiosk-01").revoked_at is None
    assert audit_rows(database)[-1] == ("basel", "kiosk.revoke", "kiosk-01", "refused", "role=viewer")


def test_a_publisher_may_act_on_kiosks_too(site: Site, database: Database) -> None:
    add_kiosk(database, "kiosk-01")
    site.add("dana", Role.PUBLISHER)
    site.sign_in("dana")
    answer = site.client.post("/dashboard/kiosks/kiosk-01/revoke", data={"csrf": site.csrf()}, follow_redirects=False)
    assert answer.status_code == 303


@pytest.mark.parametrize("token", ["forged", "", None, "another session's"])
def test_a_form_without_its_session_token_is_refused_403(site: Site, database: Database, token: str | None) -> None:
    add_kiosk(database, "kiosk-01")
    site.add("amal", Role.OPERATOR)
    if token == "another session's":
        site.sign_in("amal")
        token = site.csrf()
        site.client.cookies.clear()
        site.clock.advance(seconds=30)
    site.sign_in("amal")
    data = {} if token is None else {"csrf": token}
    answer = site.client.post("/dashboard/kiosks/kiosk-01/revoke", data=data, follow_redirects=False)
    assert answer.status_code == 403 and "انتهت صلاحية النموذج" in answer.text
    with database.reading() as session:
        assert session.get(Device, "kiosk-01").revoked_at is None
    assert audit_rows(database)[-1] == ("amal", "kiosk.revoke", "kiosk-01", "refused", "csrf")


def test_a_form_with_the_token_in_another_body_is_refused(site: Site, database: Database) -> None:
    add_kiosk(database, "kiosk-01")
    site.add("amal", Role.OPERATOR)
    site.sign_in("amal")
    answer = site.client.post("/dashboard/kiosks/kiosk-01/revoke", json={"csrf": site.csrf()}, follow_redirects=False)
    assert answer.status_code == 403


def test_a_form_without_a_session_is_refused_and_audited(site: Site, database: Database) -> None:
    add_kiosk(database, "kiosk-01")
    answer = site.client.post("/dashboard/kiosks/kiosk-01/revoke", data={"csrf": "x"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/dashboard/login")
    assert audit_rows(database)[-1] == (None, "kiosk.revoke", "kiosk-01", "refused", "no_session")


def test_revoking_a_kiosk_that_does_not_exist_is_a_404(site: Site) -> None:
    site.add("amal", Role.OPERATOR)
    site.sign_in("amal")
    answer = site.client.post("/dashboard/kiosks/kiosk-99/revoke", data={"csrf": site.csrf()}, follow_redirects=False)
    assert answer.status_code == 404
    assert site.client.get("/dashboard/kiosks/kiosk-99").status_code == 404


# --- the fleet ------------------------------------------------------------------------------------


@pytest.fixture
def fleet_of_five(database: Database, clock: Clock) -> Telemetry:
    """Five kiosks: ready in Damascus, paper low in Damascus, door open in Aleppo (heard 40 minutes ago),
    one never heard from in Homs, one revoked in Aleppo."""
    telemetry = Telemetry(database, clock=clock)
    for device_id, governorate in (("kiosk-01", "damascus"), ("kiosk-02", "damascus"), ("kiosk-03", "aleppo"),
                                   ("kiosk-04", "homs")):
        add_kiosk(database, device_id, governorate)
    add_kiosk(database, "kiosk-05", "aleppo", revoked=True)
    heartbeat(telemetry, "kiosk-03", door="open", state="out_of_service", reason="door_open")
    clock.advance(minutes=40)
    heartbeat(telemetry, "kiosk-01", alerts=[{"code": "update.failed", "raised_at": "2026-11-29T10:35:00Z"}])
    heartbeat(telemetry, "kiosk-02", paper="low", state="busy",
              alerts=[{"code": "update.failed", "raised_at": "2026-11-29T10:30:00Z"},
                      {"code": "update.installed", "raised_at": "2026-11-29T10:36:00Z"}])
    return telemetry


def test_the_overview_counts_kiosks_by_condition_and_governorate(database: Database, clock: Clock,
                                                                 fleet_of_five: Telemetry) -> None:
    overview = fleet.Fleet(database, clock=clock).overview()
    assert overview.total == 5
    assert dict(overview.by_condition) == {"ready": 1, "busy": 1, "offline": 0, "out_of_service": 0, "fault": 0,
                                           "silent": 1, "never": 1, "revoked": 1}
    assert overview.by_governorate == [("aleppo", 2, {"silent": 1, "revoked": 1}),
                                       ("damascus", 2, {"ready": 1, "busy": 1}), ("homs", 1, {"never": 1})]
    assert (overview.silent, overview.paper_low, overview.door_open, overview.failed_updates) == (2, 1, 1, 1)


@pytest.mark.parametrize("query, expected", [
    ({}, ["kiosk-01", "kiosk-02", "kiosk-03", "kiosk-04", "kiosk-05"]),
    ({"offline": "30"}, ["kiosk-03", "kiosk-04"]),
    ({"offline": "41"}, ["kiosk-04"]),
    ({"paper": "low"}, ["kiosk-02"]),
    ({"door": "open"}, ["kiosk-03"]),
    ({"update": "failed"}, ["kiosk-01"]),
    ({"governorate": "aleppo"}, ["kiosk-03", "kiosk-05"]),
    ({"condition": "revoked"}, ["kiosk-05"]),
    ({"governorate": "damascus", "paper": "low"}, ["kiosk-02"]),
    ({"offline": "-5", "condition": "nonsense", "paper": "yes"}, ["kiosk-01", "kiosk-02", "kiosk-03", "kiosk-04",
                                                                  "kiosk-05"]),
])
def test_the_kiosks_list_filters(database: Database, clock: Clock, fleet_of_five: Telemetry, query: dict,
                                 expected: list[str]) -> None:
    rows = fleet.Fleet(database, clock=clock).kiosks(fleet.Filters.from_query(query))
    assert [row.device_id for row in rows] == expected


def test_the_pages_show_the_fleet(site: Site, database: Database, fleet_of_five: Telemetry) -> None:
    site.add("amal", Role.VIEWER)
    site.sign_in("amal")
    overview = site.client.get("/dashboard?lang=en").text
    assert 'id="card-total"><span class="figure">5</span>' in overview
    assert 'id="card-paper"><span class="figure">1</span>' in overview and "Aleppo" in overview
    listing = site.client.get("/dashboard/kiosks", params={"paper": "low"}).text
    assert "1 kiosks" in listing and "kiosk-02" in listing and "kiosk-01" not in listing
    one = site.client.get("/dashboard/kiosks/kiosk-03").text
    assert "out of service" in one and "door_open" in one and "Heartbeat history" in one
    report = {"device_id": "kiosk-01", "checked_at": "2026-11-29T10:39:00Z", "ok": False, "failed": ["printer"],
              "checks": [{"name": "printer", "status": "failed", "detail": "no paper", "seconds": 0.2}]}
    assert fleet_of_five.selftest("kiosk-01", SelftestBody.model_validate(report)).http_status == 200
    with database.writing() as session:
        session.add(KioskAuditEntry(device_id="kiosk-01", seq=1, at="2026-11-29T10:38:00.000Z", event="door.opened",
                                    technician=None, detail="", hash="0" * 64, received_at="2026-11-29T10:40:00Z"))
    one = site.client.get("/dashboard/kiosks/kiosk-01").text
    assert "update.failed" in one and "failed: <bdi>printer</bdi>" in one and "door.opened" in one
    arabic = site.client.get("/dashboard?lang=ar").text
    assert "حلب" in arabic and "الأكشاك حسب المحافظة" in arabic


def test_what_the_pages_show_is_escaped(site: Site, database: Database) -> None:
    add_kiosk(database, "kiosk-01", governorate='<script>alert("x")</script>')
    site.add("amal", Role.VIEWER)
    site.sign_in("amal")
    for path in ("/dashboard", "/dashboard/kiosks", "/dashboard/kiosks/kiosk-01"):
        page = site.client.get(path).text
        assert "<script>" not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


def test_the_audit_trail_shows_who_did_what(site: Site) -> None:
    site.add("amal", Role.OPERATOR)
    site.password("nobody")
    site.sign_in("amal")
    page = site.client.get("/dashboard/audit?lang=en").text
    assert "(unknown name)" in page and "(console)" in page and "account added" in page and "sign-in" in page


# --- the catalogue ---------------------------------------------------------------------------------


def test_every_text_is_in_both_languages() -> None:
    for key, words in texts.TEXTS.items():
        assert set(words) == set(texts.LANGUAGES) and all(words.values()), key
    for name in ("condition", "paper", "door"):
        values = {"condition": fleet.CONDITIONS, "paper": ("ok", "low", "out"), "door": ("closed", "open")}[name]
        for value in values:
            assert texts.has("%s.%s" % (name, value))
    for role in Role:
        assert texts.has("role." + role.value)
    assert sessions.LANGUAGES == texts.LANGUAGES and accounts_module.MAX_FAILURES == 5


# --- the console -----------------------------------------------------------------------------------


def test_staff_accounts_are_made_and_managed_at_the_console(tmp_path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from central import cli

    db_url = "sqlite:///%s" % (tmp_path / "central.sqlite3")

    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = cli.main(["staff", *args, "--db", db_url])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _err = run("add", "amal", "--role", "operator", stdin=PASSWORD + "\n")
    assert code == 0 and PASSWORD not in out
    secret = re.search(r"^secret: ([A-Z2-7]+)$", out, re.M).group(1)
    assert "uri: otpauth://totp/Kiosk%20central%3Aamal?secret=" + secret in out
    assert run("add", "amal", "--role", "viewer", stdin=PASSWORD + "\n")[0] == 2
    code, _out, err = run("add", "basel", "--role", "viewer", stdin="short\n")
    assert code == 2 and "12" in err and "short" not in err
    database = Database(db_url)
    try:
        accounts = StaffAccounts(database)
        assert accounts.check_password("amal", PASSWORD) is Verdict.ACCEPTED
        assert accounts.check_code("amal", totp.code_at(secret, datetime.now(UTC).timestamp())) is Verdict.ACCEPTED
        code, out, _err = run("reset-totp", "amal")
        new_secret = re.search(r"^secret: ([A-Z2-7]+)$", out, re.M).group(1)
        assert code == 0 and new_secret != secret
        assert run("list")[1].startswith("amal\toperator\tmade ")
        assert run("disable", "amal")[0] == 0 and "\tdisabled " in run("list")[1]
        assert accounts.check_password("amal", PASSWORD) is Verdict.DISABLED
        assert run("disable", "nobody")[0] == 2 and run("reset-totp", "nobody")[0] == 2
    finally:
        database.dispose()
