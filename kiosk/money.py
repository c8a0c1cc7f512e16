"""Money as integer minor units with its currency; never a float."""

from __future__ import annotations

from dataclasses import dataclass

# ISO 4217 minor-unit exponents for the currencies the kiosk handles.
_EXPONENTS = {"SYP": 2, "USD": 2, "EUR": 2}


@dataclass(frozen=True, order=True)
class Money:
    currency: str
    amount_minor: int

    def __post_init__(self) -> None:
        if type(self.amount_minor) is not int:
            raise TypeError("amount_minor must be an int (minor units), not %s" % type(self.amount_minor).__name__)
        if self.currency not in _EXPONENTS:
            raise ValueError("unknown currency %r" % (self.currency,))

    @classmethod
    def of(cls, amount_minor: int, currency: str) -> "Money":
        return cls(currency=currency, amount_minor=amount_minor)

    @property
    def exponent(self) -> int:
        return _EXPONENTS[self.currency]

    def __add__(self, other: "Money") -> "Money":
        if not isinstance(other, Money) or other.currency != self.currency:
            raise ValueError("cannot add %r to %r" % (other, self))
        return Money(self.currency, self.amount_minor + other.amount_minor)

    def major_text(self) -> str:
        """The amount in major units with Western digits: 150000 SYP -> '1,500'.

        Minor units are shown only when they are not zero.
        """
        sign = "-" if self.amount_minor < 0 else ""
        major, minor = divmod(abs(self.amount_minor), 10 ** self.exponent)
        text = "{:,}".format(major)
        if minor:
            text += ".%0*d" % (self.exponent, minor)
        return sign + text

    def to_json(self) -> dict:
        return {"amount_minor": self.amount_minor, "currency": self.currency}

    @classmethod
    def from_json(cls, data: dict) -> "Money":
        return cls(currency=str(data["currency"]), amount_minor=data["amount_minor"])
