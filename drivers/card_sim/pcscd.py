"""Make sure a pcscd with the vpcd virtual readers is running.

    with ensure_pcscd(timeout=10) as daemon:
        ...   # "Virtual PCD 00 00" is listed

A pcscd that already lists the vpcd readers is used as it is and left
running; otherwise `pcscd --foreground` is started as our child (its output
in a log file) and stopped again by `stop()`.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time

log = logging.getLogger(__name__)

VPCD_READER_PREFIX = "Virtual PCD"
POLL_INTERVAL_S = 0.05


class PcscdError(RuntimeError):
    """pcscd could not be found, started, or did not show the vpcd readers."""


def vpcd_readers() -> list[str]:
    """Names of the vpcd readers pcscd lists now ([] if pcscd is not running)."""
    try:
        from smartcard.System import readers
        return [str(r) for r in readers() if str(r).startswith(VPCD_READER_PREFIX)]
    except Exception:  # pyscard raises several types when there is no service
        return []


class PcscdHandle:
    """The pcscd in use; `stop()` ends it only if we started it."""

    def __init__(self, process: subprocess.Popen[bytes] | None, log_path: str | None,
                 readers: list[str]) -> None:
        self.process = process
        self.log_path = log_path
        self.readers = readers

    @property
    def started_by_us(self) -> bool:
        return self.process is not None

    def stop(self, timeout: float = 5.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
        log.info("pcscd.stopped")

    def __enter__(self) -> "PcscdHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ensure_pcscd(timeout: float = 10.0, *, log_path: str | None = None) -> PcscdHandle:
    """Use the running pcscd if it lists the vpcd readers, else start one and
    wait (bounded by `timeout`) until it does."""
    found = vpcd_readers()
    if found:
        log.info("pcscd.running readers=%d", len(found))
        return PcscdHandle(None, None, found)
    executable = shutil.which("pcscd") or next(
        (p for p in ("/usr/sbin/pcscd", "/sbin/pcscd") if os.access(p, os.X_OK)), None)
    if executable is None:
        raise PcscdError("pcscd is not installed (Debian: apt install pcscd vsmartcard-vpcd)")
    if log_path is None:
        handle, log_path = tempfile.mkstemp(prefix="pcscd-", suffix=".log")
        os.close(handle)
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen([executable, "--foreground"], stdout=log_file,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    daemon = PcscdHandle(process, log_path, [])
    log.info("pcscd.started pid=%d log=%s", process.pid, log_path)
    deadline = time.monotonic() + timeout
    while True:
        found = vpcd_readers()
        if found:
            daemon.readers = found
            return daemon
        if time.monotonic() >= deadline:
            daemon.stop()
            raise PcscdError("pcscd did not list the vpcd readers within %.1f s; see %s"
                             % (timeout, log_path))
        try:
            process.wait(POLL_INTERVAL_S)       # paces the polling; returns if pcscd dies
        except subprocess.TimeoutExpired:
            continue
        raise PcscdError("pcscd exited with %s before listing the vpcd readers; see %s"
                         % (process.returncode, log_path))
