"""The HCL writer: every generated document parses back with python-hcl2 to exactly the input."""

from __future__ import annotations

from typing import Any

import hcl2
import pytest

from cloudstation.config import Block, Ref, Value, parse_config
from cloudstation.config.expressions import Evaluator
from cloudstation.config.hclwriter import Data, dumps, key, quote

NASTY: list[str] = [
    "",
    "plain",
    'say "hi"',
    "back\\slash",
    "\\",
    '\\"',
    "trailing backslash\\",
    "line1\nline2",
    "\n",
    "crlf\r\n",
    "tab\there",
    "nul\x00ctl\x01\x1f\x7f\x85",
    "unicode: é ü 中文 😀 \u2028 \u00a0",
    "${x}",
    "${var.secret}",
    "%{ if true }x%{ endif }",
    "$${x}",
    "%%{x}",
    "${",
    "%{",
    "}${",
    "$",
    "$$",
    "pa$$word",
    "$HOME",
    'a${b"}c',
    "${a${b}}",
    "%",
    "100%",
    "{}",
    "${ \n }",
    "#not a comment",
    "// nor this",
    "/* nor this */",
    "<<EOT\nnot a heredoc\nEOT",
    "x" * 10_000,
    ("${" + "\\" + '"') * 500,
]


def hcl2_raw(text: str) -> dict[str, Any]:
    """python-hcl2's own reading (serialized source forms)."""
    options = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, preserve_heredocs=False)
    result: dict[str, Any] = hcl2.loads(text, serialization_options=options)
    return result


def hcl2_plain(text: str) -> dict[str, Any]:
    """python-hcl2's own decoding of strings (correct for strings without ``${`` / ``%{``)."""
    options = hcl2.SerializationOptions(
        with_comments=False, explicit_blocks=False, strip_string_quotes=True, preserve_scientific_notation=False
    )
    result: dict[str, Any] = hcl2.loads(text, serialization_options=options)
    return result


def decode(text: str) -> Value:
    """Parse with python-hcl2, then evaluate its serialized values (no variables)."""
    return Evaluator({}).evaluate(hcl2_raw(text))


@pytest.mark.parametrize("text", NASTY, ids=range(len(NASTY)))
def test_nasty_string_round_trips(text: str) -> None:
    document = dumps({"a": text, "m": {text: text}, "l": [text, text]})
    assert decode(document) == {"a": text, "m": {text: text}, "l": [text, text]}
    if "${" not in text and "%{" not in text:
        assert hcl2_plain(document) == {"a": text, "m": {text: text}, "l": [text, text]}


@pytest.mark.parametrize("text", NASTY, ids=range(len(NASTY)))
def test_nasty_string_as_block_label(text: str) -> None:
    document = dumps(blocks=[Block("job", (text,), {"v": 1})])
    raw = hcl2_raw(document)
    [body] = raw["job"]
    [(label, inner)] = body.items()
    assert Evaluator({}).evaluate(label) == text
    assert inner == {"v": 1}


def test_exact_escaping() -> None:
    assert quote('a"b\\c\nd\te\r') == '"a\\"b\\\\c\\nd\\te\\r"'
    assert quote("${x}") == '"$${x}"'
    assert quote("%{x}") == '"%%{x}"'
    assert quote("${") == '"\\u0024{"'
    assert quote("%{") == '"\\u0025{"'
    assert quote("$HOME pa$$") == '"$HOME pa$$"'
    assert quote("\x00\x7f\u2028é") == '"\\u0000\\u007f\\u2028é"'


def test_keys_identifiers_vs_quoted() -> None:
    assert key("port") == "port"
    assert key("_a1") == "_a1"
    assert key("a-b") == '"a-b"'
    assert key("1a") == '"1a"'
    assert key("null") == '"null"'
    assert key("true") == '"true"'
    assert key("") == '""'
    assert key("a b") == '"a b"'


VALUES: list[Data] = [
    None,
    True,
    False,
    0,
    -7,
    12345678901234567890,
    1.5,
    -0.25,
    1e-05,
    1.5e300,
    [],
    {},
    [1, "a", None, [True], {"k": "v"}],
    {"nested": {"deep": {"list": [{"x": 1}, {"y": [2, 3]}]}}, "null": None, "true": True, "a-b": "c"},
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_values_round_trip(value: Data) -> None:
    document = dumps({"v": value})
    assert decode(document) == {"v": value}
    assert hcl2_plain(document) == {"v": value}


def test_nomad_pack_vars_document_exact_text() -> None:
    text = dumps(
        {
            "job_name": "web",
            "count": 2,
            "env": {"DATABASE_URL": "postgres://u:p@h/db?x=${y}", "EMPTY": ""},
            "ports": [{"label": "http", "to": 3000}],
        }
    )
    assert text == (
        'job_name = "web"\n'
        "count = 2\n"
        "env = {\n"
        '  DATABASE_URL = "postgres://u:p@h/db?x=$${y}"\n'
        '  EMPTY = ""\n'
        "}\n"
        "ports = [\n"
        "  {\n"
        '    label = "http"\n'
        "    to = 3000\n"
        "  },\n"
        "]\n"
    )


def test_generated_cloudstation_hcl_loads() -> None:
    password = 'pa$$"w\\rd${x}%{y}\n'
    text = dumps(
        {"project": "demo"},
        [
            Block("variable", ("pw",), {"type": "string", "sensitive": True, "default": password}),
            Block(
                "app",
                ("web",),
                {"path": "./web", "labels": {"team": "a b"}},
                [
                    Block("build", (), {"use": "railpack", "args": {"K": "${not}"}}),
                    Block("registry", (), {"use": "docker", "password": Ref("var.pw")}),
                    Block("deploy", (), {"use": "nomad-pack", "count": 1}),
                    Block("config", (), {"env": {"PORT": "3000"}}),
                ],
            ),
        ],
    )
    cfg = parse_config(text, "cloudstation.hcl", {})
    web = cfg.app("web")
    assert web.labels == {"team": "a b"}
    assert web.build.config == {"args": {"K": "${not}"}}
    assert web.registry is not None
    assert web.registry.config == {"password": password}
    assert web.deploy.config == {"count": 1}
    assert web.env == {"PORT": "3000"}
    assert cfg.sensitive_values == frozenset({password})


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: dumps({"a b": 1}), "invalid HCL attribute name: 'a b'"),
        (lambda: dumps({"true": 1}), "invalid HCL attribute name: 'true'"),
        (lambda: dumps(blocks=[Block("1x")]), "invalid HCL block name: '1x'"),
        (lambda: dumps({"f": float("nan")}), "HCL has no nan"),
        (lambda: dumps({"f": float("inf")}), "HCL has no inf"),
        (lambda: dumps({"s": "\ud800"}), "a lone surrogate cannot be written as HCL (not valid UTF-8)"),
        (lambda: Ref("var"), "not a reference (name.name...): 'var'"),
        (lambda: Ref('var.x}"'), "not a reference (name.name...): 'var.x}\"'"),
    ],
)
def test_writer_rejects_what_it_cannot_write(call: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message
