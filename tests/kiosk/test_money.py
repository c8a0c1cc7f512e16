import pytest

from kiosk.money import Money


def test_money_refuses_floats():
    with pytest.raises(TypeError):
        Money.of(15.0, "SYP")


def test_money_of_different_currencies_does_not_add():
    with pytest.raises(ValueError):
        Money.of(1, "SYP") + Money.of(1, "USD")


@pytest.mark.parametrize("minor, text", [(150000, "1,500"), (150050, "1,500.50"), (0, "0"), (-2500, "-25")])
def test_major_text(minor, text):
    assert Money.of(minor, "SYP").major_text() == text


def test_round_trip_through_json():
    fee = Money.of(175000, "SYP")
    assert Money.from_json(fee.to_json()) == fee
