"""Argument types of the ``lowdisp`` sub-commands, defined once.

Each converter takes the option's text and returns the value or raises
:class:`argparse.ArgumentTypeError`, which argparse turns into the one-line
``lowdisp: error: ... argument --name: must be ...`` of the command-line
contract (exit status 2).

Examples
--------
>>> from lowdisp._cliargs import int_at_least, number_in
>>> int_at_least(1)("3")
3
>>> number_in(0, 1)("0.5")
0.5
>>> number_in(0, None)("-1")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: must be a finite number > 0; got '-1'
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["int_at_least", "number_in", "numbers_in"]


def int_at_least(low: int) -> Callable[[str], int]:
    """An integer >= ``low``."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}; got {text!r}")
        return value

    convert.__name__ = f"integer >= {low}"
    return convert


def _describe(low: float, high: float | None) -> str:
    return f"a finite number > {low:g}" if high is None else f"a number in ({low:g}, {high:g})"


def _check(text: str, value: float, low: float, high: float | None) -> float:
    inside = math.isfinite(value) and value > low and (high is None or value < high)
    if not inside:
        raise argparse.ArgumentTypeError(f"must be {_describe(low, high)}; got {text!r}")
    return value


def number_in(low: float, high: float | None) -> Callable[[str], float]:
    """A finite float in the open interval ``(low, high)`` (``high=None``: no upper bound)."""

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be {_describe(low, high)}; got {text!r}"
            ) from None
        return _check(text, value, low, high)

    convert.__name__ = _describe(low, high)
    return convert


def numbers_in(low: float, high: float | None) -> Callable[[str], list[float]]:
    """A comma- or space-separated list of floats, each in ``(low, high)``."""

    def convert(text: str) -> list[float]:
        try:
            values = [float(t) for t in text.replace(",", " ").split()]
        except ValueError:
            values = []
        if not values:
            raise argparse.ArgumentTypeError(
                f"must be numbers separated by commas, each {_describe(low, high)}; got {text!r}"
            )
        return [_check(text, v, low, high) for v in values]

    convert.__name__ = f"numbers, each {_describe(low, high)}"
    return convert
