"""The ISO 9564 format-2 PIN block."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.id_card import apdu
from drivers.id_card.errors import PinFormatError
from drivers.id_card.pin import pin_block, pin_from_block


@pytest.mark.parametrize("pin, block", [
    ("1234", "241234FFFFFFFFFF"),
    ("0000", "240000FFFFFFFFFF"),
    ("12345", "2512345FFFFFFFFF"),
    ("98765432", "2898765432FFFFFF"),
])
def test_block_layout(pin: str, block: str) -> None:
    assert pin_block(pin) == bytes.fromhex(block)


def test_block_is_a_bytearray_the_caller_can_wipe() -> None:
    block = pin_block("1234")
    assert isinstance(block, bytearray)
    block[:] = bytes(len(block))
    assert block == bytes(8)


def test_verify_command_carries_the_block() -> None:
    assert apdu.verify(pin_block("1234")) == bytes.fromhex("0020000108241234FFFFFFFFFF")


@pytest.mark.parametrize("pin", [
    "123", "123456789", "", "12a4", "12 34", " 1234", "1234\n", "١٢٣٤", "۱۲۳۴", "１２３４", "12.4",
    "-123", "+1234",
])
def test_malformed_pin_is_refused_without_echo(pin: str) -> None:
    with pytest.raises(PinFormatError) as caught:
        pin_block(pin)
    if pin.strip():
        assert pin.strip() not in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("pin", [None, 1234, b"1234", ["1", "2", "3", "4"]])
def test_non_strings_are_refused(pin: object) -> None:
    with pytest.raises(PinFormatError):
        pin_block(pin)  # type: ignore[arg-type]


@given(st.text(alphabet="0123456789", min_size=4, max_size=8))
def test_block_round_trip(pin: str) -> None:
    assert pin_from_block(pin_block(pin)) == pin


@given(st.text(max_size=12))
def test_any_text_gives_a_block_or_pin_format_error(text: str) -> None:
    try:
        block = pin_block(text)
    except PinFormatError as error:
        assert str(error) == "a PIN is 4 to 8 ASCII digits"     # never the input
    else:
        assert len(block) == 8 and pin_from_block(block) == text


@pytest.mark.parametrize("block", [
    "141234FFFFFFFFFF",   # format 1
    "231234FFFFFFFFFF",   # 3 digits
    "291234FFFFFFFFFF",   # 9 digits
    "24123AFFFFFFFFFF",   # not a digit
    "241234FFFFFFFF00",   # bad padding
    "241234FFFFFFFF",     # 7 bytes
])
def test_malformed_blocks_are_recognised(block: str) -> None:
    assert pin_from_block(bytes.fromhex(block)) is None
