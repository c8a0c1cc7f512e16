"""Central's commands and announcements as the kiosk takes them (kiosk/commands.py): an envelope is
carried out only when central's key signed it, for this kiosk, in its time, once; refused when replayed
(also after a restart), sent to another kiosk, expired, signed by another key, or tampered. The desk
reports what became of each until central holds it; collected log lines are checked one by one."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.signing import key_id, sign_document
from kiosk import wire
from kiosk.commands import (
    AnnouncementSupply, CentralDecisionLoaded, Command, CommandDesk, CommandFinished, CommandRefused, CommandTaken,
    CommandTools, EnvelopeRefused, FinishCommand, RecentLogLines, Refusal, VersionsAnnounced, collected_lines,
    read_envelope, shown_announcement, read_announcements,
)
from kiosk.errors import CentralError
from kiosk.ports.central import Central
from kiosk.wire import CommandAction, CommandOutcome
from offline.catalogue_cache import FileCatalogueCache
from offline.command_ledger import SqliteCommandLedger
from offline.database import StateDatabase

DEVICE = "kiosk-cmd-01"
CENTRAL_KEY = Ed25519PrivateKey.generate()
NOW = datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc)
WAIT_S = 10.0


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(action: str = "reboot", *, command_id: str = "c0ffee01", device_id: str = DEVICE,
             issued: datetime = NOW - timedelta(minutes=1), lifetime: timedelta = timedelta(hours=1),
             key: Ed25519PrivateKey = CENTRAL_KEY, context: bytes = wire.COMMAND_CONTEXT) -> dict:
    """An envelope as central/commands.py makes it."""
    return sign_document(key, {"command_id": command_id, "device_id": device_id, "action": action,
                               "issued_at": iso(issued), "expires_at": iso(issued + lifetime),
                               "key_id": key_id(key.public_key()).hex()}, context=context)


def read(document: object, *, now: datetime = NOW) -> Command:
    return read_envelope(document, keys=[CENTRAL_KEY.public_key()], device_id=DEVICE, now=now.timestamp())


def refusal(document: object, **options: object) -> Refusal:
    with pytest.raises(EnvelopeRefused) as refused:
        read(document, **options)
    return refused.value.reason


# --- one envelope ------------------------------------------------------------------------------------------

def test_an_envelope_signed_by_central_for_this_kiosk_in_its_time_is_taken():
    command = read(envelope("collect-logs"))
    assert (command.command_id, command.action) == ("c0ffee01", CommandAction.COLLECT_LOGS)
    assert command.expires_at - command.issued_at == 3600


def test_an_envelope_for_another_kiosk_is_refused():
    assert refusal(envelope(device_id="kiosk-cmd-02")) is Refusal.WRONG_DEVICE


def test_an_expired_envelope_is_refused():
    assert refusal(envelope(issued=NOW - timedelta(hours=2))) is Refusal.EXPIRED
    assert refusal(envelope(), now=NOW + timedelta(hours=1)) is Refusal.EXPIRED


def test_an_envelope_from_the_future_is_refused():
    assert refusal(envelope(issued=NOW + timedelta(hours=1))) is Refusal.NOT_YET_VALID


def test_an_envelope_signed_by_another_key_is_refused():
    assert refusal(envelope(key=Ed25519PrivateKey.generate())) is Refusal.UNKNOWN_KEY
    # The right key id, another key's signature: a forgery.
    forged = envelope(key=Ed25519PrivateKey.generate())
    forged["signature"]["key_id"] = key_id(CENTRAL_KEY.public_key()).hex()
    assert refusal(forged) is Refusal.BAD_SIGNATURE


@pytest.mark.parametrize("field, value", [("device_id", DEVICE), ("action", "reboot"),
                                          ("expires_at", iso(NOW + timedelta(days=30))), ("command_id", "c0ffee02")])
def test_a_tampered_envelope_is_refused(field, value):
    original = envelope("resync", device_id="kiosk-cmd-02" if field == "device_id" else DEVICE)
    tampered = {**original, field: value}
    assert refusal(tampered) is Refusal.BAD_SIGNATURE


def test_a_catalogue_or_announcements_signature_is_no_commands():
    for context in (wire.ANNOUNCEMENTS_CONTEXT, b"KSK-CATALOGUE-1\n"):
        assert refusal(envelope(context=context)) is Refusal.BAD_SIGNATURE


@pytest.mark.parametrize("document", [None, [], "reboot", {"command_id": "x"},
                                      {**envelope(), "signature": {"alg": "RSA"}}])
def test_what_is_not_an_envelope_is_malformed(document):
    assert refusal(document) is Refusal.MALFORMED


def test_an_action_this_kiosk_does_not_know_is_refused_after_the_signature_is_checked():
    assert refusal(envelope("format-disk")) is Refusal.UNKNOWN_ACTION


def test_a_kiosk_without_centrals_key_takes_nothing():
    with pytest.raises(EnvelopeRefused) as refused:
        read_envelope(envelope(), keys=[], device_id=DEVICE, now=NOW.timestamp())
    assert refused.value.reason is Refusal.UNKNOWN_KEY


# --- the desk: envelopes in, results out --------------------------------------------------------------------

class RecordingCentral(Central):
    """Central as the desk sees it: what it was told; `reachable` set by the test."""

    def __init__(self) -> None:
        self.reachable = True
        self.reports: list[tuple[str, str, str | None]] = []
        self.logs: list[tuple[str, list[str], int]] = []

    def fetch_catalogue(self):
        raise CentralError("not here")

    def challenge(self):
        return None

    def check_eligibility(self, **_kwargs):
        raise AssertionError("not asked")

    def deliver(self, kind, payload):
        return None

    def report_command(self, command_id, outcome, reason):
        if not self.reachable:
            return None
        self.reports.append((command_id, outcome, reason))
        return True

    def send_command_logs(self, command_id, lines, dropped):
        if not self.reachable:
            return None
        self.logs.append((command_id, lines, dropped))
        return True


class Desk:
    """A desk on a state database file, its events collected as the session would get them."""

    def __init__(self, path, *, central: RecordingCentral | None = None, tools: CommandTools = CommandTools(),
                 now: datetime = NOW) -> None:
        self.database = StateDatabase(path)
        self.ledger = SqliteCommandLedger(self.database)
        self.central = central or RecordingCentral()
        self.events: list[object] = []
        self._arrived = threading.Condition()
        self.desk = CommandDesk(self.central, self.ledger, device_id=DEVICE, keys=[CENTRAL_KEY.public_key()],
                                tools=tools, clock=lambda: now.timestamp())
        self.first = self.desk.start(self._post)

    def _post(self, event: object) -> None:
        with self._arrived:
            self.events.append(event)
            self._arrived.notify_all()

    def receive(self, *envelopes: dict) -> list[object]:
        before = len(self.events)
        self.desk.receive(list(envelopes))
        with self._arrived:
            assert self._arrived.wait_for(lambda: len(self.events) >= before + len(envelopes), timeout=WAIT_S)
        return self.events[before:]

    def close(self) -> None:
        self.desk.stop()
        self.database.close()


@pytest.fixture
def desk(tmp_path):
    made = Desk(tmp_path / "state.sqlite3")
    yield made
    made.close()


def test_the_same_envelope_twice_is_refused_as_replayed(desk):
    once = envelope("reboot")
    (first,) = desk.receive(once)
    assert isinstance(first, CommandTaken) and first.command.action is CommandAction.REBOOT
    assert first.seconds_left == pytest.approx(59 * 60)
    (second,) = desk.receive(once)
    assert second == CommandRefused("c0ffee01", "reboot", Refusal.REPLAYED)


def test_a_replay_is_refused_after_the_kiosk_restarts(tmp_path):
    first = Desk(tmp_path / "state.sqlite3")
    assert isinstance(first.receive(envelope("out-of-service"))[0], CommandTaken)
    first.desk.finish(FinishCommand("c0ffee01", "out-of-service", CommandOutcome.DONE))
    first.close()
    again = Desk(tmp_path / "state.sqlite3")            # the kiosk restarted
    try:
        assert again.first == [CentralDecisionLoaded(True)]   # central's word still holds
        (event,) = again.receive(envelope("out-of-service"))
        assert event == CommandRefused("c0ffee01", "out-of-service", Refusal.REPLAYED)
    finally:
        again.close()


def test_every_refusal_on_arrival_reaches_the_session_with_the_command_it_names(desk):
    events = desk.receive(envelope(device_id="kiosk-cmd-02", command_id="c1"),
                          envelope(issued=NOW - timedelta(days=1), command_id="c2"),
                          envelope(key=Ed25519PrivateKey.generate(), command_id="c3"),
                          {**envelope(command_id="c4"), "action": "selftest"})
    assert events == [CommandRefused("c1", "reboot", Refusal.WRONG_DEVICE),
                      CommandRefused("c2", "reboot", Refusal.EXPIRED),
                      CommandRefused("c3", "reboot", Refusal.UNKNOWN_KEY),
                      CommandRefused("c4", "selftest", Refusal.BAD_SIGNATURE)]
    # None was taken: the genuine c4 is still taken when it comes.
    assert isinstance(desk.receive(envelope(command_id="c4"))[0], CommandTaken)


def test_results_are_reported_until_central_holds_them_also_after_a_restart(tmp_path):
    central = RecordingCentral()
    central.reachable = False
    first = Desk(tmp_path / "state.sqlite3", central=central)
    first.receive(envelope("selftest", command_id="c1"))
    first.desk.finish(FinishCommand("c1", "selftest", CommandOutcome.DONE))
    first.desk.finish(FinishCommand("c2", "reboot", CommandOutcome.REFUSED, "wrong_device", taken=False))
    assert first.desk.wait_idle(WAIT_S) and central.reports == []
    first.close()
    central.reachable = True
    again = Desk(tmp_path / "state.sqlite3", central=central)     # at start, what waited is told
    try:
        assert again.desk.wait_idle(WAIT_S)
        assert central.reports == [("c1", "done", None), ("c2", "refused", "wrong_device")]
        assert again.ledger.unreported() == []
    finally:
        again.close()


def test_a_command_taken_and_never_finished_is_refused_as_interrupted_at_the_next_start(tmp_path):
    first = Desk(tmp_path / "state.sqlite3")
    first.receive(envelope("collect-logs"))
    first.close()                                                  # stopped before it was carried out
    again = Desk(tmp_path / "state.sqlite3")
    try:
        assert again.first == [CommandRefused("c0ffee01", "collect-logs", Refusal.INTERRUPTED, taken=True)]
    finally:
        again.close()


def test_a_reboot_is_written_done_and_told_before_the_device_goes_down(tmp_path):
    told_first: list[bool] = []
    central = RecordingCentral()
    made = Desk(tmp_path / "state.sqlite3", central=central,
                tools=CommandTools(reboot=lambda: told_first.append(central.reports == [("c0ffee01", "done", None)])))
    try:
        (taken,) = made.receive(envelope("reboot"))
        assert made.desk.run(taken.command) is None and told_first == [True]
        assert made.ledger.unfinished() == []
    finally:
        made.close()


def test_without_a_reboot_or_a_selftest_the_command_is_refused_as_unavailable(desk):
    for action in ("reboot", "selftest"):
        (taken,) = desk.receive(envelope(action, command_id="c-" + action))
        assert desk.desk.run(taken.command) == CommandFinished("c-" + action, False, Refusal.UNAVAILABLE)


def test_collect_logs_sends_the_recent_lines_that_pass_the_check(tmp_path):
    lines = ["2026-11-29T10:00:00 kiosk.session INFO session.step from=ATTRACT to=INSERT_CARD",
             "2026-11-29T10:00:01 kiosk.x INFO national_number=01010012345",
             "2026-11-29T10:00:02 kiosk.x INFO holder سلمى الحلبي",
             "2026-11-29T10:00:03 kiosk.runtime INFO runtime.link state=online"]
    central = RecordingCentral()
    made = Desk(tmp_path / "state.sqlite3", central=central, tools=CommandTools(recent_lines=lambda: lines))
    try:
        (taken,) = made.receive(envelope("collect-logs"))
        assert made.desk.run(taken.command) == CommandFinished("c0ffee01", True)
        assert central.logs == [("c0ffee01", [lines[0], lines[3]], 2)]
        central.reachable = False
        assert made.desk.run(taken.command) == CommandFinished("c0ffee01", False, Refusal.UNREACHABLE)
    finally:
        made.close()


def test_the_versions_a_heartbeat_answer_names_reach_the_session(desk):
    desk.desk.heard({"status": "ok", "commands": [], "catalogue_version": "v2", "announcements_version": "a9"})
    desk.desk.heard({"status": "ok", "commands": []})
    assert desk.events == [VersionsAnnounced("v2", "a9")]


# --- log lines ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("line", [
    "card.read national_number=01010012345", "payment card 4111 1111 1111 1111", "mail salma@example.org",
    "session holder_name=Salma", "سلمى", "pin=1234", "tab\there", "x" * (wire.LOG_LINE_MAX_CHARS + 1)])
def test_a_line_that_may_carry_personal_data_never_leaves(line):
    assert collected_lines([line]) == ([], 1)


def test_ids_and_times_pass_the_check():
    line = ("2026-11-29T10:00:00 kiosk.runtime INFO runtime.document_late request=kiosk-01-3f2a1234567890ab"
            "cdef0123456789ab txn=9f8e7d6c5b4a39281706f5e4d3c2b1a0")
    assert collected_lines([line]) == ([line], 0)


def test_the_newest_lines_go_within_the_bounds():
    lines = ["line %05d %s" % (n, "x" * 100) for n in range(2000)]
    kept, dropped = collected_lines(lines)
    assert dropped == 0 and kept[-1] == lines[-1] and kept == lines[-len(kept):]
    assert len(kept) <= wire.LOG_LINES_MAX and sum(len(line) + 1 for line in kept) <= wire.LOG_BYTES_MAX


def test_recent_log_lines_keeps_the_newest_records():
    recent = RecentLogLines(capacity=3)
    logger = logging.getLogger("tests.commands.recent")
    logger.addHandler(recent)
    logger.setLevel(logging.INFO)
    try:
        for n in range(5):
            logger.info("event.n%d", n)
    finally:
        logger.removeHandler(recent)
    assert [line.split(" ", 1)[1] for line in recent.lines()] == [
        "tests.commands.recent INFO event.n2", "tests.commands.recent INFO event.n3",
        "tests.commands.recent INFO event.n4"]


# --- announcements ---------------------------------------------------------------------------------------------

def announcements_document(*items: dict, issued: datetime = NOW, key: Ed25519PrivateKey = CENTRAL_KEY) -> dict:
    return sign_document(key, {"announcements": list(items), "version": "v%d" % len(items), "issued_at": iso(issued)},
                         context=wire.ANNOUNCEMENTS_CONTEXT)


def item(announcement_id: str, *, governorate: str = "", created: str = "2026-11-29T09:00:00Z",
         until: str | None = None, ar: str = "مغلق يوم الجمعة", en: str = "Closed on Friday") -> dict:
    return {"id": announcement_id, "text": {"ar": ar, "en": en}, "governorate": governorate, "created_at": created,
            "until": until}


class AnnouncingCentral(RecordingCentral):
    def __init__(self, document: dict) -> None:
        super().__init__()
        self.document = document

    def fetch_signed_announcements(self) -> dict:
        if not self.reachable:
            raise CentralError("unreachable")
        return self.document


def test_the_newest_announcement_for_this_governorate_or_everywhere_is_shown_until_its_time():
    items = read_announcements(announcements_document(
        item("a1", created="2026-11-29T08:00:00Z"),
        item("a2", governorate="aleppo", created="2026-11-29T09:30:00Z"),
        item("a3", governorate="damascus", created="2026-11-29T09:00:00Z", until="2026-11-29T11:00:00Z")),
        [CENTRAL_KEY.public_key()]).items
    assert shown_announcement(items, "damascus", NOW.timestamp()).announcement_id == "a3"
    assert shown_announcement(items, "damascus", (NOW + timedelta(hours=2)).timestamp()).announcement_id == "a1"
    assert shown_announcement(items, "", NOW.timestamp()).announcement_id == "a1"
    assert shown_announcement(items, "aleppo", NOW.timestamp()).announcement_id == "a2"


def test_announcements_are_kept_and_shown_while_central_cannot_be_reached(tmp_path):
    central = AnnouncingCentral(announcements_document(item("a1")))
    cache = FileCatalogueCache(tmp_path / "announcements.json")
    supply = AnnouncementSupply(central, keys=[CENTRAL_KEY.public_key()], cache=cache, clock=NOW.timestamp)
    assert supply.load()[0].announcement_id == "a1"
    central.reachable = False
    restarted = AnnouncementSupply(central, keys=[CENTRAL_KEY.public_key()], cache=cache, clock=NOW.timestamp)
    shown, version = restarted.load()
    assert (shown.announcement_id, version) == ("a1", "v1")
    too_late = AnnouncementSupply(central, keys=[CENTRAL_KEY.public_key()], cache=cache, max_age_s=3600,
                                  clock=lambda: (NOW + timedelta(hours=2)).timestamp())
    assert too_late.load() == (None, "")


@pytest.mark.parametrize("document", [
    announcements_document(item("a1"), key=Ed25519PrivateKey.generate()),
    {**announcements_document(item("a1")), "announcements": [item("a1", ar="افتحوا الباب")]},
    announcements_document(item("a1", ar="نص\u202eمقلوب")),
    announcements_document(item("a1", en="x" * (wire.ANNOUNCEMENT_MAX_CHARS + 1))),
])
def test_announcements_altered_forged_or_unfit_are_not_shown(document, tmp_path):
    supply = AnnouncementSupply(AnnouncingCentral(document), keys=[CENTRAL_KEY.public_key()], clock=NOW.timestamp)
    assert supply.load() == (None, "")
