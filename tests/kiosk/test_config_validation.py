"""Strict configuration: every bad value or bad file is one ConfigError line naming the key and the problem,
as a technician sees it from `kiosk config check`, never a traceback."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from kiosk import cli, config
from kiosk.errors import ConfigError

GOOD = """\
device_id = "kiosk-0001"
[central]
url = "http://127.0.0.1:8080"
[card]
trusted_issuers = ["issuer.pub.pem"]
[printer]
host = "127.0.0.1"
"""

# Durations that mean nothing at zero; printer.reprint_window_s is the one that does (refund at once).
DURATIONS = ("card.pin_timeout_s", "card.apdu_timeout_s", "session.idle_timeout_s", "session.idle_warning_s",
             "session.document_timeout_s", "central.timeout_s", "printer.timeout_s", "payment.timeout_s",
             "catalogue.refresh_s", "catalogue.max_age_h", "outbox.max_backoff_s")


@pytest.fixture
def write(tmp_path: Path):
    """Writes kiosk.toml beside a trusted issuer key; `text` is the whole file."""
    (tmp_path / "issuer.pub.pem").write_text("-----BEGIN PUBLIC KEY-----\n")

    def write(text: str) -> Path:
        path = tmp_path / "kiosk.toml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path
    return write


def with_value(dotted: str, toml_value: str, base: str = GOOD) -> str:
    """`base` with `dotted` (`key` or `section.key`) set to `toml_value` (TOML source)."""
    if "." not in dotted:
        return "%s = %s\n%s" % (dotted, toml_value, base.replace("%s = " % dotted, "# was: %s = " % dotted))
    section, key = dotted.split(".")
    header = "[%s]\n" % section
    if header in base:
        lines = [line for line in base.splitlines(keepends=True)]
        start = lines.index(header) + 1
        lines = [line for i, line in enumerate(lines) if i < start or not line.startswith(key + " = ")]
        lines.insert(start, "%s = %s\n" % (key, toml_value))
        return "".join(lines)
    return base + "%s%s = %s\n" % (header, key, toml_value)


def refused(path: Path) -> str:
    """The one line load() refuses `path` with."""
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def check(path: Path, capsys) -> tuple[int, str, str]:
    """`kiosk config check --config PATH`, in-process: its exit status, standard output and error."""
    status = cli.main(["config", "check", "--config", str(path)])
    out, err = capsys.readouterr()
    return status, out, err


# --- numbers ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", DURATIONS)
@pytest.mark.parametrize("value, problem", [
    ("nan", "must be a finite number, not nan"),
    ("+nan", "must be a finite number, not nan"),
    ("inf", "must be a finite number, not inf"),
    ("-inf", "must be a finite number, not inf"),
    ("0", "must be greater than zero"),
    ("0.0", "must be greater than zero"),
    ("-1", "must be greater than zero"),
    ("-0.5", "must be greater than zero"),
    ("1e300", "must be at most a year"),
    ("true", "must be a number, not true or false"),
    ('"10"', "must be a number, not a string"),
    ("[10]", "must be a number, not a list"),
    ("1979-05-27", "must be a number, not a date or time"),
])
def test_every_duration_is_a_finite_positive_number(write, key, value, problem):
    message = refused(write(with_value(key, value)))
    assert message.startswith("kiosk.toml: `%s` %s" % (key, problem)), message


def test_a_duration_of_a_whole_number_of_digits_past_any_float(write):
    assert refused(write(with_value("session.idle_timeout_s", "0x" + "f" * 600))) \
        == "kiosk.toml: `session.idle_timeout_s` is far too large"


def test_zero_is_kept_where_it_means_something(write):
    """A reprint window of 0 s refunds a document that failed mid-print at once; a disk reserve of 0 MB never
    closes paid services for the disk; an alert at 0 MB never alerts; USB ids of 0 are "not given" for a printer
    that is not on USB."""
    cfg = config.load(write(with_value("printer.reprint_window_s", "0")
                            + "[outbox]\ndisk_reserve_mb = 0\ndisk_alert_mb = 0\n"))
    assert cfg.printer.reprint_window_s == 0.0
    assert (cfg.outbox.disk_reserve_mb, cfg.outbox.disk_alert_mb) == (0, 0)
    assert (cfg.printer.usb_vendor_id, cfg.printer.usb_product_id) == (0, 0)


@pytest.mark.parametrize("value, problem", [
    ("-1", "must be zero (refund at once) or more, and at most a year"),
    ("1e9", "must be zero (refund at once) or more, and at most a year"),
    ("nan", "must be a finite number, not nan"),
    ("inf", "must be a finite number, not inf"),
    ("true", "must be a number, not true or false"),
])
def test_the_reprint_window_is_zero_or_more(write, value, problem):
    message = refused(write(with_value("printer.reprint_window_s", value)))
    assert message.startswith("kiosk.toml: `printer.reprint_window_s` " + problem), message


@pytest.mark.parametrize("key, value, problem", [
    ("printer.port", "0", "must be between 1 and 65535"),
    ("printer.port", "65536", "must be between 1 and 65535"),
    ("payment.port", "-1", "must be between 1 and 65535"),
    ("printer.port", "9100.0", "must be a whole number, not a decimal number"),
    ("printer.port", "true", "must be a whole number, not true or false"),
    ("printer.usb_vendor_id", "-1", "must be between 0 and 0xffff"),
    ("printer.usb_product_id", "0x10000", "must be between 0 and 0xffff"),
    ("display.width", "0", "must be between 1 and 16384 (pixels)"),
    ("display.height", "-600", "must be between 1 and 16384 (pixels)"),
    ("display.width", "100000", "must be between 1 and 16384 (pixels)"),
    ("outbox.disk_reserve_mb", "-1", "must be zero or more"),
    ("outbox.disk_alert_mb", "nan", "must be a whole number, not a decimal number"),
])
def test_whole_numbers_are_whole_and_in_range(write, key, value, problem):
    assert refused(write(with_value(key, value))) == "kiosk.toml: `%s` %s" % (key, problem)


# --- booleans are not numbers, numbers are not booleans ---------------------------------------------------------------

@pytest.mark.parametrize("key, value, problem", [
    ("config_version", "true", "must be a whole number (1 to 1), not true or false"),
    ("config_version", "false", "must be a whole number (1 to 1), not true or false"),
    ("config_version", "1.0", "must be a whole number (1 to 1), not a decimal number"),
    ("config_version", '"1"', "must be a whole number (1 to 1), not a string"),
    ("config_version", "0", "0 is not one this kiosk knows (1 to 1)"),
    ("config_version", "0x" + "f" * 300, "(a number of more than 64 bits) is not one this kiosk knows"),
    ("display.fullscreen", "1", "must be true or false, not a whole number"),
    ("display.fullscreen", "0.0", "must be true or false, not a decimal number"),
    ("display.fullscreen", '"yes"', "must be true or false, not a string"),
    ("audio.guidance", "0", "must be true or false, not a whole number"),
    ("session.idle_timeout_s", "false", "must be a number, not true or false"),
])
def test_booleans_are_not_numbers_and_numbers_are_not_booleans(write, key, value, problem):
    message = refused(write(with_value(key, value)))
    assert message.startswith("kiosk.toml: `%s` %s" % (key, problem)), message


# --- device_id -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("device_id", ["k", "kiosk-0001", "kiosk-damascus-0001", "Kiosk_07.b", "0", "k" * 31])
def test_a_device_id(write, device_id):
    assert config.load(write(with_value("device_id", '"%s"' % device_id))).device_id == device_id


@pytest.mark.parametrize("toml_value, problem", [
    ('""', "`device_id` must not be empty"),
    ('"../x"', "`device_id` '../x' must be letters, digits, `-`, `_` and `.`, a letter or digit first, without `..`"),
    ('"a/b"', "`device_id` 'a/b' must be letters, digits"),
    ('"."', "`device_id` '.' must be letters, digits"),
    ('".."', "`device_id` '..' must be letters, digits"),
    ('"a..b"', "`device_id` 'a..b' must be letters, digits"),
    ('".kiosk"', "`device_id` '.kiosk' must be letters, digits"),
    ('"-kiosk"', "`device_id` '-kiosk' must be letters, digits"),
    ('"_kiosk"', "`device_id` '_kiosk' must be letters, digits"),
    ('"kiosk 01"', "`device_id` 'kiosk 01' must be letters, digits"),
    ('"kiosk:01"', "`device_id` 'kiosk:01' must be letters, digits"),
    ('"a\\\\b"', "`device_id` 'a\\\\b' must be letters, digits"),
    ('"kiosk٠١"', "`device_id` 'kiosk٠١' must be letters, digits"),          # Arabic-Indic digits are not [0-9]
    ('"%s"' % ("k" * 32), "`device_id` must be at most 31 characters (it begins every request id"),
    ('"kiosk\\u0000"', "`device_id` must not contain control or direction characters"),
    ('"kiosk\\u001b[2J"', "`device_id` must not contain control or direction characters"),
    ('"kiosk\\u202e10"', "`device_id` must not contain control or direction characters"),
    ("1", "`device_id` must be a string, not a whole number"),
    ("true", "`device_id` must be a string, not true or false"),
])
def test_a_device_id_that_is_not_an_id_is_refused(write, toml_value, problem):
    message = refused(write(with_value("device_id", toml_value)))
    assert message.startswith("kiosk.toml: " + problem), message


def test_the_longest_device_id_makes_request_ids_central_takes():
    from kiosk.wire import is_id
    assert is_id("%s-%s" % ("k" * config.DEVICE_ID_MAX_LENGTH, "0" * 32))
    assert not is_id("%s-%s" % ("k" * (config.DEVICE_ID_MAX_LENGTH + 1), "0" * 32))


# --- strings that are names, ids, addresses or paths ---------------------------------------------------------------

@pytest.mark.parametrize("key, toml_value", [
    ("card.reader", '"Virtual PCD\\u001b[2J"'),
    ("card.reader", '"Virtual PCD\\u0085"'),            # C1
    ("card.reader", '"Virtual PCD\\u007f"'),            # DEL
    ("printer.host", '"192.0.2.10\\u0000"'),
    ("payment.poi_id", '"POI\\u2066-1"'),
    ("payment.host", '"terminal\\u202a"'),
    ("site.governorate", '"damascus\\u2069"'),
    ("site.time_zone", '"Asia/Damascus\\n"'),
    ("outbox.path", '"/var/lib/kiosk/\\u2028outbox.sqlite3"'),
    ("central.device_key_path", '"/var/lib/kiosk/key\\u202e.pem"'),
    ("card.backend", '"pyscard\\t"'),
])
def test_control_and_direction_characters_are_refused_in_names(write, key, toml_value):
    assert refused(write(with_value(key, toml_value))) \
        == "kiosk.toml: `%s` must not contain control or direction characters" % key


def test_a_language_with_control_characters_is_shown_escaped(write):
    message = refused(write('languages = ["ar", "e\\u001bn"]\n' + GOOD))
    assert message == "kiosk.toml: `languages` must not contain control or direction characters"


def test_a_language_named_twice(write):
    assert refused(write('languages = ["ar", "ar"]\n' + GOOD)) == "kiosk.toml: `languages` names 'ar' twice"


def test_an_unknown_key_with_odd_characters_is_shown_escaped_on_one_line(write):
    message = refused(write(GOOD + '[session]\n"idle\\u001b[2J\\n" = 1\n'))
    assert message == "kiosk.toml: unknown key `session.'idle\\x1b[2J\\n'`"
    message = refused(write(GOOD + '[session]\n"%s" = 1\n' % ("x" * 5000)))
    assert message.startswith("kiosk.toml: unknown key `session.'xxx") and message.endswith("...`")
    assert len(message) < 100


def test_a_time_zone_that_is_a_directory_of_time_zones(write):
    assert refused(write(GOOD + '[site]\ntime_zone = "Asia"\n')) \
        == "kiosk.toml: `site.time_zone` 'Asia' is not a time zone this system knows (e.g. Asia/Damascus)"


def test_an_issuer_key_path_too_long_for_the_system(write):
    message = refused(write(GOOD.replace("issuer.pub.pem", "k" * 300)))
    assert message.startswith("kiosk.toml: `card.trusted_issuers`: cannot use ") and "file name too long" in message


def test_a_path_through_a_loop_of_symbolic_links(write, tmp_path):
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    message = refused(write(GOOD.replace("issuer.pub.pem", "loop/issuer.pub.pem")))
    assert message.startswith("kiosk.toml: `card.trusted_issuers`: cannot use ") and "loop" in message


def test_a_very_long_string_is_refused_before_it_is_used(write):
    message = refused(write(with_value("card.reader", '"%s"' % ("r" * 5000))))
    assert message == "kiosk.toml: `card.reader` must be at most 4096 characters"


def test_a_backend_name_too_long_to_be_one(write):
    assert refused(write(with_value("payment.backend", '"%s"' % ("n" * 100)))) \
        == "kiosk.toml: `payment.backend` must name an installed backend (1 to 64 characters)"


def test_the_nexo_terminal_needs_an_address(write):
    assert refused(write(with_value("payment.host", '""'))) \
        == "kiosk.toml: `payment.host` must not be empty (the payment terminal's address)"


# --- central.url -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "https://central.example.gov.sy", "https://central.invalid", "https://central.example.gov.sy:8443/kiosk/",
    "https://10.20.0.5", "https://[2001:db8::1]:8443",
    "http://127.0.0.1:8080", "http://127.0.0.1:54321",        # the tests and the demo stack (drivers/demo)
    "http://127.10.20.30", "http://localhost:8000/", "http://LOCALHOST", "http://[::1]:8080",
])
def test_a_central_url(write, url):
    assert config.load(write(with_value("central.url", '"%s"' % url))).central.url == url


@pytest.mark.parametrize("url, problem", [
    ("http://", "`central.url` 'http://' names no host (https://HOST[:PORT])"),
    ("https://", "`central.url` 'https://' names no host"),
    ("https:///api", "`central.url` 'https:///api' names no host"),
    ("https://:8443", "`central.url` 'https://:8443' names no host"),
    ("https:central.example.gov.sy", "names no host"),
    ("http://central.example.gov.sy", "`central.url` must use https:// (http:// only to central on this machine: "
                                      "localhost, 127.0.0.0/8 or ::1)"),
    ("http://10.0.0.5:8080", "`central.url` must use https://"),
    ("http://127.0.0.1.nip.io", "`central.url` must use https://"),
    ("http://[::ffff:10.0.0.1]", "`central.url` must use https://"),
    ("central.example.gov.sy", "`central.url` must start with https://"),
    ("ftp://central.example.gov.sy", "`central.url` must start with https://"),
    ("", "`central.url` must start with https://"),
    ("https://user:secret@central.example.gov.sy", "`central.url` must not carry a user name or password"),
    ("https://central.example.gov.sy/?kiosk=1", "`central.url` must not have a query or a fragment"),
    ("https://central.example.gov.sy#api", "`central.url` must not have a query or a fragment"),
    ("https://central.example.gov.sy:99999", "is not a URL (a bad port or address)"),
    ("https://central.example.gov.sy:https", "is not a URL (a bad port or address)"),
    ("https://central.example.gov.sy:0", "`central.url` port must be between 1 and 65535"),
    ("https://[::1", "is not a URL (a bad port or address)"),
    ("https://central example", "`central.url` must not contain spaces"),
    ("https://central\\u00a0example", "`central.url` must not contain spaces"),
    ("https://central\\u0000.example", "`central.url` must not contain control or direction characters"),
    ("https://central..example", "does not name a host"),
    ("https://-central.example", "does not name a host"),
    ("https://central<script>", "does not name a host"),
])
def test_a_central_url_that_is_refused(write, url, problem):
    message = refused(write(with_value("central.url", '"%s"' % url)))
    assert message.startswith("kiosk.toml: `central.url`") and problem in message, message


# --- central.device_key_path ---------------------------------------------------------------------------------------

def test_the_device_key_lives_in_the_state_directory_by_default(write):
    cfg = config.load(write(GOOD))
    assert cfg.central.device_key_path == Path("/var/lib/kiosk/device-key.pem")
    assert cfg.central.device_key_path.parent == cfg.outbox.path.parent     # the outbox's default directory


def test_the_device_key_path_is_taken_from_the_file_and_need_not_exist_yet(write, tmp_path):
    cfg = config.load(write(with_value("central.device_key_path", '"keys/device-key.pem"')))
    assert cfg.central.device_key_path == (tmp_path / "keys" / "device-key.pem").resolve()
    assert not cfg.central.device_key_path.exists()        # `kiosk provision` makes it


@pytest.mark.parametrize("toml_value, problem", [
    ('""', "must be a path, not empty"),
    ("1", "must be a path, not a whole number"),
    ("false", "must be a path, not true or false"),
    ('["a.pem"]', "must be a path, not a list"),
    ('"key\\u0000.pem"', "must not contain control or direction characters"),
])
def test_a_device_key_path_that_is_not_one(write, toml_value, problem):
    assert refused(write(with_value("central.device_key_path", toml_value))) \
        == "kiosk.toml: `central.device_key_path` %s" % problem


# --- the file itself -----------------------------------------------------------------------------------------------

def test_a_directory_given_as_the_file(tmp_path, capsys):
    assert refused(tmp_path) == "%s: is a directory, not a configuration file" % tmp_path
    status, out, err = check(tmp_path, capsys)
    assert (status, out, err) == (2, "", "kiosk: %s: is a directory, not a configuration file\n" % tmp_path)


def test_a_file_that_cannot_be_read(write, monkeypatch):
    path = write(GOOD)
    real_open = Path.open

    def denied(self, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)
    monkeypatch.setattr(Path, "open", denied)
    assert refused(path) == "%s: cannot be read (permission denied)" % path


def test_a_file_that_is_not_utf8(write):
    path = write(GOOD)
    path.write_bytes(GOOD.encode("utf-8") + b'[site]\nplace_en = "\xff\xfe"\n')
    assert refused(path) == "%s: not UTF-8 text (byte %d)" % (path, len(GOOD) + len('[site]\nplace_en = "'))


def test_a_file_over_a_megabyte(write):
    path = write(GOOD + "#" * (config.MAX_FILE_BYTES - len(GOOD)) + "\n")
    assert refused(path) == "%s: too large for a configuration file (over 1 MB)" % path


def test_a_file_of_exactly_a_megabyte_is_read(write):
    path = write(GOOD + "#" * (config.MAX_FILE_BYTES - len(GOOD) - 1) + "\n")
    assert path.stat().st_size == config.MAX_FILE_BYTES and config.load(path).device_id == "kiosk-0001"


def test_a_fifo_is_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "kiosk.toml")
    assert refused(tmp_path / "kiosk.toml") == "%s: is not a regular file" % (tmp_path / "kiosk.toml")


@pytest.mark.parametrize("nesting", [
    "x = " + "[" * 5000 + "]" * 5000,
    "x = " + "{a = " * 5000 + "1" + "}" * 5000,
    "x = [" + "{a = [" * 2000 + "]}" * 2000 + "]",
])
def test_a_file_nested_too_deeply(write, capsys, nesting):
    path = write(nesting + "\n" + GOOD)
    assert refused(path) == "%s: not valid TOML: arrays or tables nested too deeply" % path
    status, out, err = check(path, capsys)
    assert (status, out) == (2, "") and err == "kiosk: %s: not valid TOML: arrays or tables nested too deeply\n" % path


def test_a_deep_table_header_is_an_unknown_key(write):
    assert refused(write(GOOD + "[%s]\n" % ".".join(["a"] * 20000))) == "kiosk.toml: unknown key `a`"


def test_a_number_with_more_digits_than_python_reads(write):
    path = write("x = %s\n" % ("1" * 5000) + GOOD)
    assert refused(path) == "%s: not valid TOML: a number with too many digits" % path


def test_config_check_says_valid_on_one_line_and_whether_the_kiosk_is_provisioned(write, capsys, tmp_path):
    key = tmp_path / "device-key.pem"
    path = write(GOOD.replace('url = "http://127.0.0.1:8080"',
                              'url = "http://127.0.0.1:8080"\n    device_key_path = "%s"' % key))
    status, out, err = check(path, capsys)
    assert (status, err) == (0, "")
    assert out == ("%s: valid (device kiosk-0001, central http://127.0.0.1:8080)\n"
                   "not provisioned yet: no device key at %s (`kiosk provision --central URL --code CODE`)\n"
                   % (path, key))
    key.write_text("made by kiosk provision")
    assert check(path, capsys)[1] == "%s: valid (device kiosk-0001, central http://127.0.0.1:8080)\n" % path


@pytest.mark.parametrize("text, expected", [
    ("config_version = true\n" + GOOD,
     "kiosk.toml: `config_version` must be a whole number (1 to 1), not true or false"),
    (with_value("session.idle_timeout_s", "nan"),
     "kiosk.toml: `session.idle_timeout_s` must be a finite number, not nan"),
    (with_value("device_id", '"../x"'), "kiosk.toml: `device_id` '../x' must be letters, digits"),
    (with_value("central.url", '"http://"'), "kiosk.toml: `central.url` 'http://' names no host"),
])
def test_config_check_names_the_key_and_the_problem(write, capsys, text, expected):
    status, out, err = check(write(text), capsys)
    assert (status, out) == (2, "") and err.startswith("kiosk: " + expected) and err.count("\n") == 1, err


def test_central_url_check_names_the_key_it_is_given():
    with pytest.raises(ConfigError) as caught:
        config.check_central_url("http://central.example.gov.sy", key="--central")
    assert str(caught.value).startswith("`--central` must use https://")
    with pytest.raises(ConfigError, match="^`central.url` must not contain control or direction characters$"):
        config.check_central_url("https://central\x1b.example")
    config.check_central_url("https://central.example.gov.sy")


def test_central_ca_file_is_pinned_when_given(write, tmp_path):
    assert config.load(write(GOOD)).central.ca_file is None
    (tmp_path / "central-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    cfg = config.load(write(with_value("central.ca_file", '"central-ca.pem"')))
    assert cfg.central.ca_file == (tmp_path / "central-ca.pem").resolve()
    assert refused(write(with_value("central.ca_file", '"gone.pem"'))).startswith(
        "kiosk.toml: `central.ca_file`: no such file ")
