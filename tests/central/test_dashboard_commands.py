"""The dashboard's commands and announcements (central/dashboard/command_pages.py, announcement_pages.py):
an operator sends a command to a kiosk, a governorate or every kiosk (a fleet-wide reboot asked again),
follows what became of it, reads the logs a kiosk sent; publishes and withdraws an announcement; a viewer
sees the lists and no form, and a form a viewer sends anyway is refused and audited; a form without its
token is refused; what a form gets wrong is shown field by field, in the staff's language. In-process
(Starlette's TestClient), on SQLite and PostgreSQL; in a real browser: test_dashboard_commands_browser.py."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlalchemy import update
from starlette.testclient import TestClient

from central.announcements import TEXT_MAX, Announcements
from central.commands import Commands, LogsBody, ResultBody
from central.dashboard import announcement_pages, command_pages, texts
from central.dashboard.roles import Role
from central.dashboard.web import install
from central.db import Database
from central.devices import Devices
from central.models import Announcement, KioskCommand
from kiosk.commands import Refusal
from kiosk.wire import CommandAction
from tests.central.test_dashboard import Clock, Site, add_kiosk, audit_rows, database, hidden  # noqa: F401

KEY = Ed25519PrivateKey.generate()       # central's signing key, for the envelopes a heartbeat carries


@pytest.fixture
def commands(database: Database) -> Commands:
    return Commands(database)


@pytest.fixture
def announcements(database: Database) -> Announcements:
    return Announcements(database)


@pytest.fixture
def site(database: Database, commands: Commands, announcements: Announcements) -> Iterator[Site]:
    """The dashboard with its commands' and announcements' pages, on an app of its own (central/app.py
    installs them the same way)."""
    app, clock = FastAPI(), Clock()
    dashboard = install(app, database, Devices(database), clock=clock)
    command_pages.install(app, commands)
    announcement_pages.install(app, announcements)
    with TestClient(app, base_url="https://testserver") as client:
        yield Site(client, dashboard, clock, {})


@pytest.fixture
def fleet(database: Database) -> None:
    """Two kiosks in Damascus, one in Aleppo, one revoked in Aleppo."""
    for device_id, governorate in (("dam-01", "damascus"), ("dam-02", "damascus"), ("alp-01", "aleppo")):
        add_kiosk(database, device_id, governorate)
    add_kiosk(database, "alp-09", "aleppo", revoked=True)


def words(page: str) -> str:
    """What a page says, without its markup."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", page)))


def signed_in(site: Site, username: str, role: Role, language: str = "ar") -> None:
    site.add(username, role)
    site.sign_in(username)
    if language != "ar":
        site.client.get("/dashboard?lang=" + language)


def send(site: Site, **fields: str):
    page = site.client.get("/dashboard/commands").text
    return site.client.post("/dashboard/commands", data={"csrf": hidden(page), **fields}, follow_redirects=False)


def rows_shown(page: str) -> list[tuple[str, str]]:
    """(kiosk, state with its reason) of each command the page lists, newest first."""
    found = []
    for row in re.findall(r'<tr[^>]* id="command-[0-9a-f]+">(.*?)</tr>', page, re.S):
        cells = [words(cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        found.append((cells[1], cells[3]))
    return found


# --- commands ---------------------------------------------------------------------------------------


def test_an_operator_commands_one_kiosk_from_its_page_and_follows_it_to_done(site, database, commands, fleet):
    signed_in(site, "amal", Role.OPERATOR)
    page = site.client.get("/dashboard/kiosks/dam-01").text
    assert 'id="command-form"' in page and 'name="devices" value="dam-01"' in page
    assert 'href="/dashboard/commands?device=dam-01"' in page
    answer = site.client.post("/dashboard/commands", data={"csrf": hidden(page), "action": "selftest",
                                                           "target": "devices", "devices": "dam-01", "minutes": "30"},
                              follow_redirects=False)
    assert answer.status_code == 303
    sent = commands.list()
    assert [(row.device_id, row.action, row.state) for row in sent] == [("dam-01", "selftest", "sent")]
    assert answer.headers["location"] == "/dashboard/commands?batch=%s" % sent[0].batch_id
    assert audit_rows(database)[-1] == ("amal", "command.send", "dam-01", "ok",
                                        "selftest to 1 kiosk (kiosk dam-01), batch %s, 30 min" % sent[0].batch_id)
    batch_page = site.client.get(answer.headers["location"]).text
    assert rows_shown(batch_page) == [("dam-01", "بانتظار الكشك")]

    # The kiosk's heartbeat carries it; the kiosk reports it done.
    [envelope] = commands.for_heartbeat("dam-01", KEY)
    assert envelope["action"] == "selftest" and envelope["device_id"] == "dam-01"
    assert rows_shown(site.client.get(answer.headers["location"]).text) == [("dam-01", "وصل إلى الكشك")]
    commands.record_result("dam-01", envelope["command_id"], ResultBody(outcome="done"))
    assert rows_shown(site.client.get(answer.headers["location"]).text) == [("dam-01", "نُفّذ")]
    # The kiosk's page lists the staff action.
    assert "إرسال أمر" in site.client.get("/dashboard/kiosks/dam-01").text


def test_each_state_is_shown_with_the_kiosks_reason_and_the_list_filters_by_kiosk(site, database, commands, fleet):
    signed_in(site, "amal", Role.OPERATOR, "en")
    for device_id in ("dam-01", "dam-02", "alp-01"):
        commands.send(CommandAction.RESYNC, [device_id])
    [refused] = commands.for_heartbeat("dam-02", KEY)
    commands.record_result("dam-02", refused["command_id"], ResultBody(outcome="refused", reason="unavailable"))
    with database.writing() as session:                      # alp-01's time passed without a result
        session.execute(update(KioskCommand).where(KioskCommand.device_id == "alp-01")
                        .values(expires_at="2020-01-01T00:00:00Z"))
    page = site.client.get("/dashboard/commands").text
    assert sorted(rows_shown(page)) == [("alp-01", "expired"), ("dam-01", "sent"),
                                        ("dam-02", "refused this kiosk cannot do it")]
    assert "3 commands" in words(page)
    only = site.client.get("/dashboard/commands", params={"device": "dam-02"}).text
    assert rows_shown(only) == [("dam-02", "refused this kiosk cannot do it")]
    assert "Commands of kiosk dam-02" in words(only)
    assert 'href="/dashboard/commands?device=dam-02&amp;lang=ar"' in only     # the other language, the same list
    nonsense = site.client.get("/dashboard/commands", params={"device": "<b>"}).text
    assert len(rows_shown(nonsense)) == 3 and "<b>" not in nonsense


def test_a_command_to_a_governorate_goes_to_each_of_its_kiosks_and_the_audit_says_how_many(site, database, commands,
                                                                                          fleet):
    signed_in(site, "amal", Role.OPERATOR)
    answer = send(site, action="resync", target="governorate", governorate="damascus", minutes="60")
    assert answer.status_code == 303
    assert sorted(row.device_id for row in commands.list()) == ["dam-01", "dam-02"]
    batch = commands.list()[0].batch_id
    assert audit_rows(database)[-1] == ("amal", "command.send", None, "ok",
                                        "resync to 2 kiosks (governorate damascus), batch %s, 60 min" % batch)
    assert "إرسال أمر" in site.client.get("/dashboard/audit").text


@pytest.mark.parametrize("action", ["reboot", "out-of-service"])
def test_a_reboot_or_out_of_service_to_every_kiosk_is_asked_again_naming_how_many(site, database, commands, fleet,
                                                                                 action):
    signed_in(site, "dana", Role.PUBLISHER)
    before = audit_rows(database)
    asked = send(site, action=action, target="everyone", minutes="15")
    assert asked.status_code == 200 and 'id="confirm-form"' in asked.text
    assert commands.list() == [] and audit_rows(database) == before          # nothing sent, nothing done yet
    question = words(re.search(r'id="confirm-text">(.*?)</p>', asked.text, re.S).group(1))
    assert "كل الأكشاك" in question and "وعدد الأكشاك 3." in question
    for device_id in ("dam-01", "dam-02", "alp-01"):
        assert 'href="/dashboard/kiosks/%s"' % device_id in asked.text
    assert hidden(asked.text, "confirmed") == "3" and hidden(asked.text, "action") == action
    fields = {name: hidden(asked.text, name) for name in ("csrf", "action", "target", "governorate", "minutes",
                                                          "confirmed")}
    answer = site.client.post("/dashboard/commands", data=fields, follow_redirects=False)
    assert answer.status_code == 303
    assert sorted((row.device_id, row.action) for row in commands.list()) == [
        ("alp-01", action), ("dam-01", action), ("dam-02", action)]
    assert audit_rows(database)[-1][1:4] == ("command.send", None, "ok")
    assert audit_rows(database)[-1][4].startswith("%s to 3 kiosks (every kiosk)" % action)


def test_a_confirmation_for_a_fleet_that_changed_since_is_asked_again(site, database, commands, fleet):
    signed_in(site, "amal", Role.OPERATOR, "en")
    asked = send(site, action="out-of-service", target="governorate", governorate="damascus", minutes="60")
    assert "Take every kiosk of Damascus out of service: 2 kiosks" in words(asked.text)
    add_kiosk(database, "dam-03", "damascus")
    again = send(site, action="out-of-service", target="governorate", governorate="damascus", minutes="60",
                 confirmed=hidden(asked.text, "confirmed"))
    assert again.status_code == 200 and "The number of kiosks changed" in again.text
    assert hidden(again.text, "confirmed") == "3" and commands.list() == []


def test_one_kiosk_named_by_id_is_not_asked_again(site, commands, fleet):
    signed_in(site, "amal", Role.OPERATOR)
    assert send(site, action="reboot", target="devices", devices="dam-01", minutes="60").status_code == 303
    assert [row.action for row in commands.list()] == ["reboot"]


@pytest.mark.parametrize("language, expected", [
    ("ar", ["اختر أمراً من القائمة", "المعرّف حروف لاتينية وأرقام", "من 1 إلى 10080"]),
    ("en", ["Choose a command from the list", "an id is Latin letters", "from 1 to 10080"]),
])
def test_what_the_command_form_gets_wrong_is_shown_in_the_staffs_language(site, database, commands, fleet, language,
                                                                          expected):
    signed_in(site, "amal", Role.OPERATOR, language)
    answer = send(site, action="format-disk", target="devices", devices="dam-01 <script>", minutes="0")
    assert answer.status_code == 422 and commands.list() == []
    for text in expected:
        assert text in words(answer.text)
    assert 'id="error-action"' in answer.text and 'id="error-devices"' in answer.text
    assert 'id="error-minutes"' in answer.text and "<script>" not in answer.text
    assert 'value="dam-01 &lt;script&gt;"' in answer.text                   # what was typed, kept
    assert audit_rows(database)[-1] == ("amal", "command.send", None, "failed", "invalid: action,devices,minutes")
    for minutes in ("", "abc", "10081", "-5", "1.5"):
        assert send(site, action="resync", target="everyone", minutes=minutes).status_code == 422
    assert send(site, action="resync", target="somewhere", minutes="5").status_code == 422
    assert send(site, action="", target="everyone", minutes="5").status_code == 422     # the form's first choice
    assert send(site, action="resync", target="governorate", governorate="Dam ascus", minutes="5").status_code == 422
    assert commands.list() == []


def test_a_kiosk_not_enrolled_or_revoked_is_refused_by_name(site, database, commands, fleet):
    signed_in(site, "amal", Role.OPERATOR)
    for devices, detail in (("dam-01 kiosk-99", "no kiosk kiosk-99 is enrolled"), ("alp-09", "kiosk alp-09 is revoked")):
        answer = send(site, action="resync", target="devices", devices=devices, minutes="60")
        assert answer.status_code == 422
        assert "لا يمكن إرسال الأمر إلى هذه الأكشاك" in answer.text and detail in answer.text
        assert audit_rows(database)[-1] == ("amal", "command.send", None, "failed",
                                            "resync to kiosk %s: %s" % (devices, detail))
    answer = send(site, action="resync", target="governorate", governorate="homs", minutes="60")
    assert answer.status_code == 422 and "no enrolled kiosk in homs" in answer.text
    assert commands.list() == []


def test_an_operator_reads_the_logs_a_kiosk_sent_a_viewer_may_not(site, database, commands, fleet):
    [row] = commands.send(CommandAction.COLLECT_LOGS, ["dam-01"])
    [envelope] = commands.for_heartbeat("dam-01", KEY)
    lines = ["2026-11-29T10:00:01Z INFO kiosk.session state=attract", "2026-11-29T10:00:02Z WARNING printer.paper_low"]
    assert commands.store_logs("dam-01", row.command_id, LogsBody(lines=lines, dropped=1)).http_status == 200
    commands.record_result("dam-01", envelope["command_id"], ResultBody(outcome="done"))
    logs_path = "/dashboard/commands/%s/logs" % row.command_id

    signed_in(site, "amal", Role.OPERATOR, "en")
    listing = site.client.get("/dashboard/commands").text
    assert 'href="%s"' % logs_path in listing
    page = site.client.get(logs_path)
    assert page.status_code == 200 and "\n".join(lines) in html.unescape(page.text)
    assert "2 lines (1 left out by the kiosk's check)" in words(page.text)
    assert site.client.get("/dashboard/commands/%s/logs" % ("0" * 32)).status_code == 404

    site.client.cookies.clear()
    signed_in(site, "basel", Role.VIEWER)
    assert 'href="%s"' % logs_path not in site.client.get("/dashboard/commands").text
    refused = site.client.get(logs_path)
    assert refused.status_code == 403 and "printer.paper_low" not in refused.text
    assert "لا تسمح صلاحيتك بهذا الإجراء" in refused.text
    assert audit_rows(database)[-1] == ("basel", "command.logs", row.command_id, "refused", "role=viewer")


# --- announcements ----------------------------------------------------------------------------------


def publish(site: Site, **fields: str):
    page = site.client.get("/dashboard/announcements").text
    data = {"csrf": hidden(page), "text_ar": "", "text_en": "", "governorate": "", "until": "", **fields}
    return site.client.post("/dashboard/announcements", data=data, follow_redirects=False)


def test_an_operator_publishes_an_announcement_and_withdraws_it(site, database, announcements, fleet):
    signed_in(site, "amal", Role.OPERATOR)
    page = site.client.get("/dashboard/announcements").text
    assert 'id="announce-form"' in page and "لا إعلانات بعد" in page
    assert 'maxlength="%d"' % TEXT_MAX in page and '<option value="damascus">دمشق</option>' in page
    answer = publish(site, text_ar="تُغلق الصالة يوم الجمعة", text_en="The hall is closed on Friday",
                     governorate="damascus", until="2099-12-31")
    assert (answer.status_code, answer.headers["location"]) == (303, "/dashboard/announcements")
    [made] = announcements.current()
    assert (made.text_ar, made.text_en, made.governorate, made.until) == (
        "تُغلق الصالة يوم الجمعة", "The hall is closed on Friday", "damascus", "2099-12-31T23:59:59Z")
    assert audit_rows(database)[-1] == ("amal", "announcement.publish", made.announcement_id, "ok",
                                        "damascus, until 2099-12-31T23:59:59Z")
    listing = site.client.get("/dashboard/announcements").text
    assert "تُغلق الصالة يوم الجمعة" in listing and "معروض" in listing
    assert 'action="/dashboard/announcements/%s/withdraw"' % made.announcement_id in listing

    answer = site.client.post("/dashboard/announcements/%s/withdraw" % made.announcement_id,
                              data={"csrf": hidden(listing)}, follow_redirects=False)
    assert answer.status_code == 303 and announcements.current() == []
    assert audit_rows(database)[-1] == ("amal", "announcement.withdraw", made.announcement_id, "ok", "")
    listing = site.client.get("/dashboard/announcements?lang=en").text
    assert "withdrawn" in listing and "/withdraw" not in listing
    missing = site.client.post("/dashboard/announcements/0000000000000000/withdraw", data={"csrf": hidden(listing)},
                               follow_redirects=False)
    assert missing.status_code == 404
    assert audit_rows(database)[-1] == ("amal", "announcement.withdraw", "0000000000000000", "failed", "unknown")


def test_an_announcement_past_its_end_is_shown_as_ended(site, database, announcements):
    signed_in(site, "amal", Role.OPERATOR, "en")
    made = announcements.announce("نص", "Text", until="2099-01-01T00:00:00Z")
    everywhere = announcements.announce("نص آخر", "Another text")
    with database.writing() as session:
        session.execute(update(Announcement).where(Announcement.announcement_id == made.announcement_id)
                        .values(until="2020-01-01T00:00:00Z"))
    page = site.client.get("/dashboard/announcements").text
    ended = re.search(r'id="announcement-%s">(.*?)</tr>' % made.announcement_id, page, re.S).group(1)
    current = re.search(r'id="announcement-%s">(.*?)</tr>' % everywhere.announcement_id, page, re.S).group(1)
    assert "ended" in words(ended) and "/withdraw" not in ended
    assert "showing" in words(current) and "Everywhere" in words(current) and "until withdrawn" in words(current)


@pytest.mark.parametrize("fields, field, ar, en", [
    ({"text_ar": "  ", "text_en": "Closed"}, "text_ar", "اكتب النص بالعربية", "Write the Arabic text"),
    ({"text_ar": "مغلق", "text_en": "x" * (TEXT_MAX + 1)}, "text_en", "النص بالإنكليزية أطول من 100 حرف (فيه 101)",
     "The English text is longer than 100 characters (101)"),
    ({"text_ar": "مغلق\u202e", "text_en": "Closed"}, "text_ar", "محرف تحكّم أو محرف يغيّر اتجاه الكتابة",
     "holds a control or direction character"),
    ({"text_ar": "مغلق", "text_en": "Closed", "governorate": "Damascus!"}, "governorate", "اختر محافظة من القائمة",
     "Choose a governorate from the list"),
    ({"text_ar": "مغلق", "text_en": "Closed", "until": "next friday"}, "until", "تعذّرت قراءة وقت الانتهاء",
     "The end cannot be read"),
    ({"text_ar": "مغلق", "text_en": "Closed", "until": "2020-01-01"}, "until", "وقت الانتهاء مضى",
     "The end is in the past"),
])
def test_what_the_announcement_form_gets_wrong_is_shown_in_the_staffs_language(site, database, announcements, fields,
                                                                               field, ar, en):
    signed_in(site, "amal", Role.OPERATOR)
    for language, expected in (("ar", ar), ("en", en)):
        site.client.get("/dashboard?lang=" + language)
        answer = publish(site, **fields)
        assert answer.status_code == 422 and announcements.list() == []
        error = re.search(r'id="error-%s">(.*?)</p>' % field, answer.text, re.S)
        assert error and expected in words(error.group(1))
        assert 'value="%s"' % html.escape(fields["text_ar"], quote=True) in answer.text   # what was typed, kept
    assert audit_rows(database)[-1][1:4] == ("announcement.publish", None, "failed")


def test_what_an_announcement_says_is_escaped(site, announcements):
    signed_in(site, "amal", Role.OPERATOR)
    announcements.announce('<script>alert("x")</script>', "<img src=x onerror=alert(1)>")
    page = site.client.get("/dashboard/announcements").text
    assert "<script>alert" not in page and "<img" not in page and "&lt;script&gt;" in page


# --- roles and form tokens ------------------------------------------------------------------------


def test_a_viewer_sees_the_lists_and_no_form_and_a_form_sent_anyway_is_refused_403_and_audited(
        site, database, commands, announcements, fleet):
    commands.send(CommandAction.RESYNC, ["dam-01"])
    made = announcements.announce("نص", "Text")
    signed_in(site, "basel", Role.VIEWER)
    listing = site.client.get("/dashboard/commands").text
    assert rows_shown(listing) == [("dam-01", "بانتظار الكشك")]
    assert 'id="send-form"' not in listing and 'method="post" action="/dashboard/commands"' not in listing
    assert "صلاحيتك للاطلاع فقط" in listing
    kiosk = site.client.get("/dashboard/kiosks/dam-01").text
    assert 'id="command-form"' not in kiosk and 'href="/dashboard/commands?device=dam-01"' in kiosk
    board = site.client.get("/dashboard/announcements").text
    assert "Text" in board and 'id="announce-form"' not in board and "withdraw" not in board

    token = hidden(listing)
    for path, fields, name, target in (
            ("/dashboard/commands", {"action": "reboot", "target": "everyone", "minutes": "60", "confirmed": "3"},
             "command.send", None),
            ("/dashboard/announcements", {"text_ar": "نص", "text_en": "Text"}, "announcement.publish", None),
            ("/dashboard/announcements/%s/withdraw" % made.announcement_id, {}, "announcement.withdraw",
             made.announcement_id)):
        answer = site.client.post(path, data={"csrf": token, **fields}, follow_redirects=False)
        assert answer.status_code == 403 and "لا تسمح صلاحيتك بهذا الإجراء" in answer.text
        assert audit_rows(database)[-1] == ("basel", name, target, "refused", "role=viewer")
    assert len(commands.list()) == 1 and [a.announcement_id for a in announcements.current()] == [made.announcement_id]


@pytest.mark.parametrize("path, fields, name", [
    ("/dashboard/commands", {"action": "resync", "target": "everyone", "minutes": "60"}, "command.send"),
    ("/dashboard/announcements", {"text_ar": "نص", "text_en": "Text"}, "announcement.publish"),
])
@pytest.mark.parametrize("token", ["forged", None])
def test_a_form_without_its_session_token_is_refused_403_and_audited(site, database, commands, announcements, fleet,
                                                                     path, fields, name, token):
    signed_in(site, "amal", Role.OPERATOR)
    data = fields if token is None else {"csrf": token, **fields}
    answer = site.client.post(path, data=data, follow_redirects=False)
    assert answer.status_code == 403 and "انتهت صلاحية النموذج" in answer.text
    assert audit_rows(database)[-1] == ("amal", name, None, "refused", "csrf")
    assert commands.list() == [] and announcements.list() == []


def test_pages_without_a_session_lead_to_the_sign_in_form(site):
    for path in ("/dashboard/commands", "/dashboard/announcements", "/dashboard/commands/%s/logs" % ("a" * 32)):
        answer = site.client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/dashboard/login")


# --- the words --------------------------------------------------------------------------------------


def test_every_action_state_and_refusal_has_its_words_in_both_languages():
    keys = (["command.action." + action.value for action in CommandAction]
            + ["commands.confirm." + action for action in command_pages.command_form.CHOICES.disruptive]
            + ["command.state." + state for state in command_pages.STATES]
            + ["command.reason." + reason.value for reason in Refusal]
            + ["announcement.state." + state for state in ("showing", "ended", "withdrawn")])
    for key in keys:
        assert texts.has(key) and set(texts.TEXTS[key]) == set(texts.LANGUAGES), key
