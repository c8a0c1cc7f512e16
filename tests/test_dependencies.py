"""The import rule between the kiosk's layers, checked on the source with `ast`.

The core (`kiosk`) knows only its ports; drivers, screens and the outbox
build on the core; the central service shares only the core's pure modules;
the simulators may use anything but the screens; and no two top-level
packages import each other, directly or round a longer loop. Each rule is
its own test, so a failure names the rule and lists every offending import.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests import import_rules
from tests.import_rules import CENTRAL, CORE, DRIVER, OFFLINE, SCREEN, SIMULATOR

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def imports() -> import_rules.Imports:
    found = import_rules.collect(ROOT)
    assert found.edges, "no imports found under %s: is the checker looking in the right place?" % ROOT
    return found


def _assert_none(found: list[str], rule: str) -> None:
    if found:
        pytest.fail("%s; broken %d time(s):\n%s" % (rule, len(found), "\n".join(found)), pytrace=False)


def test_every_module_can_be_read(imports):
    assert not imports.unreadable, "these files could not be parsed:\n" + "\n".join(imports.unreadable)


def test_core_imports_no_driver_simulator_screen_offline_or_central(imports):
    _assert_none(import_rules.violations(imports.edges, CORE),
                 "the core imports no driver, simulator, screen, outbox or central module")


def test_drivers_import_only_the_core_and_other_drivers(imports):
    _assert_none(import_rules.violations(imports.edges, DRIVER),
                 "a driver imports only the core and other drivers")


def test_screens_import_only_the_core_and_screens(imports):
    _assert_none(import_rules.violations(imports.edges, SCREEN),
                 "screens import only the core and screens")


def test_offline_imports_only_the_core_and_offline(imports):
    _assert_none(import_rules.violations(imports.edges, OFFLINE),
                 "offline imports only the core and offline")


def test_central_imports_only_itself_and_the_pure_core(imports):
    _assert_none(import_rules.violations(imports.edges, CENTRAL),
                 "central imports only itself and %s" % ", ".join(import_rules.CENTRAL_MAY_USE))


def test_simulators_import_no_screen(imports):
    _assert_none(import_rules.violations(imports.edges, SIMULATOR),
                 "simulators import anything but screens")


def test_no_cycle_between_top_level_packages(imports):
    _assert_none(import_rules.package_cycles(imports.edges),
                 "no cycle between the top-level packages %s" % ", ".join(import_rules.PACKAGES))


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_the_checker_finds_forbidden_imports_and_cycles(tmp_path):
    _write(tmp_path, {
        "kiosk/__init__.py": "",
        "kiosk/money.py": "",
        "kiosk/runtime.py": """\
            import json

            from kiosk import money
            from . import money as again


            def start():
                from offline import outbox
                return outbox
            """,
        "kiosk/ports/cabinet.py": "from ..money import *\n",
        "offline/__init__.py": "",
        "offline/outbox.py": "from kiosk.runtime import start\n",
        "drivers/__init__.py": "",
        "drivers/escpos_printer.py": "import drivers.printer_sim.decoder\n",
        "drivers/printer_sim/__init__.py": "",
        "drivers/printer_sim/decoder.py": "from screens.widgets import Label\n",
        "screens/__init__.py": "",
        "screens/widgets.py": "from drivers.escpos_printer import Printer\n",
        "central/__init__.py": "",
        "central/app.py": "from kiosk import money\nfrom kiosk.runtime import start\n",
        "tests/test_x.py": "from screens import widgets\n",
        "kiosk/broken.py": "def (:\n",
    })
    found = import_rules.collect(tmp_path)
    assert [(e.path, e.line, e.target) for e in found.edges] == [
        ("central/app.py", 1, "kiosk.money"),
        ("central/app.py", 2, "kiosk.runtime"),
        ("drivers/escpos_printer.py", 1, "drivers.printer_sim.decoder"),
        ("drivers/printer_sim/decoder.py", 1, "screens.widgets"),
        ("kiosk/ports/cabinet.py", 1, "kiosk.money"),
        ("kiosk/runtime.py", 3, "kiosk.money"),
        ("kiosk/runtime.py", 4, "kiosk.money"),
        ("kiosk/runtime.py", 8, "offline.outbox"),
        ("offline/outbox.py", 1, "kiosk.runtime"),
        ("screens/widgets.py", 1, "drivers.escpos_printer"),
    ]
    assert found.unreadable and found.unreadable[0].startswith("kiosk/broken.py: ")

    assert import_rules.violations(found.edges, CORE) == [
        "kiosk/runtime.py:8 imports offline.outbox: the core imports no outbox implementation"]
    assert import_rules.violations(found.edges, DRIVER) == [
        "drivers/escpos_printer.py:1 imports drivers.printer_sim.decoder: a driver imports no simulator"]
    assert import_rules.violations(found.edges, SIMULATOR) == [
        "drivers/printer_sim/decoder.py:1 imports screens.widgets: a simulator imports no screen"]
    assert [v.split(":")[0] for v in import_rules.violations(found.edges, SCREEN)] == ["screens/widgets.py"]
    assert [v.split(":")[0] for v in import_rules.violations(found.edges, CENTRAL)] == ["central/app.py"]
    assert import_rules.violations(found.edges, OFFLINE) == []

    cycles = import_rules.package_cycles(found.edges)
    assert [c.splitlines()[0] for c in cycles] == [
        "cycle drivers -> screens -> drivers",
        "cycle kiosk -> offline -> kiosk",
    ]
    assert "kiosk/runtime.py:8 imports offline.outbox: kiosk -> offline" in cycles[1]
    assert "offline/outbox.py:1 imports kiosk.runtime: offline -> kiosk" in cycles[1]
