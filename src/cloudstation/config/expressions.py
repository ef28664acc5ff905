"""A small, safe evaluator for the expression subset of ``cloudstation.hcl``.

python-hcl2 hands every attribute value over in its serialized form: Python scalars for literals, lists and
dicts for collections, ``'"..."'`` (source text, escapes intact) for string templates and ``'${...}'`` (source
text) for any other expression. This module re-reads those texts with a recursive-descent parser and
evaluates them directly. It supports exactly:

- literals: strings (escapes ``\\n \\r \\t \\" \\\\ \\uNNNN \\UNNNNNNNN``; ``$${`` and ``%%{`` for literal
  ``${`` and ``%{``), numbers, ``true``, ``false``, ``null``, lists ``[..]`` and objects ``{k = v}``;
- ``var.<name>`` references and ``"${...}"`` interpolation inside strings;
- calls of the functions in :mod:`cloudstation.config.functions`.

Anything else (operators, conditionals, ``for``, directives) is an error. A ``$`` not followed by ``{`` is a
plain character: nothing is ever shell-expanded. Error messages never quote evaluated values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from cloudstation.config.functions import FUNCTIONS, TRANSFORMING
from cloudstation.config.values import EvalError, Value, string_leaves, to_text, type_name

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
_WHITESPACE = " \t\r\n"


class Evaluator:
    """Evaluates serialized python-hcl2 values against variables and the process environment.

    ``variables=None`` forbids ``var.*`` (used for variable blocks themselves). After each
    :meth:`evaluate`, :attr:`last_read_sensitive` tells whether a sensitive variable was used;
    :attr:`derived_sensitive` collects strings computed from sensitive values by transforming functions.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        variables: Mapping[str, Value] | None = None,
        sensitive_names: frozenset[str] = frozenset(),
    ) -> None:
        self.env = env
        self.variables = variables
        self.sensitive_names = sensitive_names
        self.sensitive_reads = 0
        self.last_read_sensitive = False
        self.derived_sensitive: set[str] = set()

    def evaluate(self, raw: object) -> Value:
        """Evaluate one serialized value (scalar, list, dict or expression text)."""
        before = self.sensitive_reads
        value = self._evaluate(raw)
        self.last_read_sensitive = self.sensitive_reads > before
        return value

    def _evaluate(self, raw: object) -> Value:
        if raw is None or isinstance(raw, bool | int | float):
            return raw
        if isinstance(raw, list):
            return [self._evaluate(item) for item in raw]
        if isinstance(raw, dict):
            return {self._key(key): self._evaluate(item) for key, item in raw.items()}
        if isinstance(raw, str):
            if raw.startswith('"'):
                return _Parser(raw, self).whole(template=True)
            if raw.startswith("${") and raw.endswith("}"):
                return _Parser(raw[2:-1], self).whole(template=False)
            return _Parser(raw, self).whole(template=False)  # a bare identifier, e.g. `use = railpack`
        raise EvalError("unsupported expression")

    def _key(self, raw: object) -> str:
        if isinstance(raw, str) and not raw.startswith(('"', "${")):
            return raw
        key = self._evaluate(raw)
        if not isinstance(key, str):
            raise EvalError(f"object key must be a string, got {type_name(key)}")
        return key

    def lookup(self, name: str) -> Value:
        """The value of ``var.<name>``."""
        if self.variables is None:
            raise EvalError(f'variables cannot reference other variables ("var.{name}")')
        if name not in self.variables:
            raise EvalError(f'unknown variable "var.{name}"')
        if name in self.sensitive_names:
            self.sensitive_reads += 1
        return self.variables[name]

    def call(self, name: str, args: list[Value], tainted: bool) -> Value:
        """Apply built-in function ``name``; ``tainted`` says the arguments used a sensitive value."""
        result = FUNCTIONS[name](args, self.env)
        if tainted and name in TRANSFORMING:
            self.derived_sensitive.update(leaf for leaf in string_leaves(result) if leaf)
        return result


class _Parser:
    """Recursive-descent reader of one expression text; evaluates while it parses."""

    def __init__(self, text: str, evaluator: Evaluator) -> None:
        self.text = text
        self.pos = 0
        self.ev = evaluator

    # -- helpers -------------------------------------------------------------------------------------

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def skip_ws(self) -> None:
        while self.peek() and self.peek() in _WHITESPACE:
            self.pos += 1

    def expect(self, char: str) -> None:
        self.skip_ws()
        if self.peek() != char:
            raise self.unexpected()
        self.pos += 1

    def unexpected(self) -> EvalError:
        char = self.peek()
        if not char:
            return EvalError("incomplete expression")
        if char.isalnum() or char == "_":
            return EvalError("unsupported expression")
        return EvalError(f'unsupported syntax "{char}" in expression')

    def whole(self, *, template: bool) -> Value:
        value = self.template() if template else self.expression()
        self.skip_ws()
        if self.pos != len(self.text):
            raise self.unexpected()
        return value

    # -- grammar -------------------------------------------------------------------------------------

    def expression(self) -> Value:
        self.skip_ws()
        char = self.peek()
        if char == '"':
            return self.template()
        if char == "[":
            return self.sequence()
        if char == "{":
            return self.mapping()
        if char == "(":
            self.pos += 1
            value = self.expression()
            self.expect(")")
            return value
        if char == "-" or char.isdigit():
            return self.number()
        match = _IDENT.match(self.text, self.pos)
        if match is None:
            raise self.unexpected()
        name = match.group()
        self.pos = match.end()
        if name in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[name]
        self.skip_ws()
        if self.peek() == "(":
            return self.call(name)
        if name == "var" and self.peek() == ".":
            self.pos += 1
            attr = _IDENT.match(self.text, self.pos)
            if attr is None:
                raise self.unexpected()
            self.pos = attr.end()
            return self.ev.lookup(attr.group())
        raise EvalError(f'unknown reference "{name}" (only var.<name> is supported)')

    def number(self) -> Value:
        match = _NUMBER.match(self.text, self.pos)
        if match is None:
            raise self.unexpected()
        self.pos = match.end()
        text = match.group()
        if match.group(1) is None and match.group(2) is None:
            return int(text)
        return float(text)

    def sequence(self) -> Value:
        self.pos += 1  # [
        items: list[Value] = []
        while True:
            self.skip_ws()
            if self.peek() == "]":
                self.pos += 1
                return items
            items.append(self.expression())
            self.skip_ws()
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != "]":
                raise self.unexpected()

    def mapping(self) -> Value:
        self.pos += 1  # {
        result: dict[str, Value] = {}
        while True:
            self.skip_ws()
            if self.peek() == "}":
                self.pos += 1
                return result
            key = self.object_key()
            self.skip_ws()
            if self.peek() not in ("=", ":"):
                raise self.unexpected()
            self.pos += 1
            result[key] = self.expression()
            self.skip_ws()
            if self.peek() == ",":
                self.pos += 1

    def object_key(self) -> str:
        match = _IDENT.match(self.text, self.pos)
        if match is not None:
            self.pos = match.end()
            return match.group()
        if self.peek() in ('"', "("):
            key = self.expression()
            if isinstance(key, str):
                return key
            raise EvalError(f"object key must be a string, got {type_name(key)}")
        raise self.unexpected()

    def call(self, name: str) -> Value:
        if name not in FUNCTIONS:
            raise EvalError(f'unknown function "{name}" (available: {", ".join(sorted(FUNCTIONS))})')
        self.pos += 1  # (
        before = self.ev.sensitive_reads
        args: list[Value] = []
        while True:
            self.skip_ws()
            if self.peek() == ")":
                self.pos += 1
                break
            args.append(self.expression())
            self.skip_ws()
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != ")":
                raise self.unexpected()
        return self.ev.call(name, args, tainted=self.ev.sensitive_reads > before)

    def template(self) -> Value:
        self.pos += 1  # opening quote
        parts: list[tuple[bool, Value]] = []  # (interpolated, value)
        literal: list[str] = []

        def flush() -> None:
            if literal:
                parts.append((False, "".join(literal)))
                literal.clear()

        while True:
            char = self.peek()
            if not char:
                raise EvalError("unterminated string")
            if char == '"':
                self.pos += 1
                break
            if char == "\\":
                literal.append(self.escape())
            elif self.text.startswith("$${", self.pos):
                literal.append("${")
                self.pos += 3
            elif self.text.startswith("${", self.pos):
                self.pos += 2
                if self.peek() == "~":
                    raise EvalError('unsupported syntax "~" in interpolation')
                value = self.expression()
                self.expect("}")
                flush()
                parts.append((True, value))
            elif self.text.startswith("%%{", self.pos):
                literal.append("%{")
                self.pos += 3
            elif self.text.startswith("%{", self.pos):
                raise EvalError("template directives (%{...}) are not supported; write %%{ for a literal %{")
            else:
                literal.append(char)
                self.pos += 1
        flush()
        if len(parts) == 1 and parts[0][0]:
            return parts[0][1]
        return "".join(to_text(value) if interpolated else str(value) for interpolated, value in parts)

    def escape(self) -> str:
        marker = self.peek(1)
        if marker in _SIMPLE_ESCAPES:
            self.pos += 2
            return _SIMPLE_ESCAPES[marker]
        if marker in ("u", "U"):
            width = 4 if marker == "u" else 8
            digits = self.text[self.pos + 2 : self.pos + 2 + width]
            if len(digits) == width and _HEX.fullmatch(digits):
                code = int(digits, 16)
                if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
                    self.pos += 2 + width
                    return chr(code)
            raise EvalError(f"invalid unicode escape \\{marker} in string")
        shown = marker if marker.isprintable() else "?"
        raise EvalError(f'invalid escape sequence "\\{shown}" in string')
