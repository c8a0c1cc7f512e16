"""Ctrl+Alt+F<n> switches to no console while the kiosk runs: `kiosk console-switch` and its unit lines.

The real ioctl needs root and a kernel console, which a test machine may not
have: the kernel's answer is stood in for, the file opened is real.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from kiosk import cli
from screens import console_switch

REPO = Path(__file__).resolve().parents[2]


class Kernel:
    """What the kernel was asked, on which open file; refusing with `refuse` (an errno) when set."""

    def __init__(self, refuse: int | None = None) -> None:
        self.refuse = refuse
        self.asked: list[tuple[str, int]] = []

    def ioctl(self, fd: int, request: int) -> None:
        self.asked.append((os.readlink("/proc/self/fd/%d" % fd), request))
        if self.refuse is not None:
            raise OSError(self.refuse, os.strerror(self.refuse))


@pytest.fixture
def console(tmp_path: Path) -> Path:
    path = tmp_path / "console"
    path.write_bytes(b"")
    return path


@pytest.mark.parametrize("what, ioctl_request", [("lock", 0x560B), ("unlock", 0x560C)])
def test_lock_and_unlock_ask_the_kernel_on_the_console(console, what, ioctl_request):
    kernel = Kernel()
    assert console_switch.switch(what, console=console, ioctl=kernel.ioctl) is None
    assert kernel.asked == [(str(console), ioctl_request)]


def test_a_refusal_is_one_line_naming_the_console_and_why(console):
    problem = console_switch.switch("lock", console=console, ioctl=Kernel(refuse=errno.EPERM).ioctl)
    assert problem == "the kernel refused to lock console switching on %s: Operation not permitted" % console


def test_no_console_is_one_line(tmp_path):
    problem = console_switch.switch("lock", console=tmp_path / "missing", ioctl=Kernel().ioctl)
    assert problem == "cannot open %s: No such file or directory" % (tmp_path / "missing")


def test_the_command_exits_1_with_the_reason_when_it_cannot(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(console_switch, "CONSOLE", tmp_path / "missing")
    assert cli.main(["console-switch", "lock"]) == 1
    assert capsys.readouterr().err.strip() == "console-switch: cannot open %s: No such file or directory" % (
        tmp_path / "missing")


def test_systemd_locks_before_the_kiosk_starts_and_unlocks_after_it_stops():
    lines = (REPO / "systemd" / "kiosk.service").read_text().splitlines()
    pre = [line for line in lines if line.startswith("ExecStartPre=") and "console-switch" in line]
    post = [line for line in lines if line.startswith("ExecStopPost=") and "console-switch" in line]
    # `+`: with full privileges (the kiosk's user has no CAP_SYS_TTY_CONFIG); `-`: the kiosk starts anyway.
    assert len(pre) == 1 and pre[0].split("=", 1)[1].startswith("-+") and pre[0].endswith("console-switch lock")
    assert len(post) == 1 and post[0].split("=", 1)[1].startswith("-+") and post[0].endswith("console-switch unlock")
