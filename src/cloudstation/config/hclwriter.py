"""Writing HCL2 text from Python data: ``vars.hcl`` for nomad-pack and ``cloudstation.hcl`` files.

Every string is escaped (``"``, ``\\``, newline, tab, control characters; ``${`` → ``$${`` and ``%{`` →
``%%{``), so any value round-trips through an HCL parser unchanged. Nothing is built by concatenating
unescaped input: attribute names and block types must be identifiers (``ValueError`` otherwise), object
keys are quoted unless they are plain identifiers, labels are always quoted.

A ``${`` or ``%{`` with no ``}`` after it is written as ``\\u0024{`` / ``\\u0025{`` instead of ``$${`` /
``%%{``: both mean the same to HCL, but python-hcl2's lexer only accepts ``$${`` when a ``}`` follows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_BARE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REFERENCE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)+")
_KEYWORDS = frozenset({"true", "false", "null", "for", "in", "if", "else", "endif", "endfor"})
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_INDENT = "  "


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference written unquoted, e.g. ``Ref("var.registry_username")`` → ``var.registry_username``."""

    path: str

    def __post_init__(self) -> None:
        if not _REFERENCE.fullmatch(self.path):
            raise ValueError(f"not a reference (name.name...): {self.path!r}")


Data: TypeAlias = str | int | float | bool | Ref | Sequence["Data"] | Mapping[str, "Data"] | None
"""What the writer accepts as an attribute value."""


@dataclass(frozen=True, slots=True)
class Block:
    """A block: ``type "label" ... { attributes, then nested blocks }``."""

    type: str
    labels: tuple[str, ...] = ()
    attributes: Mapping[str, Data] = field(default_factory=dict)
    blocks: Sequence[Block] = ()


def dumps(attributes: Mapping[str, Data] | None = None, blocks: Sequence[Block] = ()) -> str:
    """A whole HCL document: top-level ``attributes`` first, then ``blocks``; ends with a newline."""
    return "".join(_body(attributes or {}, blocks, 0))


def quote(text: str) -> str:
    """``text`` as an HCL quoted string literal whose value is exactly ``text``."""
    out: list[str] = ['"']
    for index, char in enumerate(text):
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char in "$%" and text.startswith("{", index + 1):
            if "}" in text[index + 2 :]:
                out.append(char * 2)
            else:
                out.append(f"\\u{ord(char):04x}")
        elif _needs_unicode_escape(char):
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def value(data: Data, indent: int = 0) -> str:
    """``data`` as an HCL expression; nested containers are indented ``indent`` levels deep."""
    if data is None:
        return "null"
    if isinstance(data, bool):
        return "true" if data else "false"
    if isinstance(data, int):
        return str(data)
    if isinstance(data, float):
        if not math.isfinite(data):
            raise ValueError(f"HCL has no {data!r}")
        return repr(data)
    if isinstance(data, str):
        return quote(data)
    if isinstance(data, Ref):
        return data.path
    inner = _INDENT * (indent + 1)
    closing = _INDENT * indent
    if isinstance(data, Mapping):
        if not data:
            return "{}"
        lines = [f"{inner}{key(name)} = {value(item, indent + 1)}\n" for name, item in data.items()]
        return "{\n" + "".join(lines) + closing + "}"
    if not data:
        return "[]"
    lines = [f"{inner}{value(item, indent + 1)},\n" for item in data]
    return "[\n" + "".join(lines) + closing + "]"


def key(name: str) -> str:
    """An object key: bare when it is a plain identifier, else a quoted string."""
    if not isinstance(name, str):
        raise TypeError(f"object keys must be strings, got {type(name).__name__}")
    if _BARE_KEY.fullmatch(name) and name not in _KEYWORDS:
        return name
    return quote(name)


def _needs_unicode_escape(char: str) -> bool:
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        raise ValueError("a lone surrogate cannot be written as HCL (not valid UTF-8)")
    return code < 0x20 or 0x7F <= code <= 0x9F or code in (0x2028, 0x2029)


def _identifier(name: str, what: str) -> str:
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name) or name in _KEYWORDS:
        raise ValueError(f"invalid HCL {what} name: {name!r}")
    return name


def _body(attributes: Mapping[str, Data], blocks: Sequence[Block], indent: int) -> list[str]:
    pad = _INDENT * indent
    out = [f"{pad}{_identifier(name, 'attribute')} = {value(item, indent)}\n" for name, item in attributes.items()]
    for number, block in enumerate(blocks):
        if out and (number > 0 or attributes):
            out.append("\n")
        header = " ".join([_identifier(block.type, "block"), *(quote(label) for label in block.labels)])
        out.append(f"{pad}{header} {{\n")
        out.extend(_body(block.attributes, block.blocks, indent + 1))
        out.append(f"{pad}}}\n")
    return out
