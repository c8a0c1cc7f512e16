"""nexo amounts (decimal numbers in major units) to and from `Money` (integer minor units), exactly.

nexo JSON carries `RequestedAmount`, `AuthorizedAmount`, `ReversedAmount` as
JSON numbers in the currency's major unit (Adyen's examples: 15.25 EUR).
The codec reads every JSON number as a `decimal.Decimal` (never a float),
and an amount converts only when it is a whole number of minor units of its
currency: 1500.00 SYP is 150000 minor units, 1500.005 SYP is refused.
"""

from __future__ import annotations

from decimal import Decimal

from drivers.nexo.errors import NexoProtocolError
from kiosk.money import Money

# Far above any fee; keeps a garbled 1E+400 from becoming a huge integer.
LARGEST_MINOR = 10 ** 15


def to_decimal(money: Money) -> Decimal:
    """`money` in major units, with as many decimals as its currency has: 150000 SYP -> 1500.00."""
    return Decimal(money.amount_minor).scaleb(-money.exponent)


def to_money(value: Decimal | int, currency: str, *, where: str = "amount") -> Money:
    """The amount `value` (major units) of `currency` as Money; NexoProtocolError when the currency
    is not one the kiosk handles, or the value is negative, not finite, or finer than a minor unit."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise NexoProtocolError("%s is not a number" % where)
    amount = Decimal(value)
    if not amount.is_finite():
        raise NexoProtocolError("%s is not a finite number" % where)
    if amount < 0:
        raise NexoProtocolError("%s is negative" % where)
    try:
        probe = Money(currency, 0)
    except (TypeError, ValueError):
        raise NexoProtocolError("%s is in a currency the kiosk does not handle" % where) from None
    minor = amount.scaleb(probe.exponent)
    if minor > LARGEST_MINOR:
        raise NexoProtocolError("%s is larger than any fee" % where)
    if minor != minor.to_integral_value():
        raise NexoProtocolError("%s has more decimals than %s has minor units" % (where, currency))
    return Money(currency, int(minor))
