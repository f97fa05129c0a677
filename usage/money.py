"""Money in the site's one currency (CHAT_CURRENCY): what a call costs, and how an amount reads."""

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

from usage.models import COST_PLACES, NANOS

ZERO = Decimal(0)
_QUANTUM = Decimal(1).scaleb(-COST_PLACES)
_MILLION = Decimal(1_000_000)


def cost_of(
    *, prompt_tokens: int, completion_tokens: int, input_price: Decimal | None, output_price: Decimal | None
) -> Decimal:
    """The cost of a call at prices per million tokens (none: 0), rounded once to COST_PLACES."""
    amount = (prompt_tokens * (input_price or ZERO) + completion_tokens * (output_price or ZERO)) / _MILLION
    return amount.quantize(_QUANTUM, rounding=ROUND_HALF_UP)


def to_nanos(amount: Decimal | int) -> int:
    return int((Decimal(amount) * NANOS).to_integral_value(rounding=ROUND_HALF_UP))


def from_nanos(nanos: int) -> Decimal:
    return (Decimal(nanos) / NANOS).quantize(_QUANTUM)


def format_money(amount: Decimal | None) -> str:
    """ "12.50 EUR", and small amounts to four places ("0.0031 EUR") so a few cents still read."""
    amount = amount or ZERO
    places = 2 if amount == 0 or abs(amount) >= 1 else 4
    return f"{amount:,.{places}f} {settings.CHAT_CURRENCY}"
