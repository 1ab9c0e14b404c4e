"""Typed custom fields: how a value of a lead's ``fields`` reads as the type a pack declares in ``[fields]``.

The crm extractor converts with it when scoring; the CLI uses it to count the values that do not fit
their declared type, so a value that gives no signal is never dropped in silence.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_TRUE, _FALSE = frozenset({"true", "yes", "1"}), frozenset({"false", "no", "0"})


def as_declared(value: Any, kind: str) -> Any:
    """A custom field's value as its declared type, or None when it cannot be read as one.

    number: ints and floats as they are, text of a decimal number (``"40"`` -> 40, ``"2.5"`` -> 2.5);
    int: ints, floats with no fraction, text of a whole number; bool: true/false, and the text
    true/false/yes/no/1/0 (any case); str: text, and a whole number as its digits. Booleans are
    never numbers and numbers never booleans; NaN and infinities are no number.
    """
    vtype = type(value)
    if kind == "str":
        if vtype is str:
            return value
        return str(value) if vtype is int else None
    if kind == "bool":
        if vtype is bool:
            return value
        if vtype is str:
            text = value.strip().lower()
            return True if text in _TRUE else False if text in _FALSE else None
        return None
    if vtype is bool:
        return None
    if kind == "int":
        if vtype is int:
            return value
        if vtype is float:
            return int(value) if value.is_integer() else None
        if vtype is str and _INTEGER.fullmatch(value.strip()) and len(value) < 100:
            return int(value)
        return None
    # number
    if vtype is int:
        return value
    if vtype is float:
        return value if math.isfinite(value) else None
    if vtype is str:
        text = value.strip()
        if len(text) < 100 and _INTEGER.fullmatch(text):
            return int(text)
        if _NUMBER.fullmatch(text):
            number = float(text)
            return number if math.isfinite(number) else None
    return None


def misfit_fields(fields: Mapping[str, Any], declared: Mapping[str, tuple[str, Any]]) -> dict[str, str]:
    """The custom fields whose value cannot be read as their declared type, with that type."""
    return {name: declared[name][0] for name, value in fields.items()
            if value is not None and name in declared and as_declared(value, declared[name][0]) is None}


__all__ = ["as_declared", "misfit_fields"]
