"""The technician screen on the real stack: the maintenance key turned (through the journey runner, as
the cabinet's watch reports it: the stack's cabinet is none), a wrong PIN then the right one, the
status of every device, a test page on the printer simulator, a light walk, out of service and back,
and a restart that exits with the status systemd restarts the app on."""

from __future__ import annotations

import json

import pytest

from kiosk.technician import RESTART_EXIT_STATUS, hash_pin

pytestmark = pytest.mark.realstack     # Xvfb, pcscd and the simulators

PIN, WRONG = "246810", "135790"         # as journeys/technician*.json type them


def with_technician_pin(stack) -> None:
    """The stack's kiosk.toml with `[technician] pin_hash`, as `kiosk technician hash-pin` makes it."""
    with stack.config_path.open("a", encoding="utf-8") as config:
        config.write('\n[technician]\npin_hash = %s\n' % json.dumps(hash_pin(PIN, log2_n=14)))


def audited(run) -> list[str]:
    return [line.split("audit.", 1)[1] for line in run.output if "audit.technician." in line]


def test_the_technician_opens_the_screen_with_the_key_and_pin_and_works_the_kiosk(stack, journey):
    with_technician_pin(stack)
    run = journey("technician", {})
    assert run.exit_code == 0, "\n".join(run.output[-30:])
    seen = run.screens_seen
    assert seen.index("attract") < seen.index("technician_pin") < seen.index("technician"), seen
    assert "out_of_service" in seen and seen[-1] == "attract"
    # The test page came out of the printer: plain lines, the device, no personal data.
    (page,) = stack.printer.wait_for_jobs(1, timeout=10)
    lines = [line.text for line in page.text_lines]
    assert "KIOSK TEST PAGE" in lines[0] and any("demo-kiosk-01" in line for line in lines) and page.complete
    # Every attempt and every action audited, never the PIN.
    entries = audited(run)
    for expected in ("technician.key_on detail=", "technician.pin_refused detail=tries_left:4",
                     "technician.pin_accepted detail=", "technician.test_print detail=ok",
                     "technician.light_walk detail=ok", "technician.out_of_service detail=",
                     "technician.key_off detail=out_of_service", "technician.back_in_service detail="):
        assert any(entry.startswith(expected) for entry in entries), (expected, entries)
    everything = "\n".join(run.output)
    assert PIN not in everything and WRONG not in everything
    shots = [entry["screenshot"] for entry in run.report["steps"] if "screenshot" in entry]
    assert any("technician_pin" in shot for shot in shots) and any(shot.endswith("-technician.png") for shot in shots)
    assert all((run.out_dir / shot).stat().st_size > 10_000 for shot in shots)


def test_restart_from_the_technician_screen_exits_with_the_status_systemd_restarts_on(stack, journey):
    with_technician_pin(stack)
    run = journey("technician-restart", {})
    assert run.exit_code == RESTART_EXIT_STATUS, "\n".join(run.output[-30:])
    assert any("audit.technician.restart detail=asked" in line for line in run.output)
    # It left from the technician screen, before the journey's next step (the attract screen) came.
    assert "JOURNEY screen technician" in run.output and not any(line.startswith("JOURNEY passed")
                                                                  for line in run.output)
