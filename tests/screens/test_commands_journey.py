"""Central's announcement and commands in the real kiosk application on the real stack (Xvfb, the
simulators, central over HTTPS): the attract screen shows an Arabic announcement central made; central
takes the kiosk out of service and puts it back, each command in a heartbeat's answer, each acknowledged."""

from __future__ import annotations

import pytest

from central.announcements import Announcements
from central.commands import Commands
from central.db import Database
from kiosk.wire import CommandAction

pytestmark = pytest.mark.realstack     # Xvfb, pcscd and the simulators

DEVICE_ID = "demo-kiosk-01"            # the stack's kiosk (drivers/demo/stack.py)


def test_an_announcement_on_the_attract_screen_and_central_taking_the_kiosk_out_of_service(stack, journey):
    with stack.config_path.open("a", encoding="utf-8") as config:
        config.write("\n[telemetry]\nheartbeat_s = 1\ndebounce_s = 0.5\n")      # commands come with heartbeats
    database = Database(stack.central_db_url)
    try:
        Announcements(database).announce("تُغلق صالة الخدمات يوم الجمعة للصيانة، شكراً لتفهمكم.",
                                         "The service hall closes on Friday for maintenance. Thank you.")
        commands = Commands(database)
        sent: list[str] = []

        def send(action: CommandAction) -> None:
            (row,) = commands.send(action, [DEVICE_ID])
            sent.append(row.command_id)

        on_screen = {"attract": lambda: None if sent else send(CommandAction.OUT_OF_SERVICE),
                     "out_of_service": lambda: send(CommandAction.IN_SERVICE)}
        run = journey("central-commands", on_screen)
        assert run.exit_code == 0, "\n".join(run.output[-30:])
        assert [row.state for row in commands.list(device_id=DEVICE_ID)] == ["done", "done"]
    finally:
        database.dispose()
    assert any("audit.command.done detail=out-of-service" in line for line in run.output)
    assert any("audit.command.done detail=in-service" in line for line in run.output)
    shots = [entry["screenshot"] for entry in run.report["steps"] if "screenshot" in entry]
    assert shots[0].endswith("-attract.png") and (run.out_dir / shots[0]).stat().st_size > 10_000
