"""A device install is the kiosk and nothing else: no server, no simulators.

The test builds the wheel from a copy of the checkout, installs it without
extras into a fresh virtual environment (its dependencies come from the
package index), and runs the installed `kiosk` command there, from a folder
outside the checkout so that nothing of the source tree is on `sys.path`.
It skips only when the package index cannot be reached; any other failure
of the build or the install fails it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Not part of a device: setup.py leaves these in the source checkout.
NOT_IN_WHEEL = ("central/", "drivers/card_sim/", "drivers/printer_sim/", "drivers/terminal_sim/", "drivers/demo/")
NOT_IMPORTABLE = ("fastapi", "uvicorn", "sqlalchemy", "central", "drivers.card_sim", "drivers.printer_sim",
                  "drivers.terminal_sim")

# What pip says when it cannot reach the index (as opposed to a requirement that does not exist).
UNREACHABLE = ("Failed to establish a new connection", "Temporary failure in name resolution",
               "Name or service not known", "Network is unreachable", "Max retries exceeded",
               "Could not fetch URL", "ProxyError", "Connection refused", "Read timed out",
               "connection broken by", "No route to host")

# Kept out of the copy that is built: not source, or not the package's.
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
                                     ".pytest_cache", ".hypothesis", "demo-out", "journey-out")

IMPORT_PROBE = textwrap.dedent("""\
    import importlib, json, sys
    result = {}
    for name in sys.argv[1:]:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            result[name] = "%s: %s" % (type(exc).__name__, exc)
        else:
            result[name] = "imported from %s" % getattr(module, "__file__", None)
    print(json.dumps(result))
    """)


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "PYTHONSAFEPATH")}
    return env


def _run(command: list[str], *, cwd: Path, what: str, timeout: float = 600,
         index_needed: bool = False) -> subprocess.CompletedProcess:
    """Run a command; on failure, skip when it could not reach the package index, else fail with its output."""
    done = subprocess.run(command, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        output = done.stdout + done.stderr
        if index_needed and any(marker.lower() in output.lower() for marker in UNREACHABLE):
            pytest.skip("the package index cannot be reached, so %s could not download what it needs:\n%s"
                        % (what, output[-2000:]))
        pytest.fail("%s failed (exit %d): %s\n%s" % (what, done.returncode, " ".join(command), output[-6000:]),
                    pytrace=False)
    return done


def _build_wheel(tmp_path: Path) -> Path:
    # The copy keeps setuptools' build/ and egg-info out of the working tree.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=COPY_IGNORE)
    outdir = tmp_path / "wheel"
    if importlib.util.find_spec("build") is not None:
        command = [sys.executable, "-m", "build", "--wheel", "--outdir", str(outdir), str(source)]
    else:
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(outdir), str(source)]
    _run(command, cwd=tmp_path, what="building the wheel", index_needed=True)
    (wheel,) = outdir.glob("citizen_kiosk-*.whl")
    return wheel


def _write_config(folder: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    folder.mkdir()
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    (folder / "issuer.pub.pem").write_bytes(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    config = folder / "kiosk.toml"
    config.write_text(textwrap.dedent("""\
        config_version = 1
        device_id = "kiosk-test-0001"
        languages = ["ar", "en"]

        [central]
        url = "https://central.example.gov.sy"
        timeout_s = 10

        [card]
        backend = "pyscard"
        trusted_issuers = ["issuer.pub.pem"]
        reader = ""
        pin_timeout_s = 30
        apdu_timeout_s = 5

        [payment]
        backend = "nexo"
        timeout_s = 60

        [printer]
        backend = "escpos"
        host = "192.0.2.10"
        port = 9100
        timeout_s = 10

        [cabinet]
        backend = "none"

        [session]
        idle_timeout_s = 60
        idle_warning_s = 15
        document_timeout_s = 30

        [outbox]
        path = "outbox.sqlite3"

        [display]
        width = 1024
        height = 600
        fullscreen = true
        """), encoding="utf-8")
    return config


@pytest.mark.timeout(900)
def test_a_device_install_has_no_server_and_no_simulators(tmp_path):
    problems: list[str] = []         # every check runs, and the failure lists all that went wrong
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        files = archive.namelist()
    assert any(name.startswith("kiosk/") for name in files), files
    stray = [name for name in files if name.startswith(NOT_IN_WHEEL) or name.endswith("seed/citizens.json")]
    if stray:
        problems.append("the wheel carries what a device does not run: " + ", ".join(stray))

    venv = tmp_path / "device"
    base_python = getattr(sys, "_base_executable", sys.executable)
    _run([base_python, "-m", "venv", str(venv)], cwd=tmp_path, what="creating the virtual environment")
    python, kiosk = venv / "bin" / "python", venv / "bin" / "kiosk"
    _run([str(python), "-m", "pip", "install", str(wheel)], cwd=tmp_path, what="installing the wheel",
         timeout=780, index_needed=True)

    elsewhere = tmp_path / "elsewhere"          # an empty working directory: the checkout is not on sys.path
    elsewhere.mkdir()
    shown = _run_in_device([str(kiosk), "--help"], elsewhere, problems)
    for command in ("run", "config", "card"):
        if shown is not None and command not in shown.stdout:
            problems.append("`kiosk --help` does not list `%s`:\n%s" % (command, shown.stdout))

    config = _write_config(tmp_path / "etc")
    checked = _run_in_device([str(kiosk), "config", "check", "--config", str(config)], elsewhere, problems)
    if checked is not None and "valid" not in checked.stdout:
        problems.append("`kiosk config check` did not say the configuration is valid:\n" + checked.stdout)

    probe = _run_in_device([str(python), "-I", "-c", IMPORT_PROBE, *NOT_IMPORTABLE], elsewhere, problems)
    if probe is not None:
        result = json.loads(probe.stdout.strip().splitlines()[-1])
        for name, how in result.items():
            if not how.startswith("ModuleNotFoundError"):
                problems.append("a device install can import %s (%s)" % (name, how))

    if problems:
        pytest.fail("a device install is not what it should be:\n- " + "\n- ".join(problems), pytrace=False)


def _run_in_device(command: list[str], cwd: Path, problems: list[str]) -> subprocess.CompletedProcess | None:
    """Run a command of the device install; a failure is noted in `problems`, and None returned."""
    done = subprocess.run(command, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        shown = " ".join([Path(command[0]).name] + command[1:])
        problems.append("`%s` exited %d:\n%s" % (shown, done.returncode, (done.stdout + done.stderr)[-3000:]))
        return None
    return done
