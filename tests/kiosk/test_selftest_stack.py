"""`kiosk selftest` on the real stack (drivers/demo/stack.py): the real drivers against pcscd with the
virtual reader and a card in it, the printer and payment terminal simulators, central over HTTPS under
its own CA with this kiosk enrolled; the fake cabinet, as the demo stack has none wired."""

from __future__ import annotations

import json

import pytest

from central.db import Database
from central.devices import Devices
from drivers.demo.stack import ID_READER, DemoStack
from kiosk import selftest
from kiosk.cli import main
from offline.outbox import Outbox
from tests.drivers.conftest import wait_for_reader_state

pytestmark = pytest.mark.realstack


@pytest.fixture
def stack(tmp_path):
    with DemoStack(tmp_path / "stack", central_tls=True) as world:
        with world.config_path.open("a", encoding="utf-8") as config:
            config.write('\n[cabinet]\nbackend = "fake"\n')
        Outbox(world.state_dir / "outbox.sqlite3").close()     # as the kiosk leaves it after its first start
        number = world.citizen_numbers()[0]
        world.insert(number)
        assert wait_for_reader_state(ID_READER, present=True), "pcscd saw no card"
        yield world
        world.remove()


def test_every_check_passes_on_the_real_stack_and_fails_the_printer_once_it_is_gone(stack, capsys):
    command = ["selftest", "--config", str(stack.config_path)]
    assert main(command + ["--test-page"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[:-1]] == [["ok", name] for name in selftest.NAMES]
    details = {line.split()[1]: line for line in lines[:-1]}
    assert "the card in it answered SELECT" in details["card-reader"]
    assert "test page printed" in details["printer"]
    assert "reached over HTTPS, central's CA pinned; this kiosk authenticated" in details["central"]
    assert lines[-1] == "selftest: ok (8 checks)"
    (page,) = stack.printer.wait_for_jobs(1)          # the page as the printer received it, decoded back
    assert page.complete and [qr.data for qr in page.qr_codes] == [b"selftest:demo-kiosk-01"]
    assert "device demo-kiosk-01" in [line.text for line in page.text_lines]
    number = stack.citizen_numbers()[0]
    assert number not in "\n".join(lines)

    stack.printer.stop()
    assert main(command + ["--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["failed"] == ["printer"]
    printer = next(check for check in report["checks"] if check["name"] == "printer")
    assert printer["status"] == "failed" and printer["detail"] == "disconnected (no answer from the printer)"


def test_a_kiosk_central_revoked_fails_central(stack, capsys):
    database = Database(stack.central_db_url)
    try:
        assert Devices(database).revoke("demo-kiosk-01")
    finally:
        database.dispose()
    assert main(["selftest", "--config", str(stack.config_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "failed   central           central revoked this kiosk: it needs a new enrolment code" in lines
    assert lines[-1] == "selftest: FAILED: central"
