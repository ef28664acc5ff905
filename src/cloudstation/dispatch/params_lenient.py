"""Lenient conversion of a decoded JSON value into a params model, as loose as the backend's documents are.

Owns the leniency rules (a number may come as a string, a string as a number), applied by walking the model's msgspec
type description:

- integers accept a number, a numeric string and ``""`` (= 0); an integral float (``1.0e6``) becomes an
  int; a fraction, a boolean or anything else is an error; values outside signed 64 bits are an error;
- strings accept a string, a number (``12`` and ``12.0`` -> ``"12"``) or a boolean (``"true"``/``"false"``);
- booleans accept ``true``/``false``, the strings ``"true"``/``"false"`` (any case) and ``""`` (= false);
- ``null`` means absent (the field keeps its default), unknown keys are ignored.

Errors are ``FieldError`` carrying the JSON path and what was expected, never the offending value.
"""

from __future__ import annotations

import math
import re
from typing import Any, TypeVar

import msgspec
from msgspec import inspect as mi

__all__ = ["FieldError", "convert", "lenient_int", "lenient_str"]

_S = TypeVar("_S", bound=msgspec.Struct)

# A map key is named in an error path only when it looks like a name (an env var, a build arg), so
# that an error never echoes free-form text from the document.
_NAME_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


class FieldError(Exception):
    """A value that does not fit its field.

    ``path`` is the JSON path (``networks[0].portNumber``; ``""`` for the document itself).
    """

    def __init__(self, path: str, expected: str) -> None:
        super().__init__(f"{path}: {expected}")
        self.path = path
        self.expected = expected


def lenient_int(value: object) -> int:
    """``value`` read as an integer by the lenient rules; raises ``ValueError`` (value-free) otherwise."""
    if isinstance(value, bool):
        raise ValueError("expected a number")
    if isinstance(value, int):
        result = value
    elif isinstance(value, float):
        result = _integral(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return 0
        try:
            result = int(text, 10)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise ValueError("expected a number") from None
            result = _integral(number)
    else:
        raise ValueError("expected a number")
    if not _INT64_MIN <= result <= _INT64_MAX:
        raise ValueError("expected a number within 64 bits")
    return result


def _integral(number: float) -> int:
    if not math.isfinite(number):
        raise ValueError("expected a number")
    if not number.is_integer():
        raise ValueError("expected a whole number")
    return int(number)


def lenient_str(value: object) -> str:
    """``value`` read as a string by the lenient rules; raises ``ValueError`` (value-free) otherwise."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("expected a string")
        return str(int(value)) if value.is_integer() else repr(value)
    raise ValueError("expected a string")


def _lenient_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "true":
            return True
        if text in ("false", ""):
            return False
    raise ValueError("expected a boolean")


def convert(data: object, model: type[_S]) -> _S:
    """Build ``model`` from the decoded JSON ``data`` leniently; raises ``FieldError`` on a mismatch."""
    info = mi.type_info(model)
    if not isinstance(info, mi.StructType):
        raise TypeError("model must be a msgspec Struct")
    result: _S = _struct(data, info, "")
    return result


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _struct(data: object, info: mi.StructType, path: str) -> Any:
    if not isinstance(data, dict):
        raise FieldError(path, "expected an object")
    kwargs: dict[str, Any] = {}
    for field in info.fields:
        if field.encode_name not in data:
            continue
        raw = data[field.encode_name]
        if raw is None:
            continue
        kwargs[field.name] = _value(raw, field.type, _join(path, field.encode_name))
    return info.cls(**kwargs)


def _key_path(path: str, key: object) -> str:
    if isinstance(key, str) and _NAME_KEY.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}.<key>"


def _value(raw: object, tp: mi.Type, path: str) -> Any:
    """Convert one non-null value ``raw`` at ``path`` to the type ``tp`` describes."""
    if isinstance(tp, mi.UnionType):
        inner = [t for t in tp.types if not isinstance(t, mi.NoneType)]
        if len(inner) != 1:
            raise TypeError("only optional unions are supported")
        return _value(raw, inner[0], path)
    if isinstance(tp, mi.StructType):
        return _struct(raw, tp, path)
    if isinstance(tp, mi.VarTupleType | mi.ListType):
        if not isinstance(raw, list):
            raise FieldError(path, "expected a list")
        items = [_value(item, tp.item_type, f"{path}[{i}]") for i, item in enumerate(raw) if item is not None]
        return tuple(items) if isinstance(tp, mi.VarTupleType) else items
    if isinstance(tp, mi.DictType):
        if not isinstance(raw, dict):
            raise FieldError(path, "expected an object")
        return {
            str(key): _value(item, tp.value_type, _key_path(path, key)) for key, item in raw.items() if item is not None
        }
    if isinstance(tp, mi.AnyType):
        return raw
    try:
        if isinstance(tp, mi.StrType):
            return lenient_str(raw)
        if isinstance(tp, mi.IntType):
            return lenient_int(raw)
        if isinstance(tp, mi.BoolType):
            return _lenient_bool(raw)
    except ValueError as exc:
        raise FieldError(path, str(exc)) from None
    raise TypeError(f"unsupported field type {type(tp).__name__}")
