"""argparse ``type=`` functions for numeric flags.

A value they refuse is argparse's own one-line error, before any work starts:
``neuro-erc plot raster: error: argument --max-neurons: expected an integer ≥ 1, got '0'``
(exit status 2). Build a new one with :func:`number_type`.
"""
from __future__ import annotations

import argparse
import math
from typing import Callable, TypeVar

N = TypeVar("N", int, float)


def number_type(parse: Callable[[str], N], ok: Callable[[N], bool], expected: str) -> Callable[[str], N]:
    """A ``type=`` function: ``parse`` the flag's text and accept it when ``ok``; else say ``expected``."""

    def convert(text: str) -> N:
        try:
            value = parse(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return convert


positive_int = number_type(int, lambda v: v >= 1, "an integer ≥ 1")
non_negative_int = number_type(int, lambda v: v >= 0, "an integer ≥ 0")
positive_float = number_type(float, lambda v: math.isfinite(v) and v > 0, "a finite number > 0")
non_negative_float = number_type(float, lambda v: math.isfinite(v) and v >= 0, "a finite number ≥ 0")
fraction = number_type(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")
