"""A bad configuration stops start-up with one line that names the key."""

import textwrap

import pytest

from kiosk import config
from kiosk.catalogue_supply import load_public_key
from kiosk.errors import ConfigError


@pytest.fixture
def write(tmp_path):
    (tmp_path / "issuer.pub.pem").write_text("-----BEGIN PUBLIC KEY-----\n")

    def write(body):
        path = tmp_path / "kiosk.toml"
        path.write_text(textwrap.dedent(body))
        return path
    return write


GOOD = """
    device_id = "kiosk-0001"
    [central]
    url = "http://127.0.0.1:8080"
    [card]
    trusted_issuers = ["issuer.pub.pem"]
    [printer]
    host = "127.0.0.1"
"""


def test_minimal_file_gets_the_documented_defaults(write, tmp_path):
    cfg = config.load(write(GOOD))
    assert cfg.session.idle_timeout_s == 60.0 and cfg.card.pin_timeout_s == 30.0
    assert cfg.languages == ("ar", "en") and cfg.default_language == "ar"
    assert cfg.card.trusted_issuers == ((tmp_path / "issuer.pub.pem").resolve(),)
    assert cfg.printer.port == 9100


@pytest.mark.parametrize("extra, message", [
    ("[session]\nidle_timout_s = 30\n", "unknown key `session.idle_timout_s`: did you mean `idle_timeout_s`?"),
    ("[session]\nidle_timeout_s = -1\n", "`session.idle_timeout_s` must be greater than zero"),
    ("[session]\nidle_timeout_s = \"soon\"\n", "`session.idle_timeout_s` must be a number"),
    ("languages = [\"fr\"]\n", "`languages`: 'fr' is not one of ar, en"),
    ("config_version = 7\n", "`config_version` 7 is not one this kiosk knows"),
    ("[payment]\nbackend = \"nexoo\"\n", "`payment.backend` 'nexoo' is not an installed backend "
                                           "(fake, nexo): did you mean 'nexo'?"),
    ("[cabinet]\nbackend = \"relay-board\"\n", "`cabinet.backend` 'relay-board' is not an installed backend"),
])
def test_bad_value_names_its_key(write, extra, message):
    path = write(GOOD + extra if extra.startswith("[") else extra + GOOD)
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert message in str(caught.value) and str(caught.value).startswith("kiosk.toml: ")
    assert "\n" not in str(caught.value)


def test_missing_key_is_named(write):
    with pytest.raises(ConfigError, match="missing key `printer.host`"):
        config.load(write(GOOD.replace('host = "127.0.0.1"', "")))


def test_each_port_has_its_documented_backend_by_default(write):
    cfg = config.load(write(GOOD))
    assert (cfg.card.backend, cfg.payment.backend, cfg.printer.backend, cfg.cabinet.backend, cfg.outbox.backend) \
        == ("pyscard", "nexo", "escpos", "none", "sqlite")


def test_a_printer_without_a_network_address_needs_no_host(write):
    cfg = config.load(write(GOOD.replace('host = "127.0.0.1"', 'backend = "fake"')))
    assert cfg.printer.backend == "fake" and cfg.printer.host == ""


def test_checking_a_configuration_imports_no_driver(write):
    import subprocess
    import sys
    probe = ("import sys; from kiosk import config; config.load(%r); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('drivers', 'escpos', 'smartcard')))"
             % str(write(GOOD)))
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"


def test_missing_issuer_key_file_is_named(write):
    with pytest.raises(ConfigError, match="no such file .*other.pem"):
        config.load(write(GOOD.replace("issuer.pub.pem", "other.pem")))


def test_not_toml_at_all(write):
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(write("device_id = \n"))


def test_no_file(tmp_path):
    with pytest.raises(ConfigError, match="no such configuration file"):
        config.load(tmp_path / "absent.toml")


def test_the_catalogue_key_and_the_age_of_a_kept_catalogue(write, tmp_path):
    cfg = config.load(write(GOOD))
    assert cfg.central.catalogue_key is None and cfg.catalogue.max_age_h == 72.0 and cfg.catalogue.refresh_s == 60.0
    (tmp_path / "central.pem").write_text("-----BEGIN PUBLIC KEY-----\n")
    cfg = config.load(write(GOOD.replace('url = "http://127.0.0.1:8080"',
                                         'url = "http://127.0.0.1:8080"\n    catalogue_key = "central.pem"')
                            + "[catalogue]\nmax_age_h = 24\n"))
    assert cfg.central.catalogue_key == (tmp_path / "central.pem").resolve() and cfg.catalogue.max_age_h == 24.0
    # Not there yet: `kiosk provision` writes it; the kiosk itself does not start without it.
    waiting = config.load(write(GOOD.replace('url = "http://127.0.0.1:8080"',
                                             'url = "http://127.0.0.1:8080"\n    catalogue_key = "gone.pem"')))
    with pytest.raises(ConfigError, match="`central.catalogue_key`: no such file .*kiosk provision"):
        load_public_key(waiting.central.catalogue_key)
    (tmp_path / "folder.pem").mkdir()
    with pytest.raises(ConfigError, match="`central.catalogue_key`: no such file"):
        config.load(write(GOOD.replace('url = "http://127.0.0.1:8080"',
                                       'url = "http://127.0.0.1:8080"\n    catalogue_key = "folder.pem"')))
    with pytest.raises(ConfigError, match="`catalogue.max_age_h` must be greater than zero"):
        config.load(write(GOOD + "[catalogue]\nmax_age_h = 0\n"))
