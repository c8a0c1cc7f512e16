"""The units in systemd/ as systemd itself reads them, and the watchdog's protocol.

`systemd-analyze verify` refuses a unit whose ExecStart= binary does not exist,
and /opt/kiosk is not on this machine: the units are verified inside a scratch
root (`--root`) that holds the system's own units, the kiosk's units as
committed, and stubs of `kiosk` and of the system's python3 (which runs the start
guard) at the paths the device has.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from screens import watchdog

SYSTEMD = Path(__file__).resolve().parents[1] / "systemd"
UNITS = sorted(p.name for p in SYSTEMD.iterdir() if p.suffix in (".service", ".timer"))
ANALYZE = shutil.which("systemd-analyze")
KIOSK_BIN = "opt/kiosk/current/venv/bin/kiosk"
GUARD_PYTHON = "usr/bin/python3"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")

needs_analyze = pytest.mark.skipif(ANALYZE is None or not SYSTEM_UNITS.is_dir(),
                                   reason="systemd-analyze and the system's units are not installed")


@pytest.fixture(scope="module")
def device_root(tmp_path_factory) -> Path:
    """A scratch root laid out as the device: the system's units, ours, and a stub kiosk command."""
    root = tmp_path_factory.mktemp("root")
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    for name in UNITS:
        shutil.copy(SYSTEMD / name, root / "etc/systemd/system" / name)
    for path in (KIOSK_BIN, GUARD_PYTHON):
        stub = root / path
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    return root


def analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="", LANG="C.UTF-8"))


def test_the_units_are_the_six_documented():
    assert UNITS == ["kiosk-firstboot.service", "kiosk-selftest.service", "kiosk-selftest.timer",
                     "kiosk-update.service", "kiosk-update.timer", "kiosk.service"]


@needs_analyze
@pytest.mark.parametrize("unit", UNITS)
def test_systemd_accepts_the_unit_without_a_warning(device_root, unit):
    result = analyze("verify", "--root=%s" % device_root, unit)
    assert result.returncode == 0 and result.stderr.strip() == "" and result.stdout.strip() == "", \
        result.stderr + result.stdout


@needs_analyze
def test_verify_in_the_scratch_root_still_catches_a_broken_unit(device_root, tmp_path):
    """The scratch root must not hide a mistake: a unit naming a missing binary, or a
    misspelt key, is still reported."""
    broken = (SYSTEMD / "kiosk.service").read_text().replace(
        "/opt/kiosk/current/venv/bin/kiosk run", "/opt/kiosk/current/venv/bin/kiosc run").replace(
        "ProtectClock=", "ProtectClok=")
    (device_root / "etc/systemd/system/kiosk-broken.service").write_text(broken)
    try:
        result = analyze("verify", "--root=%s" % device_root, "kiosk-broken.service")
    finally:
        (device_root / "etc/systemd/system/kiosk-broken.service").unlink()
    assert result.returncode != 0 and "kiosc" in result.stderr
    assert "ProtectClok" in result.stderr


@needs_analyze
def test_kiosk_service_exposure_is_under_3(device_root):
    """What `systemd-analyze security kiosk.service` says on the device."""
    result = analyze("security", "--offline=true", "--root=%s" % device_root, "kiosk.service")
    found = re.search(r"Overall exposure level for kiosk\.service: (\d+\.\d+)", result.stdout)
    assert found, result.stdout[-2000:] + result.stderr
    exposure = float(found.group(1))
    print("kiosk.service exposure: %.1f" % exposure)
    assert exposure < 3.0, result.stdout


def test_kiosk_service_is_watched_and_restarted():
    unit = unit_settings(SYSTEMD / "kiosk.service")
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert int(unit["WatchdogSec"][0]) > 0 and unit["Restart"] == ["always"] and unit["RestartSec"] == ["1"]
    assert unit["User"] == ["kiosk"] and unit["StateDirectory"] == ["kiosk"]
    assert unit["DevicePolicy"] == ["closed"] and unit["CapabilityBoundingSet"] == [""]
    assert "MemoryDenyWriteExecute" not in unit     # Mesa's llvmpipe JIT: see the unit's comment


def test_the_start_guard_runs_before_any_code_of_the_version_and_judges_its_trial():
    """kiosk/updates/guard.py, with the system's Python: first of all (a version that cannot import is
    still rolled back), after READY=1 (a failed trial fails the start: no `-`), and after every stop."""
    from kiosk.updates import guard

    unit = unit_settings(SYSTEMD / "kiosk.service")
    guard_line = "/usr/bin/python3 -I /opt/kiosk/guard.py "
    assert unit["ExecStartPre"][0] == "-+" + guard_line + "pre-start"
    assert unit["ExecStartPost"] == ["+" + guard_line + "post-start"]
    assert "-+" + guard_line + "stopped" in unit["ExecStopPost"]
    assert unit["ExecStart"][0].startswith("/opt/kiosk/current/venv/bin/kiosk run ")
    assert float(unit["TimeoutStartSec"][0]) > guard.TRIAL_DEADLINE_S       # the guard decides, with a reason
    for name in UNITS:
        assert "/opt/kiosk/.venv" not in (SYSTEMD / name).read_text()


@needs_analyze
def test_kiosk_update_service_exposure(device_root):
    """The updater is root (it writes /opt/kiosk): what `systemd-analyze security` says of it."""
    result = analyze("security", "--offline=true", "--root=%s" % device_root, "kiosk-update.service")
    found = re.search(r"Overall exposure level for kiosk-update\.service: (\d+\.\d+)", result.stdout)
    assert found, result.stdout[-2000:] + result.stderr
    print("kiosk-update.service exposure: %s" % found.group(1))
    assert float(found.group(1)) < 3.0, result.stdout


def test_the_update_timer_starts_the_updater_as_root_writing_only_opt_kiosk():
    timer = unit_settings(SYSTEMD / "kiosk-update.timer")
    service = unit_settings(SYSTEMD / "kiosk-update.service")
    assert timer["Unit"] == ["kiosk-update.service"] and timer["Persistent"] == ["true"]
    assert service["ExecStart"][0].split()[:3] == ["/opt/kiosk/current/venv/bin/kiosk", "update", "run"]
    assert "User" not in service and service["ReadWritePaths"] == ["/opt/kiosk"]
    assert service["StateDirectory"] == ["kiosk-update"] and service["ProtectSystem"] == ["strict"]


def test_selftest_timer_starts_the_selftest_service():
    timer = unit_settings(SYSTEMD / "kiosk-selftest.timer")
    service = unit_settings(SYSTEMD / "kiosk-selftest.service")
    assert timer["Unit"] == ["kiosk-selftest.service"] and timer["Persistent"] == ["true"]
    assert service["ExecStart"][0].split()[1:3] == ["selftest", "--json"]


def test_firstboot_runs_only_before_provisioning():
    firstboot = unit_settings(SYSTEMD / "kiosk-firstboot.service")
    kiosk = unit_settings(SYSTEMD / "kiosk.service")
    assert firstboot["ConditionPathExists"] == ["!/var/lib/kiosk/device-key.pem"]
    assert kiosk["ConditionPathExists"] == ["/var/lib/kiosk/device-key.pem"]


def unit_settings(path: Path) -> dict[str, list[str]]:
    """Every `Key=value` of a unit file, each key's values in order."""
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


# ------------------------------------------------------------ the watchdog's protocol


class ManualClock:
    """Kivy's Clock.schedule_once/schedule_interval, run by hand: a test fires frames itself."""

    def __init__(self) -> None:
        self.once: list = []
        self.intervals: list[tuple[object, float]] = []

    def schedule_once(self, callback, timeout=0) -> None:
        self.once.append(callback)

    def schedule_interval(self, callback, interval) -> None:
        self.intervals.append((callback, interval))

    def frame(self) -> None:
        """One tick: what was due runs; what it schedules waits for the next tick."""
        due, self.once = self.once, []
        for callback in due:
            callback(0)
        for callback, _interval in self.intervals:
            callback(0)


@pytest.fixture
def notify_socket(tmp_path):
    """systemd's side: a datagram socket the kiosk is told about in $NOTIFY_SOCKET."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)
        yield str(path), sock


def received(sock: socket.socket) -> list[str]:
    messages = []
    sock.setblocking(False)
    try:
        while True:
            messages.append(sock.recv(4096).decode())
    except BlockingIOError:
        return messages
    finally:
        sock.settimeout(5)


def test_ready_after_the_first_frame_then_watchdog_every_half_timeout(notify_socket):
    path, sock = notify_socket
    clock = ManualClock()
    environ = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    watchdog.start(clock.schedule_once, clock.schedule_interval, environ)

    assert [interval for _callback, interval in clock.intervals] == [15.0]
    clock.frame()                                   # the first frame: drawn, not yet announced
    assert received(sock) == ["WATCHDOG=1"]
    clock.frame()
    assert received(sock) == ["READY=1", "WATCHDOG=1"]
    clock.frame()
    assert received(sock) == ["WATCHDOG=1"]


def test_notify_reaches_an_abstract_socket():
    name = "kiosk-test-%d" % os.getpid()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert watchdog.notify("WATCHDOG=1", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_outside_systemd_nothing_is_sent_and_nothing_is_fed():
    clock = ManualClock()
    watchdog.start(clock.schedule_once, clock.schedule_interval, {})
    clock.frame()
    clock.frame()
    assert clock.intervals == [] and watchdog.notify("READY=1", {}) is False


def test_a_watchdog_meant_for_another_process_is_not_fed(notify_socket):
    path, _sock = notify_socket
    environ = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}
    assert watchdog.feed_interval_s(environ) is None


def test_a_notify_socket_gone_is_logged_not_raised(tmp_path, caplog):
    assert watchdog.notify("WATCHDOG=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False
    assert "watchdog.notify_failed" in caplog.text
