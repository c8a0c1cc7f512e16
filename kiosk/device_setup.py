"""`kiosk provision --setup`: a fresh kiosk's devices, chosen by the technician and written in kiosk.toml.

This module holds the plain data the driver-side discovery tool answers with
(`Discovery`: the PC/SC readers' names, the USB printers known by their ids,
the serial ports, and why a kind of device could not be looked for), the
technician's choice at the terminal (`choose`: devices shown numbered, an
answer per kind on standard input; `yes` takes the first of each), and the
writing of the configuration (`configuration_for`, `write_config`): the file
is written beside the old one, checked with `kiosk.config.load`, and only
then put in its place, the old one kept as ``kiosk.toml.bak``; an invalid
file never replaces anything. `make_state_dir` makes the state directory
(the outbox's directory) 0700.

The core finds no device itself: the discovery is the card and printer
drivers' tool (`kiosk.tools` entry point `discover`,
drivers/device_discovery.py). Nothing here prints personal data: reader
names, USB ids, device paths.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from kiosk import config as kiosk_config
from kiosk.atomic_file import write_atomically
from kiosk.config import KioskConfig
from kiosk.errors import ConfigError

TOOL = "discover"
REFUSALS = ("n", "no", "q", "quit")
# Keys of [printer] that say where the printer is: replaced as a whole by the technician's choice.
PRINTER_PLACE_KEYS = ("transport", "host", "port", "usb_vendor_id", "usb_product_id", "serial_device")


class SetupError(Exception):
    """The setup cannot go on; the message says why, for the technician. Nothing was written."""


@dataclass(frozen=True)
class UsbPrinter:
    """A USB device whose ids are those of a printer model drivers/PRINTERS.md lists."""

    vendor_id: int
    product_id: int
    model: str
    accessible: bool | None = None     # the kiosk's user may open it; False: no udev rule yet; None: not known

    def label(self) -> str:
        note = ", no permission to open it: see the udev rule in drivers/PRINTERS.md" if self.accessible is False \
            else ""
        return "%s (USB %04x:%04x%s)" % (self.model, self.vendor_id, self.product_id, note)


@dataclass(frozen=True)
class Discovery:
    """What the discovery tool found. A `*_problem` says why that kind could not be looked for ("" when it could)."""

    readers: tuple[str, ...] = ()
    readers_problem: str = ""
    printers: tuple[UsbPrinter, ...] = ()
    printers_problem: str = ""
    serial_ports: tuple[str, ...] = ()


@dataclass(frozen=True)
class Choice:
    reader: str                        # "" when no reader was found: the first reader that appears
    reader_label: str
    printer: dict[str, Any]            # [printer] keys saying where it is (transport and its address)
    printer_label: str


def printer_options(discovery: Discovery, printer_host: str = "") -> list[tuple[str, dict[str, Any]]]:
    """The printers to choose from, in order: known USB printers, serial ports, the network printer given."""
    options = [(printer.label(), {"transport": "usb", "usb_vendor_id": printer.vendor_id,
                                  "usb_product_id": printer.product_id}) for printer in discovery.printers]
    options += [("serial printer on %s" % port, {"transport": "serial", "serial_device": port})
                for port in discovery.serial_ports]
    if printer_host:
        options.append(("network printer at %s" % printer_host, {"transport": "network", "host": printer_host}))
    return options


def _ask(prompt: str, count: int, answers: TextIO, out: TextIO) -> int | None:
    """The index (from 0) the technician picks among `count`, Enter for the first; None for "n" or no more input."""
    while True:
        out.write(prompt)
        out.flush()
        line = answers.readline()
        if not line:
            out.write("\n")
            return None
        answer = line.strip().lower()
        if answer in REFUSALS:
            return None
        if not answer:
            return 0
        if answer.isdigit() and 1 <= int(answer) <= count:
            return int(answer) - 1
        out.write("answer a number from 1 to %d, Enter for 1, or n to stop\n" % count)


def choose(discovery: Discovery, *, answers: TextIO, out: TextIO, yes: bool = False,
           printer_host: str = "", config_path: Path = kiosk_config.DEFAULT_PATH) -> Choice | None:
    """Show what was found, numbered, and ask which reader and which printer (the first of each with `yes`),
    then whether to write the file; None when the technician refused. SetupError when there is no printer."""
    out.write("ID card readers (PC/SC):\n")
    for number, name in enumerate(discovery.readers, 1):
        out.write("  %d. %s\n" % (number, name))
    if not discovery.readers:
        out.write("  none found: %s\n" % (discovery.readers_problem or "pcscd lists no reader (is it plugged in?)"))
    out.write("printers:\n")
    options = printer_options(discovery, printer_host)
    for number, (label, _keys) in enumerate(options, 1):
        out.write("  %d. %s\n" % (number, label))
    if discovery.printers_problem:
        out.write("  USB printers not looked for: %s\n" % discovery.printers_problem)
    if not options:
        raise SetupError("no printer found (no known USB printer, no serial port): connect it, or give "
                         "--printer-host for a network printer")

    reader, reader_label = "", "the first reader that appears (none found)"
    if discovery.readers:
        index = 0 if yes else _ask("card reader [1-%d, Enter: 1, n: stop]: " % len(discovery.readers),
                                   len(discovery.readers), answers, out)
        if index is None:
            return None
        reader = reader_label = discovery.readers[index]
    index = 0 if yes else _ask("printer [1-%d, Enter: 1, n: stop]: " % len(options), len(options), answers, out)
    if index is None:
        return None
    printer_label, printer = options[index]
    if not yes:
        out.write("write %s with card reader %s and printer %s? [y/N]: " % (config_path, reader_label, printer_label))
        out.flush()
        if answers.readline().strip().lower() not in ("y", "yes"):
            out.write("\n")
            return None
    return Choice(reader, reader_label, dict(printer), printer_label)


def configuration_for(choice: Choice, *, existing: Path | None, device_id: str | None, central_url: str,
                      trust: list[Path], ca: Path | None, state_dir: Path | None) -> dict[str, Any]:
    """The TOML table to write: the existing file's (when it is a valid configuration) with the choice and the
    options in it; other keys keep their value, or their default on a fresh device."""
    raw: dict[str, Any] = {}
    if existing is not None and existing.is_file():
        try:
            kiosk_config.load(existing)
            raw = tomllib.loads(existing.read_text(encoding="utf-8"))
        except (ConfigError, OSError, UnicodeError, tomllib.TOMLDecodeError, ValueError):
            raw = {}                    # an invalid file is replaced (and kept as .bak), not merged
    raw["config_version"] = kiosk_config.CONFIG_VERSION
    if device_id is not None:
        raw["device_id"] = device_id
    central = raw.setdefault("central", {})
    central["url"] = central_url
    if ca is not None:
        central["ca_file"] = str(ca.resolve())
    card = raw.setdefault("card", {})
    if trust:
        card["trusted_issuers"] = [str(path.resolve()) for path in trust]
    card["reader"] = choice.reader
    printer = raw.setdefault("printer", {})
    for key in PRINTER_PLACE_KEYS:
        printer.pop(key, None)
    printer.update(choice.printer)
    if state_dir is not None:
        state_dir = state_dir.resolve()
        raw.setdefault("outbox", {})["path"] = str(state_dir / "outbox.sqlite3")
        central["device_key_path"] = str(state_dir / "device-key.pem")
    return raw


def to_toml(raw: dict[str, Any]) -> str:
    """`raw` (values and one level of tables, as kiosk.toml has) as TOML text."""
    lines = ["# written by `kiosk provision --setup`; the previous file, if any, is kept as .bak"]
    lines += ["%s = %s" % (key, _value(value)) for key, value in raw.items() if not isinstance(value, dict)]
    for key, table in raw.items():
        if isinstance(table, dict):
            lines += ["", "[%s]" % key] + ["%s = %s" % (name, _value(value)) for name, value in table.items()]
    return "\n".join(lines) + "\n"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)      # a TOML basic string: JSON's escapes are TOML's
    if isinstance(value, list):
        return "[%s]" % ", ".join(_value(item) for item in value)
    raise SetupError("cannot write a value of kind %s in kiosk.toml" % type(value).__name__)


def write_config(path: Path, text: str) -> KioskConfig:
    """`text` at `path` (0644), only once `kiosk.config.load` accepted it; the old file kept as `path`.bak.
    SetupError naming the bad key otherwise, and nothing at `path` changed."""
    loaded: list[KioskConfig] = []

    def valid_then_back_up(temporary: Path) -> None:
        try:
            loaded.append(kiosk_config.load(temporary))
        except ConfigError as exc:
            raise SetupError("the configuration would not be valid, nothing written: %s"
                             % str(exc).replace(str(temporary), str(path)).replace(temporary.name, path.name)) \
                from None
        if path.exists():
            write_atomically(path.with_name(path.name + ".bak"), path.read_bytes(),
                             mode=stat.S_IMODE(path.stat().st_mode))

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text.encode("utf-8"), mode=0o644, check=valid_then_back_up)
    except OSError as exc:
        raise SetupError("cannot write %s (%s)" % (path, exc.strerror or type(exc).__name__)) from None
    return loaded[0]


def make_state_dir(config: KioskConfig) -> Path:
    """The state directory (where the outbox's database is), made if need be, readable by its owner only."""
    directory = config.outbox.path.parent
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
    except OSError as exc:
        raise SetupError("cannot make the state directory %s (%s)" % (directory, exc.strerror or type(exc).__name__)) \
            from None
    return directory
