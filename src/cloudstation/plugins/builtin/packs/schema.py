"""A pack's ``variables.hcl`` as a schema, and the check of a vars mapping (or file) against it.

``load_variables(pack_dir)`` reads every ``variable "NAME" { type = ... default = ... }`` block with
python-hcl2 and parses its type constraint (``string``, ``number``, ``bool``, ``any``, ``list(T)``,
``set(T)``, ``map(T)``, ``tuple([T, ...])``, ``object({name = T, ...})``). ``vars_problems`` lists what is
wrong with a vars mapping: unknown names, missing variables without a default, values of the wrong type
(objects must have exactly their attributes; map keys must be identifiers). Problems name the variable
and the path inside it, never the value (it could be a secret).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

from cloudstation.config.expressions import Evaluator
from cloudstation.plugins.base import PluginError
from cloudstation.plugins.builtin.packs import DEFAULT_PACK, embedded_pack_dir

_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_-]*|[(){}\[\]=,])")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_PRIMITIVES = frozenset({"string", "number", "bool", "any"})
_COLLECTIONS = frozenset({"list", "set", "map"})
_RAW_OPTIONS = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, preserve_heredocs=False)
_PLAIN_OPTIONS = hcl2.SerializationOptions(
    with_comments=False, explicit_blocks=False, preserve_heredocs=False, strip_string_quotes=True
)


@dataclass(frozen=True)
class TypeSpec:
    """An HCL type constraint: ``kind`` is a primitive, a collection, ``tuple`` or ``object``."""

    kind: str
    element: TypeSpec | None = None  # list / set / map
    items: tuple[TypeSpec, ...] = ()  # tuple
    attributes: Mapping[str, TypeSpec] = field(default_factory=dict)  # object

    def __str__(self) -> str:
        if self.element is not None:
            return f"{self.kind}({self.element})"
        if self.kind == "tuple":
            return f"tuple([{', '.join(map(str, self.items))}])"
        if self.kind == "object":
            return "object({" + ", ".join(f"{k} = {v}" for k, v in self.attributes.items()) + "})"
        return self.kind


@dataclass(frozen=True)
class PackVariable:
    """One ``variable`` block of a pack."""

    name: str
    type: TypeSpec
    required: bool  # no default
    description: str = ""


def parse_type(text: str) -> TypeSpec:
    """An HCL type constraint as python-hcl2 serializes it (``string`` or ``${list(string)}``)."""
    text = text.strip()
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"unexpected text in type constraint at {pos}")
        tokens.append(match.group(1))
        pos = match.end()
    parser = _TypeParser(tokens)
    spec = parser.type()
    if parser.pos != len(tokens):
        raise ValueError("trailing text in type constraint")
    return spec


class _TypeParser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0

    def take(self, expected: str | None = None) -> str:
        if self.pos >= len(self.tokens):
            raise ValueError("type constraint ends early")
        token = self.tokens[self.pos]
        if expected is not None and token != expected:
            raise ValueError(f"expected {expected!r} in type constraint, got {token!r}")
        self.pos += 1
        return token

    def peek(self) -> str:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ""

    def type(self) -> TypeSpec:
        name = self.take()
        if name in _PRIMITIVES:
            return TypeSpec(name)
        self.take("(")
        if name in _COLLECTIONS:
            spec = TypeSpec(name, element=self.type())
        elif name == "tuple":
            self.take("[")
            items: list[TypeSpec] = []
            while self.peek() != "]":
                items.append(self.type())
                if self.peek() == ",":
                    self.take(",")
            self.take("]")
            spec = TypeSpec("tuple", items=tuple(items))
        elif name == "object":
            self.take("{")
            attributes: dict[str, TypeSpec] = {}
            while self.peek() != "}":
                key = self.take()
                self.take("=")
                attributes[key] = self.type()
                if self.peek() == ",":
                    self.take(",")
            self.take("}")
            spec = TypeSpec("object", attributes=attributes)
        else:
            raise ValueError(f"unknown type {name!r}")
        self.take(")")
        return spec


def load_variables(pack_dir: Path) -> dict[str, PackVariable]:
    """Every variable ``pack_dir/variables.hcl`` declares, by name."""
    try:
        document: dict[str, Any] = hcl2.loads(
            (pack_dir / "variables.hcl").read_text(encoding="utf-8"), serialization_options=_PLAIN_OPTIONS
        )
    except Exception as exc:
        raise PluginError(f"cannot read {pack_dir.name}/variables.hcl: {type(exc).__name__}") from None
    variables: dict[str, PackVariable] = {}
    for block in document.get("variable", []):
        for name, body in block.items():
            if "type" not in body:
                raise PluginError(f"{pack_dir.name}/variables.hcl: variable {name!r} declares no type")
            try:
                spec = parse_type(str(body["type"]))
            except ValueError as exc:
                raise PluginError(f"{pack_dir.name}/variables.hcl: variable {name!r}: {exc}") from None
            description = str(body.get("description", ""))
            variables[name] = PackVariable(name, spec, required="default" not in body, description=description)
    return variables


def vars_problems(values: Mapping[str, object], variables: Mapping[str, PackVariable]) -> list[str]:
    """What is wrong with ``values`` as vars for a pack declaring ``variables`` (empty: nothing)."""
    problems: list[str] = []
    for name in values:
        if name not in variables:
            problems.append(f"unknown variable {name!r}")
    for name, variable in variables.items():
        if name in values:
            problems += _check(values[name], variable.type, name)
        elif variable.required:
            problems.append(f"variable {name!r} is required")
    return problems


def validate_vars(values: Mapping[str, object], pack: str | Path = DEFAULT_PACK) -> None:
    """Raise PluginError unless ``values`` fit ``pack`` (an embedded pack's name, or a pack directory)."""
    pack_dir = pack if isinstance(pack, Path) else embedded_pack_dir(pack)
    problems = vars_problems(values, load_variables(pack_dir))
    if problems:
        raise PluginError(f"invalid vars for pack {pack_dir.name!r}: " + "; ".join(problems))


def read_vars_file(path: Path) -> dict[str, object]:
    """A vars file's values, read back with python-hcl2 (string escapes decoded exactly)."""
    raw: dict[str, Any] = hcl2.loads(path.read_text(encoding="utf-8"), serialization_options=_RAW_OPTIONS)
    evaluator = Evaluator({})
    return {name: evaluator.evaluate(value) for name, value in raw.items()}


def _check(value: object, spec: TypeSpec, path: str) -> list[str]:
    kind = spec.kind
    if value is None:
        return [f"{path}: must be a {spec}, not null"]
    if kind == "any":
        return []
    if kind == "string":
        return [] if isinstance(value, str) else [f"{path}: must be a string"]
    if kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: must be a number"]
    if kind == "bool":
        return [] if isinstance(value, bool) else [f"{path}: must be a bool"]
    if kind in ("list", "set", "tuple"):
        if not isinstance(value, list | tuple):
            return [f"{path}: must be a {spec}"]
        if kind == "tuple" and len(value) != len(spec.items):
            return [f"{path}: must have {len(spec.items)} items"]
        specs = spec.items if kind == "tuple" else [spec.element or TypeSpec("any")] * len(value)
        return [
            p for i, (item, s) in enumerate(zip(value, specs, strict=True)) for p in _check(item, s, f"{path}[{i}]")
        ]
    if not isinstance(value, Mapping):
        return [f"{path}: must be a {spec}"]
    problems: list[str] = []
    if kind == "map":
        element = spec.element or TypeSpec("any")
        for key, item in value.items():
            if not isinstance(key, str) or not _KEY.fullmatch(key):
                problems.append(f"{path}: has a key that is not an identifier")
                continue
            problems += _check(item, element, f"{path}.{key}")
        return problems
    for key in value:
        if key not in spec.attributes:
            problems.append(f"{path}: unknown attribute {key!r}")
    for key, attribute in spec.attributes.items():
        if key not in value:
            problems.append(f"{path}: missing attribute {key!r}")
        else:
            problems += _check(value[key], attribute, f"{path}.{key}")
    return problems
