"""Small text helpers shared by brains: spotting order numbers, phrasing money."""

from __future__ import annotations

import re

ORDER_NUMBER_RE = re.compile(r"(?<![\d$€£.,])\d{4,6}(?!\d|[.,]\d)")
"""An order number is a standalone run of 4 to 6 digits (not part of an amount like $1250)."""

_CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def order_numbers(text: str) -> list[str]:
    """Order numbers in ``text``, first occurrence first, without repeats."""
    return list(dict.fromkeys(ORDER_NUMBER_RE.findall(text)))


def format_money(amount: float, currency: str | None) -> str:
    """``$180.00`` for known currencies, ``180.00 CHF`` otherwise."""
    code = (currency or "USD").upper()
    symbol = _CURRENCY_SYMBOLS.get(code)
    return f"{symbol}{amount:,.2f}" if symbol else f"{amount:,.2f} {code}"


def first_sentence(text: str, limit: int = 120) -> str:
    """The first sentence of ``text``, cut to ``limit`` characters."""
    sentence = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0].strip()
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


def contains_phrase(text: str, phrases: tuple[str, ...]) -> str | None:
    """The first of ``phrases`` found in ``text`` as whole words (case-insensitive), or None."""
    normalized = text.lower().replace("’", "'")
    for phrase in phrases:
        if re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", normalized):
            return phrase
    return None
