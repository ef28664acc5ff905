"""The value types a config expression can produce, their HCL type names, and string conversion."""

from __future__ import annotations

import math
from typing import Literal, TypeAlias

Value: TypeAlias = str | int | float | bool | list["Value"] | dict[str, "Value"] | None
"""A resolved config value: what every attribute, variable and plugin config entry holds."""

VarType: TypeAlias = Literal["string", "number", "bool", "list", "map"]
VAR_TYPES: tuple[VarType, ...] = ("string", "number", "bool", "list", "map")


class EvalError(Exception):
    """An expression or value is invalid; the loader adds location and context (never leaves the package)."""


def type_name(value: Value) -> str:
    """The HCL type name of ``value`` (``null`` for ``None``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "map"


def format_number(value: int | float) -> str:
    """A number as HCL prints it in a template: integral floats without ``.0``."""
    if isinstance(value, float) and value.is_integer() and math.isfinite(value):
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def to_text(value: Value) -> str:
    """Convert a primitive to the string HCL interpolation would produce.

    Raises ``EvalError`` for null, lists and maps (they have no string form).
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format_number(value)
    raise EvalError(f"cannot convert a {type_name(value)} to a string")


def string_leaves(value: Value) -> list[str]:
    """Every string and number inside ``value``, as text (for the redaction set)."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, str | int | float):
        return [to_text(value)]
    items = value if isinstance(value, list) else list(value.values())
    return [leaf for item in items for leaf in string_leaves(item)]
