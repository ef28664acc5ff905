"""The built-in functions of ``cloudstation.hcl``: ``env``, ``lower``, ``upper`` and ``concat``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from cloudstation.config.values import EvalError, Value, type_name

Function = Callable[[Sequence[Value], Mapping[str, str]], Value]


def _one_string(name: str, args: Sequence[Value]) -> str:
    if len(args) != 1:
        raise EvalError(f"{name}() takes 1 argument, got {len(args)}")
    arg = args[0]
    if not isinstance(arg, str):
        raise EvalError(f"{name}() expects a string, got {type_name(arg)}")
    return arg


def _env(args: Sequence[Value], env: Mapping[str, str]) -> Value:
    return env.get(_one_string("env", args), "")


def _lower(args: Sequence[Value], env: Mapping[str, str]) -> Value:
    return _one_string("lower", args).lower()


def _upper(args: Sequence[Value], env: Mapping[str, str]) -> Value:
    return _one_string("upper", args).upper()


def _concat(args: Sequence[Value], env: Mapping[str, str]) -> Value:
    if not args:
        raise EvalError("concat() takes at least 1 argument, got 0")
    if all(isinstance(arg, str) for arg in args):
        return "".join(arg for arg in args if isinstance(arg, str))
    if all(isinstance(arg, list) for arg in args):
        return [item for arg in args if isinstance(arg, list) for item in arg]
    kinds = ", ".join(type_name(arg) for arg in args)
    raise EvalError(f"concat() expects all strings or all lists, got ({kinds})")


FUNCTIONS: Mapping[str, Function] = {
    "env": _env,
    "lower": _lower,
    "upper": _upper,
    "concat": _concat,
}

TRANSFORMING = frozenset({"lower", "upper"})
"""Functions whose result no longer contains their argument verbatim (taint must follow the result)."""
