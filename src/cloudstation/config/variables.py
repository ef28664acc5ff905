"""Resolution of ``variable "NAME" {...}`` blocks: type checks, environment lookup, defaults.

A variable's value is the first environment variable listed in ``env`` that is *set* (present in the
environment, even if empty), converted to the variable's type; otherwise ``default``; otherwise an error.
Without ``type``, the type is that of ``default`` (``string`` when there is no default).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from cloudstation.config.expressions import Evaluator
from cloudstation.config.locations import Location, config_error
from cloudstation.config.model import Variable
from cloudstation.config.tree import RawAttribute
from cloudstation.config.values import VAR_TYPES, EvalError, Value, VarType, type_name
from cloudstation.errors import ConfigError

VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INT = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_ATTRIBUTES = ("type", "default", "env", "sensitive", "description")


def resolve_variable(
    name: str,
    attributes: Mapping[str, RawAttribute],
    location: Location,
    env: Mapping[str, str],
) -> Variable:
    """Build the :class:`Variable` for one block; ``ConfigError`` on any problem (never showing values)."""
    context = f'variable "{name}"'
    if not VARIABLE_NAME.fullmatch(name):
        raise config_error(
            location,
            f'invalid variable name "{name}" (allowed: a letter or "_", then letters, digits, "_", "-")',
        )
    for attr in attributes.values():
        if attr.name not in _ATTRIBUTES:
            raise config_error(
                attr.location, f'unknown attribute "{attr.name}" (expected {", ".join(_ATTRIBUTES)})', context
            )
    # Variables cannot reference variables (no ordering problems, no cycles), but may call env() etc.
    evaluator = Evaluator(env, variables=None)
    values: dict[str, Value] = {}
    for attr in attributes.values():
        try:
            values[attr.name] = evaluator.evaluate(attr.raw)
        except EvalError as exc:
            raise config_error(attr.location, str(exc), context, f'attribute "{attr.name}"') from None

    def where(attr: str) -> Location:
        return attributes[attr].location if attr in attributes else location

    def attr_error(attr: str, message: str) -> ConfigError:
        return config_error(where(attr), message, context, f'attribute "{attr}"')

    description = values.get("description", "")
    if not isinstance(description, str):
        raise attr_error("description", f"expected string, got {type_name(description)}")
    sensitive = values.get("sensitive", False)
    if not isinstance(sensitive, bool):
        raise attr_error("sensitive", f"expected bool, got {type_name(sensitive)}")
    env_names = values.get("env", [])
    if not isinstance(env_names, list) or not all(isinstance(item, str) and item for item in env_names):
        raise attr_error("env", "expected a list of environment variable names")
    names = tuple(item for item in env_names if isinstance(item, str))
    default = values.get("default")

    declared = values.get("type")
    var_type: VarType
    if declared is None:
        inferred = type_name(default) if default is not None else "string"
        var_type = next(kind for kind in VAR_TYPES if kind == inferred)
    elif isinstance(declared, str) and declared in VAR_TYPES:
        var_type = next(kind for kind in VAR_TYPES if kind == declared)
    else:
        shown = f'"{declared}"' if isinstance(declared, str) else f"a {type_name(declared)}"
        raise attr_error("type", f"unknown type {shown} (expected string, number, bool, list or map)")

    if default is not None and type_name(default) != var_type:
        raise attr_error("default", f"expected {var_type}, got {type_name(default)}")

    for env_name in names:
        if env_name in env:
            try:
                value = _convert(env[env_name], var_type)
            except EvalError:
                raise config_error(
                    where("env"), f"environment variable {env_name} is not a valid {var_type}", context
                ) from None
            return Variable(name, var_type, value, f"env:{env_name}", sensitive, description, names, location)
    if default is not None:
        return Variable(name, var_type, default, "default", sensitive, description, names, location)
    if names:
        problem = f"no value: none of {', '.join(names)} is set and there is no default"
    else:
        problem = "no value: no default and no env"
    raise config_error(location, problem, context)


def _convert(text: str, var_type: VarType) -> Value:
    """Convert an environment variable's text to ``var_type`` (list/map: JSON)."""
    if var_type == "string":
        return text
    if var_type == "number":
        stripped = text.strip()
        if _INT.fullmatch(stripped):
            return int(stripped)
        if _FLOAT.fullmatch(stripped):
            return float(stripped)
        raise EvalError("not a number")
    if var_type == "bool":
        if text.strip() in ("true", "false"):
            return text.strip() == "true"
        raise EvalError("not a bool")
    try:
        decoded: Value = json.loads(text)
    except ValueError:
        raise EvalError("not JSON") from None
    if type_name(decoded) != var_type:
        raise EvalError(f"not a {var_type}")
    return decoded
