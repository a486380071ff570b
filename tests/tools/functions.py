"""Functions for `parley prompt --functions tests/tools/functions.py` in the CLI tests."""

from __future__ import annotations

import dataclasses
from os.path import join  # noqa: F401 (imported, not defined here: not a tool)
from typing import Literal


@dataclasses.dataclass
class Money:
    amount: float
    currency: Literal["EUR", "USD"] = "EUR"


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def double(money: Money) -> Money:
    """Double an amount of money."""
    return Money(money.amount * 2, money.currency)


def fail(message: str) -> str:
    """Always raises."""
    raise RuntimeError(message)


def _helper() -> None:
    """Private: not a tool."""
