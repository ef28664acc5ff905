"""The only module that talks to python-hcl2: text → a plain tree of bodies, attributes and blocks.

Each attribute keeps python-hcl2's serialized value (evaluated later by
:mod:`cloudstation.config.expressions`) and its location. Syntax errors become located ``ConfigError`` s
that name the offending token kind but never its text (it could be a secret).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import hcl2
from hcl2.rules.base import AttributeRule, BlockRule, BodyRule
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from cloudstation.config.locations import Location, config_error
from cloudstation.errors import ConfigError

_OPTIONS = hcl2.SerializationOptions(
    with_comments=False,
    preserve_heredocs=False,  # heredocs arrive as ordinary quoted strings
    explicit_blocks=False,
)

_TOKEN_TEXT = {
    "LBRACE": "{",
    "RBRACE": "}",
    "LSQB": "[",
    "RSQB": "]",
    "LPAR": "(",
    "RPAR": ")",
    "EQ": "=",
    "COMMA": ",",
    "COLON": ":",
    "DOT": ".",
    "DBLQUOTE": '"',
    "INTERP_START": "${",
    "DIRECTIVE_START": "%{",
    "QMARK": "?",
}
_TOKEN_KIND = {
    "$END": "end of file",
    "NAME": "name",
    "INT_LITERAL": "number",
    "FLOAT_LITERAL": "number",
    "STRING_CHARS": "text",
    "NL_OR_COMMENT": "newline",
}


@dataclass(frozen=True, slots=True)
class RawAttribute:
    """An attribute as python-hcl2 serialized it (see :mod:`cloudstation.config.expressions`), and where."""

    name: str
    raw: object
    location: Location


@dataclass(frozen=True, slots=True)
class RawBlock:
    """A parsed block: its type, its labels (unquoted), its body and where it starts.

    (A block to write is :class:`cloudstation.config.hclwriter.Block`.)
    """

    type: str
    labels: tuple[str, ...]
    body: Body
    location: Location


@dataclass(frozen=True, slots=True)
class Body:
    """Attributes (by name, in source order) and blocks (in source order) of one body."""

    attributes: dict[str, RawAttribute] = field(default_factory=dict)
    blocks: list[RawBlock] = field(default_factory=list)


def parse_tree(text: str, file: str) -> Body:
    """Parse HCL text into a :class:`Body`; ``ConfigError`` on a syntax error or a duplicate attribute."""
    try:
        start = hcl2.parses(text, discard_comments=True)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, file) from None
    except LarkError:
        raise config_error(Location(file), "syntax error") from None
    return _body(start.body, file, ())


def _syntax_error(exc: UnexpectedInput, file: str) -> ConfigError:
    line = exc.line if isinstance(exc.line, int) and exc.line > 0 else None
    column = exc.column if isinstance(exc.column, int) and exc.column > 0 else None
    location = Location(file, line, column if line is not None else None)
    if isinstance(exc, UnexpectedToken):
        token_type = str(exc.token.type)
        what = _describe(token_type)
        expected = sorted(_TOKEN_TEXT[name] for name in exc.expected if name in _TOKEN_TEXT)
        if len(expected) == len(exc.expected) and 0 < len(expected) <= 3:
            return config_error(
                location, f"syntax error: unexpected {what}, expected {' or '.join(map(_quote, expected))}"
            )
        return config_error(location, f"syntax error: unexpected {what}")
    if isinstance(exc, UnexpectedEOF):
        return config_error(location, "syntax error: unexpected end of file")
    if isinstance(exc, UnexpectedCharacters):
        return config_error(location, "syntax error: unexpected character")
    return config_error(location, "syntax error")


def _quote(text: str) -> str:
    return f"'{text}'" if text == '"' else f'"{text}"'


def _describe(token_type: str) -> str:
    if token_type in _TOKEN_TEXT:
        return _quote(_TOKEN_TEXT[token_type])
    return _TOKEN_KIND.get(token_type, "token")


def _location(rule: AttributeRule | BlockRule, file: str) -> Location:
    meta = rule.to_lark().meta
    line = getattr(meta, "line", None)
    return Location(file, line if isinstance(line, int) else None)


def _body(rule: BodyRule, file: str, context: tuple[str, ...]) -> Body:
    body = Body()
    for child in rule.children:
        if isinstance(child, AttributeRule):
            name = str(child.identifier.serialize(_OPTIONS))
            location = _location(child, file)
            if name in body.attributes:
                first = body.attributes[name].location.line
                raise config_error(location, f'duplicate attribute "{name}" (first set at line {first})', *context)
            body.attributes[name] = RawAttribute(name, child.expression.serialize(_OPTIONS), location)
        elif isinstance(child, BlockRule):
            labels = [_unquote(str(label.serialize(_OPTIONS))) for label in child.labels]
            block_type, rest = labels[0], tuple(labels[1:])
            inner = (*context, " ".join([block_type, *(f'"{label}"' for label in rest)]))
            body.blocks.append(RawBlock(block_type, rest, _body(child.body, file, inner), _location(child, file)))
    return body


def _unquote(label: str) -> str:
    if len(label) >= 2 and label.startswith('"') and label.endswith('"'):
        return label[1:-1]
    return label
