"""Kiosk configuration: one TOML file, validated at start into frozen dataclasses.

On a device the file is /etc/kiosk/kiosk.toml; elsewhere a path is given
with ``--config``. Relative paths inside the file are taken relative to the
file itself. A bad file stops start-up with one line that names the key:

    kiosk.toml: unknown key `session.idle_timout_s`: did you mean `idle_timeout_s`?
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path

from kiosk import backends, wire
from kiosk.errors import ConfigError

DEFAULT_PATH = Path("/etc/kiosk/kiosk.toml")
CONFIG_VERSION = 1


@dataclass(frozen=True)
class CentralConfig:
    url: str
    timeout_s: float = 10.0
    catalogue_key: Path | None = None  # PEM of central's public key, that signs the catalogue: checked and kept


@dataclass(frozen=True)
class CardConfig:
    trusted_issuers: tuple[Path, ...]
    backend: str = "pyscard"
    reader: str = ""  # name (or leading part of it) of the ID-card reader; "" = the first
    pin_timeout_s: float = 30.0
    apdu_timeout_s: float = 5.0


@dataclass(frozen=True)
class PaymentConfig:
    backend: str = "nexo"
    timeout_s: float = 60.0
    host: str = "127.0.0.1"            # nexo: the payment terminal's address
    port: int = 7778                   # nexo: its Sale to POI TCP port (Market Pay's; nexo fixes none)
    tls_ca: Path | None = None         # nexo: PEM of the CA that signs the terminal's certificate: TLS, pinned
    poi_id: str = ""                   # nexo: the terminal's POIID; "" = the one it answers the Login with


@dataclass(frozen=True)
class PrinterConfig:
    backend: str = "escpos"
    transport: str = "network"         # how the escpos backend reaches the printer: network | usb | serial
    host: str = ""                     # network: the printer's address
    port: int = 9100
    usb_vendor_id: int = 0             # usb: the printer's ids (0x04b8, 0x0202 for an Epson TM-T88)
    usb_product_id: int = 0
    serial_device: str = ""            # serial: /dev/ttyUSB0, /dev/ttyS0, ...
    baud_rate: int = 115200
    timeout_s: float = 10.0
    reprint_window_s: float = 300.0    # how long a paid document that failed mid-print waits for the printer


@dataclass(frozen=True)
class SiteConfig:
    """Where the kiosk stands: printed on documents and in their signed payload."""

    place_ar: str = ""
    place_en: str = ""
    time_zone: str = "Asia/Damascus"
    governorate: str = ""              # e.g. "damascus": only the services offered there are shown; "" all

    def place(self, language: str) -> str | None:
        """The place in `language`, else in the other language, else None."""
        first, other = (self.place_ar, self.place_en) if language == "ar" else (self.place_en, self.place_ar)
        return first or other or None


@dataclass(frozen=True)
class CabinetConfig:
    backend: str = "none"


@dataclass(frozen=True)
class SessionConfig:
    idle_timeout_s: float = 60.0
    idle_warning_s: float = 15.0
    document_timeout_s: float = 30.0


@dataclass(frozen=True)
class CatalogueConfig:
    refresh_s: float = 60.0            # while nobody is served, central's catalogue is asked again this often
    max_age_h: float = 72.0            # a kept copy signed longer ago than this is not used (central unreachable)


@dataclass(frozen=True)
class OutboxConfig:
    backend: str = "sqlite"
    path: Path = Path("/var/lib/kiosk/outbox.sqlite3")   # the state database: outbox and journal
    key_path: Path | None = None       # the device key sealing personal data at rest; default: device.key beside `path`
    disk_alert_mb: int = 256           # free space on the state's disk below which a technician is alerted
    disk_reserve_mb: int = 32          # free space below which paid services are unavailable (nothing is charged)
    max_backoff_s: float = 300.0       # the longest a message central could not take waits before it is tried again


@dataclass(frozen=True)
class DisplayConfig:
    width: int = 1024
    height: int = 600
    fullscreen: bool = True
    digits: str = "western"            # on Arabic screens and documents: western (0123) or arabic-indic (٠١٢٣)


@dataclass(frozen=True)
class AudioConfig:
    prompts: Path = Path("/opt/kiosk/prompts")   # {ar,en}/<screen>.wav, made at build time; missing: silence
    guidance: bool = False             # speak every screen's prompt from the start (the citizen may switch it)


@dataclass(frozen=True)
class KioskConfig:
    device_id: str
    central: CentralConfig
    card: CardConfig
    printer: PrinterConfig
    config_version: int = CONFIG_VERSION
    languages: tuple[str, ...] = ("ar", "en")
    payment: PaymentConfig = field(default_factory=PaymentConfig)
    cabinet: CabinetConfig = field(default_factory=CabinetConfig)
    site: SiteConfig = field(default_factory=SiteConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    catalogue: CatalogueConfig = field(default_factory=CatalogueConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)

    @property
    def default_language(self) -> str:
        return self.languages[0]


SUPPORTED_LANGUAGES = ("ar", "en")

# Migrations from an older config_version: each takes the raw table of
# version N and returns that of version N + 1.
MIGRATIONS: dict[int, typing.Callable[[dict], dict]] = {}


def load(path: Path | str) -> KioskConfig:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("%s: no such configuration file" % path) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("%s: not valid TOML: %s" % (path, exc)) from None
    try:
        return parse(raw, base_dir=path.parent)
    except ConfigError as exc:
        raise ConfigError("%s: %s" % (path.name, exc)) from None


def parse(raw: dict, *, base_dir: Path = Path(".")) -> KioskConfig:
    version = raw.get("config_version", CONFIG_VERSION)
    if not isinstance(version, int) or version < 1 or version > CONFIG_VERSION:
        raise ConfigError("`config_version` %r is not one this kiosk knows (1 to %d)" % (version, CONFIG_VERSION))
    while version < CONFIG_VERSION:
        raw = MIGRATIONS[version](raw)
        version += 1
    raw = dict(raw, config_version=CONFIG_VERSION)
    config = _build(KioskConfig, raw, prefix="", base_dir=base_dir)
    _check(config)
    return config


def _check(config: KioskConfig) -> None:
    if not config.languages:
        raise ConfigError("`languages` must name at least one language")
    for language in config.languages:
        if language not in SUPPORTED_LANGUAGES:
            raise ConfigError("`languages`: %r is not one of %s" % (language, ", ".join(SUPPORTED_LANGUAGES)))
    if not config.card.trusted_issuers:
        raise ConfigError("`card.trusted_issuers` must list at least one issuer public key")
    for pem in config.card.trusted_issuers:
        if not pem.is_file():
            raise ConfigError("`card.trusted_issuers`: no such file %s" % pem)
    for key, name in (("card.backend", config.card.backend), ("payment.backend", config.payment.backend),
                      ("printer.backend", config.printer.backend), ("cabinet.backend", config.cabinet.backend),
                      ("outbox.backend", config.outbox.backend)):
        backends.find(backends.GROUPS[key], name, key=key)   # named and installed; imported only when built
    if config.display.digits not in DIGITS:
        raise ConfigError("`display.digits` %r is not one of %s" % (config.display.digits, ", ".join(DIGITS)))
    _check_printer(config.printer)
    for key, place in (("site.place_ar", config.site.place_ar), ("site.place_en", config.site.place_en)):
        if len(place) > wire.PLACE_MAX_LENGTH or not wire.is_plain_text(place):
            raise ConfigError("`%s` must be at most %d characters, without control or direction characters"
                              % (key, wire.PLACE_MAX_LENGTH))
    try:
        zoneinfo.ZoneInfo(config.site.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError("`site.time_zone` %r is not a time zone this system knows (e.g. Asia/Damascus)"
                          % config.site.time_zone) from None
    if not config.central.url.startswith(("http://", "https://")):
        raise ConfigError("`central.url` must start with http:// or https://")
    for key, value in (
        ("card.pin_timeout_s", config.card.pin_timeout_s),
        ("card.apdu_timeout_s", config.card.apdu_timeout_s),
        ("session.idle_timeout_s", config.session.idle_timeout_s),
        ("session.idle_warning_s", config.session.idle_warning_s),
        ("session.document_timeout_s", config.session.document_timeout_s),
        ("central.timeout_s", config.central.timeout_s),
        ("printer.timeout_s", config.printer.timeout_s),
        ("payment.timeout_s", config.payment.timeout_s),
        ("printer.reprint_window_s", config.printer.reprint_window_s),
        ("catalogue.refresh_s", config.catalogue.refresh_s),
        ("catalogue.max_age_h", config.catalogue.max_age_h),
    ):
        if value <= 0:
            raise ConfigError("`%s` must be greater than zero" % key)
    if not 0 < config.printer.port < 65536:
        raise ConfigError("`printer.port` must be between 1 and 65535")
    if not 0 < config.payment.port < 65536:
        raise ConfigError("`payment.port` must be between 1 and 65535")
    if config.central.catalogue_key is not None and not config.central.catalogue_key.is_file():
        raise ConfigError("`central.catalogue_key`: no such file %s" % config.central.catalogue_key)
    if config.payment.tls_ca is not None and not config.payment.tls_ca.is_file():
        raise ConfigError("`payment.tls_ca`: no such file %s" % config.payment.tls_ca)
    _check_outbox(config.outbox)


def _check_outbox(outbox: OutboxConfig) -> None:
    if outbox.disk_reserve_mb < 0:
        raise ConfigError("`outbox.disk_reserve_mb` must be zero or more")
    if outbox.disk_alert_mb < outbox.disk_reserve_mb:
        raise ConfigError("`outbox.disk_alert_mb` must be at least `outbox.disk_reserve_mb` (the alert comes first)")
    if outbox.max_backoff_s <= 0:
        raise ConfigError("`outbox.max_backoff_s` must be greater than zero")


PRINTER_TRANSPORTS = ("network", "usb", "serial")
DIGITS = ("western", "arabic-indic")


def _check_printer(printer: PrinterConfig) -> None:
    if printer.backend != "escpos":
        return
    if printer.transport not in PRINTER_TRANSPORTS:
        raise ConfigError("`printer.transport` %r is not one of %s" % (printer.transport, ", ".join(PRINTER_TRANSPORTS)))
    if printer.transport == "network" and not printer.host:
        raise ConfigError("missing key `printer.host` (the network printer's address)")
    if printer.transport == "usb" and not (0 < printer.usb_vendor_id < 0x10000 and 0 < printer.usb_product_id < 0x10000):
        raise ConfigError("`printer.usb_vendor_id` and `printer.usb_product_id` must be the USB printer's ids "
                          "(1 to 0xffff)")
    if printer.transport == "serial" and not printer.serial_device:
        raise ConfigError("missing key `printer.serial_device` (the serial printer's device, e.g. /dev/ttyUSB0)")
    if printer.baud_rate <= 0:
        raise ConfigError("`printer.baud_rate` must be greater than zero")


def _build(cls: type, raw: object, *, prefix: str, base_dir: Path):
    if not isinstance(raw, dict):
        raise ConfigError("`%s` must be a table" % prefix.rstrip("."))
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in raw:
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = ": did you mean `%s`?" % close[0] if close else ""
            raise ConfigError("unknown key `%s%s`%s" % (prefix, key, hint))
    values = {}
    for name, f in fields.items():
        dotted = prefix + name
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError("missing key `%s`" % dotted)
            continue
        values[name] = _convert(hints[name], raw[name], dotted, base_dir)
    return cls(**values)


def _convert(hint, value, dotted: str, base_dir: Path):
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, prefix=dotted + ".", base_dir=base_dir)
    origin = typing.get_origin(hint)
    if origin is types.UnionType and type(None) in typing.get_args(hint):    # X | None: TOML has no null
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(inner, value, dotted, base_dir)
    if origin is tuple:
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        if not isinstance(value, list):
            raise ConfigError("`%s` must be a list" % dotted)
        return tuple(_convert(item, v, dotted, base_dir) for v in value)
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError("`%s` must be a path" % dotted)
        path = Path(value)
        return path if path.is_absolute() else (base_dir / path).resolve()
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError("`%s` must be true or false" % dotted)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError("`%s` must be a whole number" % dotted)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError("`%s` must be a number" % dotted)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError("`%s` must be a string" % dotted)
        return value
    raise TypeError("unsupported configuration type %r" % (hint,))  # a bug in this module, not bad input
