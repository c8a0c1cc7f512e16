"""The technician PIN: its hash, `kiosk technician hash-pin`, and `[technician]` in kiosk.toml."""

from __future__ import annotations

import io
import re

import pytest

from kiosk import cli, config, i18n
from kiosk.ports.cabinet import Light
from kiosk.ports.card_reader import ReaderStatus
from kiosk.ports.payment_terminal import TerminalState
from kiosk.ports.receipt_printer import PrinterStatus
from kiosk.technician import check_pin, hash_pin, is_valid_pin, parse_pin_hash
from tests.kiosk.test_config_validation import GOOD, refused, with_value, write  # noqa: F401 (a fixture)

FAST = 14          # the cheapest scrypt a configuration may hold: quick tests


@pytest.mark.parametrize("pin, valid", [("123456", True), ("123456789012", True), ("12345", False),
                                        ("1234567890123", False), ("12345a", False), ("١٢٣٤٥٦", False),
                                        ("123 456", False), ("", False)])
def test_a_technician_pin_is_six_to_twelve_digits(pin, valid):
    assert is_valid_pin(pin) is valid


def test_the_hash_is_salted_matches_only_its_pin_and_never_holds_it():
    first, second = hash_pin("40721953", log2_n=FAST), hash_pin("40721953", log2_n=FAST)
    assert first != second                                  # a fresh salt each time
    assert "40721953" not in first and first.startswith("scrypt$14$8$1$")
    assert check_pin("40721953", first) and check_pin("40721953", second)
    assert not check_pin("40721954", first) and not check_pin("4072195", first)
    assert repr(parse_pin_hash(first)) == "PinHash(scrypt)"


def test_a_pbkdf2_hash_is_taken_too():
    import base64
    import hashlib
    salt = b"sixteen byte slt"
    digest = hashlib.pbkdf2_hmac("sha256", b"987654", salt, 200_000)
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    stored = "pbkdf2-sha256$200000$%s$%s" % (b64(salt), b64(digest))
    assert check_pin("987654", stored) and not check_pin("987655", stored)


@pytest.mark.parametrize("stored", ["", "123456", "scrypt$15$8$1$abc", "scrypt$30$8$1$c2FsdHNhbHQ$" + "A" * 43,
                                    "md5$abc$def", "pbkdf2-sha256$10$c2FsdHNhbHQ$" + "A" * 43,
                                    "scrypt$15$8$1$!!!$" + "A" * 43])
def test_an_unreadable_hash_opens_to_no_pin(stored):
    assert not check_pin("123456", stored)


def test_hash_pin_reads_the_pin_on_stdin_and_prints_only_its_hash(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("40721953\n"))
    assert cli.main(["technician", "hash-pin"]) == 0
    out, err = capsys.readouterr()
    (line,) = out.splitlines()
    assert re.fullmatch(r"scrypt\$15\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+", line)
    assert check_pin("40721953", line) and "40721953" not in out + err


@pytest.mark.parametrize("typed", ["12345\n", "12345678901234\n", "12a456\n", "\n"])
def test_hash_pin_refuses_a_pin_that_is_not_six_to_twelve_digits(monkeypatch, capsys, typed):
    monkeypatch.setattr("sys.stdin", io.StringIO(typed))
    assert cli.main(["technician", "hash-pin"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "6 to 12 digits" in err and (typed.strip() == "" or typed.strip() not in err)


def test_the_configured_hash_and_lockout_are_read(write):
    stored = hash_pin("40721953", log2_n=FAST)
    text = GOOD + '[technician]\npin_hash = "%s"\nmax_tries = 3\nlockout_s = 600\n' % stored
    loaded = config.load(write(text)).technician
    assert (loaded.pin_hash, loaded.max_tries, loaded.lockout_s) == (stored, 3, 600.0)
    defaults = config.load(write(GOOD)).technician
    assert (defaults.pin_hash, defaults.max_tries, defaults.lockout_s) == ("", 5, 300.0)


@pytest.mark.parametrize("key, value, problem", [
    ("technician.pin_hash", '"246810"', "must be the hash `kiosk technician hash-pin` prints, never the PIN itself"),
    ("technician.pin_hash", '"sha1$abc"', ": not a hash made by `kiosk technician hash-pin`"),
    ("technician.pin_hash", '"scrypt$25$8$1$c2FsdHNhbHQ$abcdefghijklmnopqrstuv"', ": scrypt parameters out of range"),
    ("technician.max_tries", "0", "must be between 1 and 20"),
    ("technician.max_tries", "1.5", "must be a whole number"),
    ("technician.lockout_s", "0", "must be greater than zero"),
    ("technician.lockout_s", "1e300", "must be greater than zero and at most a year"),
    ("technician.pin", '"246810"', None),
])
def test_a_bad_technician_section_is_one_line_naming_the_key(write, key, value, problem):
    message = refused(write(with_value(key, value)))
    if problem is None:
        assert message.startswith("kiosk.toml: unknown key `technician.pin`")
    else:
        assert message.startswith("kiosk.toml: `%s`" % key) and problem in message, message
    assert "246810" not in message


def test_every_status_and_action_has_its_words_in_both_languages():
    from kiosk.technician import TechnicianAction
    ids = i18n.message_ids("ar")
    wanted = {"technician.reader." + s.value.replace(" ", "_") for s in ReaderStatus} \
        | {"technician.terminal." + s.value for s in TerminalState} \
        | {"technician.printer." + s.value.replace(" ", "_") for s in PrinterStatus} \
        | {"technician.light." + s.value.replace(" ", "_") for s in Light} \
        | {"technician.action." + a.value for a in TechnicianAction if a is not TechnicianAction.REFRESH} \
        | {"technician.outcome.%s.%s" % (a, o) for a in ("test_print", "light_walk")
           for o in ("under_way", "ok", "failed")}
    assert wanted - ids == set()
