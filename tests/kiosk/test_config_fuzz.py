"""Fuzzing the configuration file: whatever the file holds, the loader and `kiosk config check` end in a
valid configuration or in one ConfigError line, never a traceback and never a hang.

The documents are generated TOML: the valid minimal file with keys of it (and unknown ones) set to random
values (tables, arrays, strings with control, direction and other odd characters, numbers with nan and inf
among them, booleans, dates, deep nesting), random text, a valid file with bytes changed, and random bytes.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import math
import re
import tempfile
import traceback
import typing
import unicodedata
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk import cli, config
from kiosk.errors import ConfigError

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# A file that hangs the loader or the check fails the test here (a whole run takes a few seconds).
pytestmark = pytest.mark.timeout(120)

BASE: dict[str, Any] = {
    "device_id": "kiosk-0001",
    "central": {"url": "http://127.0.0.1:8080"},
    "card": {"trusted_issuers": ["issuer.pub.pem"]},
    "printer": {"host": "127.0.0.1"},
}
# Every key of the file, as (section, key); section "" is the top level.
_HINTS = typing.get_type_hints(config.KioskConfig)
KNOWN_KEYS = [("", name) for name in _HINTS] + [
    (name, f.name) for name, hint in _HINTS.items() if dataclasses.is_dataclass(hint) for f in dataclasses.fields(hint)]

ODD_CHARACTERS = "\x00\x01\x07\x08\t\n\r\x1b\x7f\x80\x85\x9b\u00a0\u061c\u200e\u200f\u202a\u202b\u202c\u202d" \
                 "\u202e\u2066\u2067\u2068\u2069\u2028\u2029\ufeff\uffff/\\.:\"'#[]{}=, "
ODD_STRINGS = ["", ".", "..", "../x", "a/b", "/", "http://", "https://", "http://example.org", "https://:0",
               "https://[::1", "nan", "inf", "true", "Asia", "Asia/Damascus", "ar", "en", "kiosk-0001", "fake",
               "x" * 5000, "د" * 50, "كشك\u202e1", "\u202e", "%s", "%(x)s", "{}", "\\x1b[2J"]


def strings() -> st.SearchStrategy[str]:
    return st.one_of(st.text(max_size=40),
                     st.text(alphabet=st.sampled_from(ODD_CHARACTERS + "abc-_019"), max_size=20),
                     st.sampled_from(ODD_STRINGS))


scalars = st.one_of(
    strings(),
    st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.sampled_from([0, -1, 1, 65535, 65536, 2 ** 63, -(2 ** 63), 10 ** 600]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e300, 5e-324]),
    st.booleans(),
    st.dates(min_value=datetime.date(1, 1, 1)),
)
keys = st.one_of(st.sampled_from([key for _, key in KNOWN_KEYS] + [section for section, _ in KNOWN_KEYS if section]),
                 st.text(min_size=1, max_size=12))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(keys, inner, max_size=4)), max_leaves=12)


def toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif unicodedata.category(ch) == "Cc":
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    return '"%s"' % "".join(out)


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_string(key)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if abs(value) < 10 ** 300 else hex(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else "inf" if value == math.inf else "-inf" if value == -math.inf \
            else repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, list):
        return "[%s]" % ", ".join(toml_value(v) for v in value)
    return "{%s}" % ", ".join("%s = %s" % (toml_key(k), toml_value(v)) for k, v in value.items())


def toml_document(document: dict[str, Any], *, sections: bool) -> str:
    """`document` as TOML: its tables as [sections] (or all inline), their entries one a line."""
    lines = []
    tables = {k: v for k, v in document.items() if sections and isinstance(v, dict)}
    for key, value in document.items():
        if key not in tables:
            lines.append("%s = %s" % (toml_key(key), toml_value(value)))
    for name, table in tables.items():
        lines.append("[%s]" % toml_key(name))
        lines.extend("%s = %s" % (toml_key(k), toml_value(v)) for k, v in table.items())
    return "\n".join(lines) + "\n"


@st.composite
def documents(draw) -> str:
    """The minimal valid file with a few of its keys (and unknown ones) set to random values."""
    document = {k: dict(v) if isinstance(v, dict) else v for k, v in BASE.items()}
    for _ in range(draw(st.integers(0, 4))):
        section, key = draw(st.one_of(st.sampled_from(KNOWN_KEYS), st.tuples(st.sampled_from(["", "central"]), keys)))
        value = draw(values)
        if section:
            table = document.setdefault(section, {})
            if isinstance(table, dict):
                table[key] = value
            else:
                document[section] = {key: value}
        else:
            document[key] = value
        if draw(st.booleans()) and key in document and not section:
            del document[key]       # a key left out
    return toml_document(document, sections=draw(st.booleans()))


@st.composite
def deep_documents(draw) -> str:
    depth = draw(st.integers(1, 3000))
    opener, closer = draw(st.sampled_from([("[", "]"), ("{a = ", "}"), ("[{a = ", "}]"), ("{a = [", "]}")]))
    inner = opener * depth + "1" + closer * draw(st.integers(0, depth))
    where = draw(st.sampled_from(["x = %s\n", "languages = %s\n", "[audio]\nprompts = %s\n", "[session]\n%s\n"]))
    return toml_document(BASE, sections=True) + where % inner


@st.composite
def mutated(draw) -> bytes:
    """A valid file with a few bytes changed, inserted or taken out."""
    data = bytearray(toml_document(BASE, sections=draw(st.booleans())).encode("utf-8"))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        change = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.one_of(st.binary(min_size=1, max_size=4),
                               st.text(alphabet=ODD_CHARACTERS, min_size=1, max_size=3).map(str.encode)))
        if change == "insert":
            data[at:at] = piece
        elif change == "delete":
            del data[at:at + len(piece)]
        else:
            data[at:at + len(piece)] = piece
    return bytes(data)


class Folder:
    """A folder with the trusted issuer key the valid file names; each example rewrites kiosk.toml in it."""

    def __init__(self) -> None:
        self._temporary = tempfile.TemporaryDirectory()
        self.path = Path(self._temporary.name)
        (self.path / "issuer.pub.pem").write_text("-----BEGIN PUBLIC KEY-----\n")

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._temporary.cleanup()


def assert_one_line_or_valid(path: Path) -> None:
    """The loader gives a configuration or one ConfigError line; `kiosk config check` says valid or prints that
    line (exit 2); neither raises anything else (a hang is the module's timeout)."""
    try:
        loaded: config.KioskConfig | None = config.load(path)
        message = None
    except ConfigError as exc:
        loaded, message = None, str(exc)
    except BaseException:    # noqa: B036 - a traceback is what this test looks for
        raise AssertionError("config.load raised:\n%s\nfile: %r" % (traceback.format_exc(), path.read_bytes()[:500]))
    if message is not None:
        assert message and len(message.splitlines()) == 1, repr(message)
    else:
        assert isinstance(loaded, config.KioskConfig)

    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            status = cli.main(["config", "check", "--config", str(path)])
    except BaseException:    # noqa: B036
        raise AssertionError("kiosk config check raised:\n%s\nfile: %r" % (traceback.format_exc(),
                                                                           path.read_bytes()[:500]))
    assert "Traceback" not in out.getvalue() + err.getvalue()
    if message is None:
        lines = out.getvalue().splitlines()
        assert (status, err.getvalue()) == (0, "") and lines[0].startswith("%s: valid (device " % path), lines
        assert lines[1:] in ([], ["not provisioned yet: no device key at %s (`kiosk provision --central URL --code "
                                  "CODE`)" % loaded.central.device_key_path]), lines
    else:
        assert (status, out.getvalue()) == (2, "")
        assert err.getvalue() == "kiosk: %s\n" % message and len(err.getvalue().splitlines()) == 1


def test_the_base_document_is_valid():
    with Folder() as folder:
        path = folder.path / "kiosk.toml"
        for sections in (True, False):
            path.write_text(toml_document(BASE, sections=sections), encoding="utf-8")
            assert config.load(path).device_id == "kiosk-0001"


@FUZZ
@given(text=documents())
def test_generated_documents(text):
    with Folder() as folder:
        path = folder.path / "kiosk.toml"
        path.write_text(text, encoding="utf-8")
        assert_one_line_or_valid(path)


@FUZZ
@given(text=deep_documents())
def test_deeply_nested_documents(text):
    with Folder() as folder:
        path = folder.path / "kiosk.toml"
        path.write_text(text, encoding="utf-8")
        assert_one_line_or_valid(path)


@FUZZ
@given(data=st.one_of(mutated(), st.binary(max_size=2000), st.text(max_size=500).map(str.encode)))
def test_random_and_damaged_bytes(data):
    with Folder() as folder:
        path = folder.path / "kiosk.toml"
        path.write_bytes(data)
        assert_one_line_or_valid(path)
