"""Commands from central's staff to kiosks, and announcements, at central (central/commands.py,
central/announcements.py), running for real on loopback: what a member of staff sends, what rides in a
kiosk's heartbeat answer (signed by central's key, one envelope per kiosk), what the kiosk reports back,
and what `kiosk-central command` and `announce` say."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import update

from central import cli
from central.announcements import Announcements
from central.commands import REDELIVER_AFTER_S, CohortError, Commands
from central.db import Database, iso_utc, utc_now
from central.devices import Devices
from central.models import KioskCommand
from central.server import RunningCentral
from kiosk import wire
from kiosk.catalogue_supply import CatalogueRefused, check_signature, load_public_key
from kiosk.central_client import signed_by
from kiosk.provisioning import public_key_hex
from kiosk.wire import CommandAction
from tests.central.conftest import OTHER_DEVICE_ID, new_id
from tests.central.stub_http import ApiClient
from tests.running_central import enrol

HEARTBEAT = wire.TELEMETRY_HEARTBEAT[len(wire.API):]


def api(path: str) -> str:
    return path[len(wire.API):]


def heartbeat_body() -> dict:
    """A heartbeat as a kiosk in service sends it (kiosk/telemetry.py's heartbeat_body)."""
    return {"sent_at": "2026-11-29T10:00:00Z", "version": "0.1.0", "state": "ready", "reason": None,
            "queue_depth": 0, "dead_letters": 0, "last_sync_at": "2026-11-29T09:59:30Z",
            "devices": {"card_reader": "no_card", "terminal": "ready", "printer": "ready"},
            "paper": "ok", "door": "closed", "disk_free_mb": 20480, "memory_available_mb": 1500,
            "last_error": None, "alerts": []}


@pytest.fixture(scope="module")
def commands(central_database: Database) -> Commands:
    return Commands(central_database)


@pytest.fixture(scope="module")
def central_key(anonymous: ApiClient, tmp_path_factory: pytest.TempPathFactory):
    """Central's public key, as a kiosk holds it (`central.catalogue_key`)."""
    path = tmp_path_factory.mktemp("key") / "central.pem"
    path.write_text(anonymous.get("/signing-key").text)
    return load_public_key(path)


@pytest.fixture
def kiosk(central: RunningCentral, central_db_url: str) -> Iterator[tuple[str, ApiClient]]:
    """A kiosk of the test's own, enrolled in Damascus: (its device id, a client that signs its calls)."""
    device_id = new_id("kiosk")
    database = Database(central_db_url)
    try:
        code, _ = Devices(database).issue_code(device_id, governorate="damascus")
    finally:
        database.dispose()
    key = Ed25519PrivateKey.generate()
    assert requests.post(central.url + wire.ENROL, timeout=10, json={
        "device_id": device_id, "code": code, "public_key": public_key_hex(key)}).status_code == 200
    with ApiClient(central.url + wire.API, timeout_s=10, auth=signed_by(device_id, key)) as client:
        yield device_id, client


def beat(client: ApiClient) -> dict:
    answer = client.post(HEARTBEAT, json=heartbeat_body())
    assert answer.status_code == 200, answer.text
    return answer.json()


# --- sending, and what rides in the heartbeat ------------------------------------------------------------

def test_a_command_rides_once_in_its_kiosks_heartbeat_answer_signed_by_centrals_key(commands, kiosk, central_key):
    device_id, client = kiosk
    (row,) = commands.send(CommandAction.REBOOT, commands.cohort(device_ids=[device_id]))
    assert row.state == "sent"
    answer = beat(client)
    (envelope,) = answer["commands"]
    assert {k: envelope[k] for k in ("command_id", "device_id", "action", "issued_at", "expires_at")} == {
        "command_id": row.command_id, "device_id": device_id, "action": "reboot", "issued_at": row.issued_at,
        "expires_at": row.expires_at}
    assert check_signature(envelope, [central_key], context=wire.COMMAND_CONTEXT) is envelope
    assert envelope["key_id"] == envelope["signature"]["key_id"]
    # Signed as a command: it is no catalogue and no announcement.
    with pytest.raises(CatalogueRefused):
        check_signature(envelope, [central_key])
    with pytest.raises(CatalogueRefused):
        check_signature(envelope, [central_key], context=wire.ANNOUNCEMENTS_CONTEXT)
    assert beat(client)["commands"] == []                 # delivered: not again at the next heartbeat
    assert [r.state for r in commands.list(device_id=device_id)] == ["delivered"]
    # The answer also names the catalogue's and the announcements' versions now.
    assert len(answer["catalogue_version"]) == 16 and len(answer["announcements_version"]) == 16


def test_a_command_without_a_result_rides_again_after_a_while(commands, kiosk, central_database):
    device_id, client = kiosk
    (row,) = commands.send(CommandAction.RESYNC, [device_id])
    (first,) = beat(client)["commands"]
    with central_database.writing() as session:     # the answer was lost on the way, long ago
        session.execute(update(KioskCommand).where(KioskCommand.command_id == row.command_id).values(
            delivered_at=iso_utc(utc_now() - timedelta(seconds=REDELIVER_AFTER_S + 1))))
    (again,) = beat(client)["commands"]
    assert again == first                            # the very same envelope
    assert [e[2] for e in commands.events(row.command_id)] == ["sent", "delivered", "delivered_again"]


def test_an_expired_command_never_rides(commands, kiosk, central_database):
    device_id, client = kiosk
    (row,) = commands.send(CommandAction.SELFTEST, [device_id], lifetime=timedelta(minutes=1))
    with central_database.writing() as session:
        session.execute(update(KioskCommand).where(KioskCommand.command_id == row.command_id).values(
            expires_at=iso_utc(utc_now() - timedelta(seconds=1))))
    assert beat(client)["commands"] == []
    assert [r.state for r in commands.list(device_id=device_id)] == ["expired"]


def test_each_kiosk_of_a_cohort_gets_its_own_envelope(commands, central, central_db_url, kiosk):
    device_id, client = kiosk
    targets = commands.cohort(governorate="damascus")
    assert device_id in targets
    rows = commands.send(CommandAction.OUT_OF_SERVICE, targets)
    assert len({r.command_id for r in rows}) == len(targets) == len(rows) and len({r.batch_id for r in rows}) == 1
    (mine,) = beat(client)["commands"]
    assert mine["device_id"] == device_id
    assert mine["command_id"] == next(r.command_id for r in rows if r.device_id == device_id)


def test_a_cohort_names_only_enrolled_kiosks_in_service(commands, central, central_db_url, devices):
    revoked = new_id("kiosk")
    enrol(central.url, central_db_url, revoked)
    devices.revoke(revoked)
    assert revoked not in commands.cohort(everyone=True)
    with pytest.raises(CohortError, match="revoked"):
        commands.cohort(device_ids=[revoked])
    with pytest.raises(CohortError, match="no kiosk kiosk-nowhere is enrolled"):
        commands.cohort(device_ids=["kiosk-nowhere"])
    with pytest.raises(CohortError, match="no enrolled kiosk in atlantis"):
        commands.cohort(governorate="atlantis")


# --- what the kiosk reports --------------------------------------------------------------------------------

def test_the_kiosks_result_is_recorded_once_and_a_replay_refused_changes_nothing(commands, kiosk):
    device_id, client = kiosk
    (row,) = commands.send(CommandAction.IN_SERVICE, [device_id])
    beat(client)
    path = api(wire.command_result_path(row.command_id))
    assert client.post(path, json={"outcome": "done", "reason": None}).json() == {
        "status": "recorded", "command_id": row.command_id}
    # The envelope came again and the kiosk refused it as replayed; then a late second result.
    assert client.post(path, json={"outcome": "refused", "reason": "replayed"}).status_code == 200
    assert client.post(path, json={"outcome": "refused", "reason": "expired"}).status_code == 200
    (listed,) = commands.list(device_id=device_id)
    assert (listed.state, listed.reason) == ("done", None) and listed.finished_at is not None
    assert [e[2:] for e in commands.events(row.command_id)] == [
        ("sent", "in-service"), ("delivered", ""), ("done", ""), ("reported_again", "refused:replayed"),
        ("reported_again", "refused:expired")]


def test_a_refusal_is_recorded_with_its_reason(commands, kiosk):
    device_id, client = kiosk
    (row,) = commands.send(CommandAction.SELFTEST, [device_id])
    beat(client)
    client.post(api(wire.command_result_path(row.command_id)), json={"outcome": "refused", "reason": "unavailable"})
    (listed,) = commands.list(device_id=device_id)
    assert (listed.state, listed.reason) == ("refused", "unavailable")
    assert "refused (unavailable)" in listed.line()


def test_a_result_from_a_kiosk_the_command_was_not_for_is_kept_apart(commands, kiosk, other_kiosk):
    device_id, client = kiosk
    (row,) = commands.send(CommandAction.REBOOT, [device_id])
    beat(client)
    answer = other_kiosk.post(api(wire.command_result_path(row.command_id)),
                              json={"outcome": "refused", "reason": "wrong_device"})
    assert answer.status_code == 200
    (listed,) = commands.list(device_id=device_id)
    assert listed.state == "delivered"
    assert commands.events(row.command_id)[-1][1:] == (OTHER_DEVICE_ID, "reported_by_another",
                                                        "refused:wrong_device")


def test_a_result_for_an_unknown_command_or_without_a_reason_is_refused(commands, kiosk):
    _device_id, client = kiosk
    unknown = client.post(api(wire.command_result_path("no-such-command")), json={"outcome": "done"})
    assert (unknown.status_code, unknown.json()) == (404, {"status": "rejected", "reason": "unknown_command"})
    (row,) = commands.send(CommandAction.RESYNC, [kiosk[0]])
    no_reason = client.post(api(wire.command_result_path(row.command_id)), json={"outcome": "refused"})
    assert (no_reason.status_code, no_reason.json()["reason"]) == (422, "reason_required")
    free_text = client.post(api(wire.command_result_path(row.command_id)),
                            json={"outcome": "refused", "reason": "Salma Al-Halabi"})
    assert free_text.status_code == 400


def test_collected_logs_are_kept_with_their_command_and_only_safe_lines_taken(commands, kiosk, other_kiosk, capsys,
                                                                              central_db_url):
    device_id, client = kiosk
    (row,) = commands.send(CommandAction.COLLECT_LOGS, [device_id])
    beat(client)
    path = api(wire.command_logs_path(row.command_id))
    personal = client.post(path, json={"lines": ["runtime.step ok", "card.read national_number=01010012345"],
                                       "dropped": 0})
    assert (personal.status_code, personal.json()["reason"]) == (422, "unsafe_log_line")
    assert other_kiosk.post(path, json={"lines": ["x"], "dropped": 0}).status_code == 404
    lines = ["2026-11-29T10:00:00 kiosk.session INFO session.step from=ATTRACT to=INSERT_CARD",
             "2026-11-29T10:00:01 kiosk.runtime INFO runtime.link state=online"]
    assert client.post(path, json={"lines": lines, "dropped": 3}).json() == {
        "status": "recorded", "command_id": row.command_id, "lines": 2}
    kept = commands.logs(row.command_id)
    assert (kept.lines, kept.dropped, kept.device_id) == (tuple(lines), 3, device_id)
    assert cli.main(["command", "logs", row.command_id, "--db", central_db_url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == lines and "2 lines (3 left out by the kiosk's check)" in out[0]
    # Logs for a command that asked for none are no command's.
    (other,) = commands.send(CommandAction.RESYNC, [device_id])
    assert client.post(api(wire.command_logs_path(other.command_id)), json={"lines": lines}).status_code == 404


# --- the command line -------------------------------------------------------------------------------------

def test_command_send_and_list(central_db_url, kiosk, capsys):
    device_id, client = kiosk
    assert cli.main(["command", "send", "out-of-service", "--device", device_id, "--expires-minutes", "30",
                     "--db", central_db_url]) == 0
    out = capsys.readouterr().out.splitlines()
    command_id, shown_device, action, expires = out[0].split("\t")
    assert (shown_device, action) == (device_id, "out-of-service") and expires.startswith("expires ")
    assert out[1].startswith("1 command sent")
    beat(client)
    assert cli.main(["command", "list", "--device", device_id, "--db", central_db_url]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("%s\t%s\tout-of-service\tdelivered\t" % (command_id, device_id))


@pytest.mark.parametrize("args, says", [
    (["send", "reboot", "--device", "kiosk-nowhere"], "no kiosk kiosk-nowhere is enrolled"),
    (["send", "reboot", "--governorate", "atlantis"], "no enrolled kiosk in atlantis"),
    (["send", "reboot", "--all", "--expires-minutes", "0"], "--expires-minutes must be from 1 to 10080"),
    (["logs", "no-such-command"], "no logs for command no-such-command"),
])
def test_command_refuses_what_it_cannot_do_with_exit_code_2(central_db_url, central, capsys, args, says):
    assert cli.main(["command", *args, "--db", central_db_url]) == 2
    assert says in capsys.readouterr().err


def test_an_unknown_action_is_a_usage_error(central_db_url, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["command", "send", "format-disk", "--all", "--db", central_db_url])
    assert exit_.value.code == 2


# --- announcements --------------------------------------------------------------------------------------------

def test_announcements_are_served_signed_current_only(central_database, http, central_key):
    announcements = Announcements(central_database)
    kept = announcements.announce("  مغلق يوم الجمعة  ", "Closed on Friday", governorate="damascus",
                                  until=iso_utc(utc_now() + timedelta(days=1)))
    gone = announcements.announce("قديم", "Old")
    assert announcements.withdraw(gone.announcement_id)
    document = http.get(api(wire.ANNOUNCEMENTS)).json()
    assert check_signature(document, [central_key], context=wire.ANNOUNCEMENTS_CONTEXT) is document
    served = {item["id"]: item for item in document["announcements"]}
    assert served[kept.announcement_id] == {"id": kept.announcement_id, "text": {"ar": "مغلق يوم الجمعة",
                                                                                "en": "Closed on Friday"},
                                            "governorate": "damascus", "created_at": kept.created_at,
                                            "until": kept.until}
    assert gone.announcement_id not in served
    assert document["version"] == announcements.version()
    with pytest.raises(CatalogueRefused):
        check_signature(document, [central_key], context=wire.COMMAND_CONTEXT)


def test_announce_and_its_refusals(central_db_url, central, capsys):
    assert cli.main(["announce", "--text-ar", "تحديث الخدمات غداً", "--text-en", "Services update tomorrow",
                     "--governorate", "aleppo", "--until", "2099-12-31", "--db", central_db_url]) == 0
    announcement_id, where, until = capsys.readouterr().out.strip().split("\t")
    assert (where, until) == ("aleppo", "until 2099-12-31T23:59:59Z")
    assert cli.main(["announcements", "list", "--db", central_db_url]) == 0
    assert any(line.startswith(announcement_id + "\taleppo") for line in capsys.readouterr().out.splitlines())
    assert cli.main(["announcements", "withdraw", announcement_id, "--db", central_db_url]) == 0
    for args, says in (
            (["--text-ar", "x" * (wire.ANNOUNCEMENT_MAX_CHARS + 1), "--text-en", "y"], "1 to 100 characters"),
            (["--text-ar", "نص\u202e", "--text-en", "y"], "control or direction character"),
            (["--text-ar", "نص", "--text-en", "y", "--until", "2001-01-01"], "in the past"),
            (["--text-ar", "نص", "--text-en", "y", "--until", "next week"], "--until must be a date"),
            (["--text-ar", "نص", "--text-en", "y", "--governorate", "Damascus!"], "--governorate is a code")):
        assert cli.main(["announce", *args, "--db", central_db_url]) == 2
        assert says in capsys.readouterr().err
    assert cli.main(["announcements", "withdraw", "nothing-here", "--db", central_db_url]) == 2
