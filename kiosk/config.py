"""Kiosk configuration: one TOML file, validated at start into frozen dataclasses.

On a device the file is /etc/kiosk/kiosk.toml; elsewhere a path is given
with ``--config``. Relative paths inside the file are taken relative to the
file itself. A bad file stops start-up with one line that names the key:

    kiosk.toml: unknown key `session.idle_timout_s`: did you mean `idle_timeout_s`?

Nothing in the file is trusted: a file that is not one (a directory, unreadable,
not UTF-8, over a megabyte, nested too deeply), a value of the wrong type
(true/false is not a number, a number is not true/false), a number that is not
finite, a duration that is not positive, a string with control or direction
characters, a device id that is not an id, a `central.url` without a host or
over plain HTTP to another machine: each is the same one clear ConfigError line.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import re
import stat
import threading
import tomllib
import types
import typing
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from kiosk import backends, wire
from kiosk.errors import ConfigError

DEFAULT_PATH = Path("/etc/kiosk/kiosk.toml")
CONFIG_VERSION = 1
# A kiosk.toml is a few kilobytes; a file above a megabyte is not one (and is not read whole).
MAX_FILE_BYTES = 1024 * 1024
# The kiosk's state directory (the outbox's database, the device key): one place to back up or wipe.
STATE_DIR = Path("/var/lib/kiosk")
# The updater's state (TUF metadata trusted, bundles downloaded): root's, apart from the kiosk's (kiosk-update.service).
UPDATE_STATE_DIR = Path("/var/lib/kiosk-update")


@dataclass(frozen=True)
class CentralConfig:
    url: str                           # https://host[:port][/path]; http:// only to this machine (development)
    timeout_s: float = 10.0
    catalogue_key: Path | None = None  # PEM of central's public key, that signs the catalogue: checked and kept
    # The kiosk's own private key (PEM), made by `kiosk provision`, that proves to central which kiosk asks.
    # Not the outbox's key_path (that one seals personal data at rest); it need not exist before provisioning.
    device_key_path: Path = STATE_DIR / "device-key.pem"
    ca_file: Path | None = None        # PEM of the CA that signs central's TLS certificate: pinned; None = the system's


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
    reprint_window_s: float = 300.0    # how long a paid document that failed mid-print waits for the printer; 0: not


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
    # gpio: BCM numbers of the pins (0: not wired). The light is an RGB LED (all three pins, or none).
    light_red_pin: int = 0
    light_green_pin: int = 0
    light_blue_pin: int = 0
    buzzer_pin: int = 0                # an active buzzer: the chime
    door_pin: int = 0                  # the door (tamper) switch: closed while the door is shut
    maintenance_pin: int = 0           # the technician's key switch
    help_pin: int = 0                  # the citizen's help button
    paper_low_pin: int = 0             # the printer's paper-low sensor
    active_low: bool = True            # inputs switch to ground (the Pi's pull-ups); false: to 3.3 V (pull-downs)
    bounce_s: float = 0.05             # an input must hold its new level this long to count (debounce)
    hold_s: float = 0.0                # the help button must be held this long to call an attendant


CABINET_PINS = ("light_red_pin", "light_green_pin", "light_blue_pin", "buzzer_pin", "door_pin", "maintenance_pin",
                "help_pin", "paper_low_pin")
MAX_BCM_PIN = 27                       # GPIO 0 to 27 on the Pi's 40-pin header


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
    path: Path = STATE_DIR / "outbox.sqlite3"   # the state database: outbox and journal
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
class TechnicianConfig:
    """The technician screen (the cabinet's maintenance key, then a PIN)."""

    pin_hash: str = ""                 # `kiosk technician hash-pin`'s salted hash; "": no PIN opens the screen
    max_tries: int = 5                 # wrong PINs before the lockout (counted across key turns)
    lockout_s: float = 300.0           # how long no PIN is taken after `max_tries` wrong ones


@dataclass(frozen=True)
class TelemetryConfig:
    """The kiosk's reports to central (kiosk/telemetry.py): heartbeats, alerts, the audit log."""

    heartbeat_s: float = 60.0          # a heartbeat at least this often
    debounce_s: float = 5.0            # and one soon after a change, but at most one this often


@dataclass(frozen=True)
class UpdatesConfig:
    """Signed updates (The Update Framework, kiosk/updates/): where the kiosk finds its releases."""

    repository_url: str = ""           # the release repository; "" = central.url + "/tuf" (central serves it)
    trusted_root: Path | None = None   # the TUF root the kiosk starts from; None = the one the firmware ships
    metadata_dir: Path = UPDATE_STATE_DIR / "metadata"    # the TUF metadata trusted so far (outlives a version)
    download_dir: Path = UPDATE_STATE_DIR / "downloads"   # bundles downloaded, and half downloaded
    disk_margin_mb: int = 256          # free space left beside a bundle: a download that would take it is refused


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
    technician: TechnicianConfig = field(default_factory=TechnicianConfig)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    updates: UpdatesConfig = field(default_factory=UpdatesConfig)

    @property
    def default_language(self) -> str:
        return self.languages[0]


SUPPORTED_LANGUAGES = ("ar", "en")

# Migrations from an older config_version: each takes the raw table of
# version N and returns that of version N + 1.
MIGRATIONS: dict[int, typing.Callable[[dict], dict]] = {}


# Bounds of the values the file holds, beside their types.
MAX_STRING = 4096                      # the longest string a configuration holds (a path: Linux's PATH_MAX)
MAX_DURATION_S = 365 * 24 * 3600.0     # no wait of the kiosk is longer than a year; far below every timer's limit
MAX_SCREEN_PIXELS = 16384
# A request id is `<device_id>-<32 hex digits>` (kiosk/session.py) and central takes ids of at most
# 64 characters (kiosk.wire.ID_PATTERN), so a longer device id would have every request refused.
DEVICE_ID_MAX_LENGTH = 64 - len("-") - 32
# Letters, digits, `-`, `_` and `.`, a letter or digit first (as central's ids); `..` is refused apart.
_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?")


def load(path: Path | str) -> KioskConfig:
    """The configuration in the file at `path`, checked; else one ConfigError line that names the problem."""
    path = Path(path)
    text = _read(path)
    try:
        raw = _parsed_toml(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("%s: not valid TOML: %s" % (path, exc)) from None
    except RecursionError:         # tomllib reads nested arrays and inline tables by recursion
        raise ConfigError("%s: not valid TOML: arrays or tables nested too deeply" % path) from None
    except ValueError:             # the one error tomllib lets through: int()'s limit on digits
        raise ConfigError("%s: not valid TOML: a number with too many digits" % path) from None
    try:
        return parse(raw, base_dir=path.parent)
    except ConfigError as exc:
        raise ConfigError("%s: %s" % (path.name, exc)) from None


def _parsed_toml(text: str) -> dict:
    """tomllib's reading of `text`, or its exception. On a thread of its own: tomllib reads nested arrays
    and inline tables by recursion, and a fresh thread's stack is the same depth whoever asks, so a deep
    document gets the same verdict from `kiosk run` as from `kiosk config check`."""
    outcome: dict[str, typing.Any] = {}

    def parse() -> None:
        try:
            outcome["raw"] = tomllib.loads(text)
        except BaseException as exc:  # noqa: B036 - raised again on the caller's thread
            outcome["error"] = exc

    reader = threading.Thread(target=parse, name="config-toml")
    reader.start()
    reader.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["raw"]


def _read(path: Path) -> str:
    """The text of the configuration file at `path`: a regular file, at most MAX_FILE_BYTES, in UTF-8."""
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError, ValueError):    # ValueError: a NUL in the name
        raise ConfigError("%s: no such configuration file" % path) from None
    except OSError as exc:
        raise ConfigError("%s: cannot be read (%s)" % (path, _why(exc))) from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError("%s: is a directory, not a configuration file" % path)
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError("%s: is not a regular file" % path)
    too_large = "%s: too large for a configuration file (over %d MB)" % (path, MAX_FILE_BYTES // (1024 * 1024))
    if info.st_size > MAX_FILE_BYTES:
        raise ConfigError(too_large)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError("%s: cannot be read (%s)" % (path, _why(exc))) from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(too_large)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("%s: not UTF-8 text (byte %d)" % (path, exc.start)) from None


def _why(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


def parse(raw: dict, *, base_dir: Path = Path(".")) -> KioskConfig:
    """The configuration a TOML document (already decoded) gives, checked."""
    version = raw.get("config_version", CONFIG_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ConfigError("`config_version` must be a whole number (1 to %d), not %s"
                          % (CONFIG_VERSION, _kind(version)))
    if not 1 <= version <= CONFIG_VERSION:
        raise ConfigError("`config_version` %s is not one this kiosk knows (1 to %d)"
                          % (_shown(version), CONFIG_VERSION))
    while version < CONFIG_VERSION:
        raw = MIGRATIONS[version](raw)
        version += 1
    raw = dict(raw, config_version=CONFIG_VERSION)
    config = _build(KioskConfig, raw, prefix="", base_dir=base_dir)
    _check(config)
    return config


def _check(config: KioskConfig) -> None:
    _check_device_id(config.device_id)
    if not config.languages:
        raise ConfigError("`languages` must name at least one language")
    for i, language in enumerate(config.languages):
        if language not in SUPPORTED_LANGUAGES:
            raise ConfigError("`languages`: %s is not one of %s" % (_shown(language), ", ".join(SUPPORTED_LANGUAGES)))
        if language in config.languages[:i]:
            raise ConfigError("`languages` names %s twice" % _shown(language))
    if not config.card.trusted_issuers:
        raise ConfigError("`card.trusted_issuers` must list at least one issuer public key")
    for pem in config.card.trusted_issuers:
        _check_file("card.trusted_issuers", pem)
    for key, name in (("card.backend", config.card.backend), ("payment.backend", config.payment.backend),
                      ("printer.backend", config.printer.backend), ("cabinet.backend", config.cabinet.backend),
                      ("outbox.backend", config.outbox.backend)):
        if not 0 < len(name) <= 64:
            raise ConfigError("`%s` must name an installed backend (1 to 64 characters)" % key)
        backends.find(backends.GROUPS[key], name, key=key)   # named and installed; imported only when built
    if config.display.digits not in DIGITS:
        raise ConfigError("`display.digits` %s is not one of %s" % (_shown(config.display.digits), ", ".join(DIGITS)))
    for key, pixels in (("display.width", config.display.width), ("display.height", config.display.height)):
        if not 0 < pixels <= MAX_SCREEN_PIXELS:
            raise ConfigError("`%s` must be between 1 and %d (pixels)" % (key, MAX_SCREEN_PIXELS))
    _check_printer(config.printer)
    if config.payment.backend == "nexo" and not config.payment.host:
        raise ConfigError("`payment.host` must not be empty (the payment terminal's address)")
    for key, place in (("site.place_ar", config.site.place_ar), ("site.place_en", config.site.place_en)):
        if len(place) > wire.PLACE_MAX_LENGTH or not wire.is_plain_text(place):
            raise ConfigError("`%s` must be at most %d characters, without control or direction characters"
                              % (key, wire.PLACE_MAX_LENGTH))
    try:
        zoneinfo.ZoneInfo(config.site.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):   # OSError: "Asia" is a directory
        raise ConfigError("`site.time_zone` %s is not a time zone this system knows (e.g. Asia/Damascus)"
                          % _shown(config.site.time_zone)) from None
    check_central_url(config.central.url)
    # Every duration is positive, but one: none of these has a meaning at zero (a zero timeout gives up at once,
    # a zero idle warning ends a session with no warning shown, a zero refresh asks central without a pause).
    for key, value, unit in (
        ("card.pin_timeout_s", config.card.pin_timeout_s, "s"),
        ("card.apdu_timeout_s", config.card.apdu_timeout_s, "s"),
        ("session.idle_timeout_s", config.session.idle_timeout_s, "s"),
        ("session.idle_warning_s", config.session.idle_warning_s, "s"),
        ("session.document_timeout_s", config.session.document_timeout_s, "s"),
        ("central.timeout_s", config.central.timeout_s, "s"),
        ("printer.timeout_s", config.printer.timeout_s, "s"),
        ("payment.timeout_s", config.payment.timeout_s, "s"),
        ("catalogue.refresh_s", config.catalogue.refresh_s, "s"),
        ("catalogue.max_age_h", config.catalogue.max_age_h, "h"),
        ("outbox.max_backoff_s", config.outbox.max_backoff_s, "s"),
        ("telemetry.heartbeat_s", config.telemetry.heartbeat_s, "s"),
        ("telemetry.debounce_s", config.telemetry.debounce_s, "s"),
    ):
        if value <= 0:
            raise ConfigError("`%s` must be greater than zero" % key)
        limit = MAX_DURATION_S / 3600 if unit == "h" else MAX_DURATION_S
        if value > limit:
            raise ConfigError("`%s` must be at most a year (%g %s)" % (key, limit, unit))
    # The one duration zero means something for: no wait for the printer, a paid document that failed
    # mid-print is refunded at once (the session's `reprint_s` of 0).
    if not 0 <= config.printer.reprint_window_s <= MAX_DURATION_S:
        raise ConfigError("`printer.reprint_window_s` must be zero (refund at once) or more, and at most a year "
                          "(%g s)" % MAX_DURATION_S)
    if not 0 < config.printer.port < 65536:
        raise ConfigError("`printer.port` must be between 1 and 65535")
    if not 0 < config.payment.port < 65536:
        raise ConfigError("`payment.port` must be between 1 and 65535")
    if config.central.catalogue_key is not None:
        # `kiosk provision` writes it, with central's answer: a kiosk not provisioned yet has none.
        _check_file("central.catalogue_key", config.central.catalogue_key, may_be_missing=True)
    if config.central.ca_file is not None:
        _check_file("central.ca_file", config.central.ca_file)
    if config.payment.tls_ca is not None:
        _check_file("payment.tls_ca", config.payment.tls_ca)
    _check_outbox(config.outbox)
    _check_cabinet(config.cabinet)
    _check_technician(config.technician)
    if config.telemetry.debounce_s > config.telemetry.heartbeat_s:
        raise ConfigError("`telemetry.debounce_s` must be at most `telemetry.heartbeat_s` (a heartbeat goes on "
                          "schedule whatever changes)")
    _check_updates(config.updates)


def _check_updates(updates: UpdatesConfig) -> None:
    if updates.repository_url:
        check_central_url(updates.repository_url, key="updates.repository_url")
    if updates.trusted_root is not None:
        _check_file("updates.trusted_root", updates.trusted_root)
    if not 0 <= updates.disk_margin_mb <= 1024 * 1024:
        raise ConfigError("`updates.disk_margin_mb` must be between 0 and 1048576 (MB)")


def _check_technician(technician: TechnicianConfig) -> None:
    """A hash `kiosk technician hash-pin` made (never a PIN in clear), a few tries, a lockout that ends."""
    from kiosk.technician import parse_pin_hash

    if technician.pin_hash:
        if technician.pin_hash.isdigit():
            raise ConfigError("`technician.pin_hash` must be the hash `kiosk technician hash-pin` prints, "
                              "never the PIN itself")
        try:
            parse_pin_hash(technician.pin_hash)
        except ValueError as exc:
            raise ConfigError("`technician.pin_hash`: %s" % exc) from None
    if not 1 <= technician.max_tries <= 20:
        raise ConfigError("`technician.max_tries` must be between 1 and 20")
    if not 0 < technician.lockout_s <= MAX_DURATION_S:
        raise ConfigError("`technician.lockout_s` must be greater than zero and at most a year (%g s)"
                          % MAX_DURATION_S)


def _check_cabinet(cabinet: CabinetConfig) -> None:
    """Pins on the header, none used twice, the light whole or absent, and short waits."""
    seen: dict[int, str] = {}
    for key in CABINET_PINS:
        pin = getattr(cabinet, key)
        if not 0 <= pin <= MAX_BCM_PIN:
            raise ConfigError("`cabinet.%s` must be a BCM GPIO number from 1 to %d (0: not wired)" % (key, MAX_BCM_PIN))
        if pin and pin in seen:
            raise ConfigError("`cabinet.%s` is GPIO %d, already `cabinet.%s`" % (key, pin, seen[pin]))
        if pin:
            seen[pin] = key
    light = (cabinet.light_red_pin, cabinet.light_green_pin, cabinet.light_blue_pin)
    if any(light) and not all(light):
        raise ConfigError("`cabinet.light_red_pin`, `light_green_pin` and `light_blue_pin` must all be wired, or none")
    if not 0 <= cabinet.bounce_s <= 1:
        raise ConfigError("`cabinet.bounce_s` must be between 0 and 1 (s)")
    if not 0 <= cabinet.hold_s <= 10:
        raise ConfigError("`cabinet.hold_s` must be between 0 and 10 (s)")


def _check_device_id(device_id: str) -> None:
    """The kiosk's id, as central knows it and as it begins every request id: safe in a URL, a file name, a log."""
    if not device_id:
        raise ConfigError("`device_id` must not be empty (this kiosk's id, as central knows it)")
    if len(device_id) > DEVICE_ID_MAX_LENGTH:
        raise ConfigError("`device_id` must be at most %d characters (it begins every request id, which central "
                          "takes up to 64)" % DEVICE_ID_MAX_LENGTH)
    if not _DEVICE_ID.fullmatch(device_id) or ".." in device_id:
        raise ConfigError("`device_id` %s must be letters, digits, `-`, `_` and `.`, a letter or digit first, "
                          "without `..`" % _shown(device_id))


def check_central_url(url: str, *, key: str = "central.url") -> None:
    """https://host[:port][/path]; http:// only when central runs on this machine (loopback), for development.
    ConfigError naming `key` otherwise (`kiosk provision --central URL` checks its URL here too)."""
    if any(ch.isspace() for ch in url):
        raise ConfigError("`%s` must not contain spaces" % key)
    if not wire.is_plain_text(url):
        raise ConfigError("`%s` must not contain control or direction characters" % key)
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:              # a port that is not a number or above 65535, a broken [IPv6] literal
        raise ConfigError("`%s` %s is not a URL (a bad port or address)" % (key, _shown(url))) from None
    if parts.scheme not in ("https", "http"):
        raise ConfigError("`%s` must start with https:// (http:// only to central on this machine)" % key)
    if not host:
        raise ConfigError("`%s` %s names no host (https://HOST[:PORT])" % (key, _shown(url)))
    if parts.username is not None or parts.password is not None:
        raise ConfigError("`%s` must not carry a user name or password" % key)
    if "?" in url or "#" in url:
        raise ConfigError("`%s` must not have a query or a fragment (it is the base of central's API)" % key)
    if port == 0:
        raise ConfigError("`%s` port must be between 1 and 65535" % key)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
        if len(host) > 253 or not _HOST_NAME.fullmatch(host):
            raise ConfigError("`%s` %s does not name a host (letters, digits, `-`, dots)" % (key, _shown(url)))
    if parts.scheme == "http" and not (host == "localhost" or (address is not None and address.is_loopback)):
        raise ConfigError("`%s` must use https:// (http:// only to central on this machine: localhost, "
                          "127.0.0.0/8 or ::1)" % key)


def _check_file(key: str, path: Path, *, may_be_missing: bool = False) -> None:
    try:
        found = path.is_file()
        missing = not found and not path.exists()
    except OSError as exc:          # a name too long, a directory on the way that may not be entered
        raise ConfigError("`%s`: cannot use %s (%s)" % (key, path, _why(exc))) from None
    if missing and may_be_missing:
        return
    if not found:
        raise ConfigError("`%s`: no such file %s" % (key, path))


def _check_outbox(outbox: OutboxConfig) -> None:
    # Zero is meaningful for both: a reserve of 0 MB never closes paid services for the disk, an alert at
    # 0 MB never alerts. The alert comes first.
    if outbox.disk_reserve_mb < 0:
        raise ConfigError("`outbox.disk_reserve_mb` must be zero or more")
    if outbox.disk_alert_mb < outbox.disk_reserve_mb:
        raise ConfigError("`outbox.disk_alert_mb` must be at least `outbox.disk_reserve_mb` (the alert comes first)")


PRINTER_TRANSPORTS = ("network", "usb", "serial")
DIGITS = ("western", "arabic-indic")


def _check_printer(printer: PrinterConfig) -> None:
    for key, usb_id in (("printer.usb_vendor_id", printer.usb_vendor_id),
                        ("printer.usb_product_id", printer.usb_product_id)):
        if not 0 <= usb_id < 0x10000:          # 0: not given (only the usb transport needs them)
            raise ConfigError("`%s` must be between 0 and 0xffff" % key)
    if printer.backend != "escpos":
        return
    if printer.transport not in PRINTER_TRANSPORTS:
        raise ConfigError("`printer.transport` %s is not one of %s"
                          % (_shown(printer.transport), ", ".join(PRINTER_TRANSPORTS)))
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
        raise ConfigError("`%s` must be a table, not %s" % (prefix.rstrip("."), _kind(raw)))
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in raw:
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1) if len(key) <= 64 else []
            hint = ": did you mean `%s`?" % close[0] if close else ""
            raise ConfigError("unknown key `%s%s`%s" % (prefix, _shown_key(key), hint))
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
            raise ConfigError("`%s` must be a list, not %s" % (dotted, _kind(value)))
        return tuple(_convert(item, v, dotted, base_dir) for v in value)
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError("`%s` must be a path, not %s" % (dotted, "empty" if value == "" else _kind(value)))
        _check_string(dotted, value)
        path = Path(value)
        if path.is_absolute():
            return path
        try:
            return (base_dir / path).resolve()
        except (OSError, RuntimeError):    # RuntimeError: a symbolic link that leads back to itself
            raise ConfigError("`%s`: cannot use %s (a loop of symbolic links)" % (dotted, base_dir / path)) from None
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError("`%s` must be true or false, not %s" % (dotted, _kind(value)))
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError("`%s` must be a whole number, not %s" % (dotted, _kind(value)))
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError("`%s` must be a number, not %s" % (dotted, _kind(value)))
        if isinstance(value, int) and abs(value) >= 2 ** 1000:     # float() of it would overflow
            raise ConfigError("`%s` is far too large" % dotted)
        number = float(value)
        if not math.isfinite(number):
            raise ConfigError("`%s` must be a finite number, not %s" % (dotted, "nan" if math.isnan(number) else "inf"))
        return number
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError("`%s` must be a string, not %s" % (dotted, _kind(value)))
        _check_string(dotted, value)
        return value
    raise TypeError("unsupported configuration type %r" % (hint,))  # a bug in this module, not bad input


def _check_string(dotted: str, value: str) -> None:
    """Every string of the file is a name, an id, an address or a path: one short line of plain text."""
    if len(value) > MAX_STRING:
        raise ConfigError("`%s` must be at most %d characters" % (dotted, MAX_STRING))
    if not wire.is_plain_text(value):
        raise ConfigError("`%s` must not contain control or direction characters" % dotted)


def _kind(value: object) -> str:
    """What a TOML value is, for a message that does not print it (it may be huge, or nested deep)."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"


def _shown(value: object, limit: int = 40) -> str:
    """A string or a number as a message shows it: quoted, escaped (repr), one short line."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return "(a number of more than 64 bits)"
    text = repr(value) if isinstance(value, (str, int, float)) else _kind(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _shown_key(key: str) -> str:
    """A key of the file in a message: as written when it is short plain text, else escaped and cut."""
    return key if len(key) <= 64 and key.isprintable() and wire.is_plain_text(key) else _shown(key)
