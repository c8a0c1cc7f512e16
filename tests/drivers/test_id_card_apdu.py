"""Command builders, status words and the FCP of the card profile."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.id_card import apdu
from kiosk.id_card_data import MalformedCardData


def test_commands_as_the_profile_writes_them() -> None:
    assert apdu.select_aid() == bytes.fromhex("00A4040C09D76000000145494401")
    assert apdu.select_ef(0x0101, fcp=False) == bytes.fromhex("00A4020C020101")
    assert apdu.select_ef(0x0103, fcp=True) == bytes.fromhex("00A4020002010300")
    assert apdu.read_binary(0x0123, 256) == bytes.fromhex("00B0012300")
    assert apdu.read_binary(0, 0x10) == bytes.fromhex("00B0000010")
    assert apdu.verify_status() == bytes.fromhex("00200001")
    assert apdu.get_response(0x0D) == bytes.fromhex("00C000000D")
    challenge = bytes(range(32))
    assert apdu.internal_authenticate(challenge) == bytes.fromhex("0088000020") + challenge + b"\x00"
    assert apdu.with_le(apdu.read_binary(256), 4) == bytes.fromhex("00B0010004")


@pytest.mark.parametrize("command, le", [
    ("00200001", None), ("00B0000000", 256), ("00B0000010", 16),
    ("00A4020C020101", None), ("00A40200020101" "00", 256),
])
def test_expected_length(command: str, le: int | None) -> None:
    assert apdu.expected_length(bytes.fromhex(command)) == le


def test_builders_refuse_values_outside_short_apdus() -> None:
    for build in (lambda: apdu.read_binary(0x8000), lambda: apdu.read_binary(0, 257),
                  lambda: apdu.internal_authenticate(b"short"), lambda: apdu.verify(b"\x24\x12"),
                  lambda: apdu.with_le(apdu.verify_status(), 4)):
        with pytest.raises(ValueError):
            build()


def test_status_words() -> None:
    assert apdu.wrong_pin_tries(0x63C2) == 2 and apdu.wrong_pin_tries(0x63C0) == 0
    assert apdu.wrong_pin_tries(0x6983) is None and apdu.wrong_pin_tries(0x6300) is None
    assert apdu.describe(0x6A82) == "file or application not found"
    assert apdu.describe(0x63C1) == "wrong PIN, 1 tries left"
    assert apdu.describe(0x6F00) == "not in the profile"


def test_fcp_round_trip() -> None:
    assert apdu.fcp(0x1234, 0x0103) == bytes.fromhex("620B8002123482010183020103")
    assert apdu.parse_fcp(apdu.fcp(300, 0x0101)) == apdu.Fcp(size=300, fid=0x0101)


@pytest.mark.parametrize("fcp", [
    "",                                         # nothing
    "62",                                       # no length
    "6F0B8002123482010183020103",               # not a 62 template
    "620B8002123482010183020103FF",             # trailing byte
    "620782010183020103",                       # no size
    "620A8001128201018302 0103",                # 1-byte size
    "62078002123482010 1",                      # no FID
    "620F800212348002123482010183020103",       # size twice
    "6206800212348201",                         # truncated inside
])
def test_broken_fcp_is_refused(fcp: str) -> None:
    with pytest.raises(MalformedCardData):
        apdu.parse_fcp(bytes.fromhex(fcp.replace(" ", "")))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40))
def test_fuzz_fcp_parses_or_refuses(data: bytes) -> None:
    try:
        parsed = apdu.parse_fcp(data)
    except MalformedCardData:
        return
    assert 0 <= parsed.size <= 0xFFFF and 0 <= parsed.fid <= 0xFFFF
