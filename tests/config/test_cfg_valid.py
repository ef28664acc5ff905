"""Valid ``cloudstation.hcl`` files: the loaded model holds exactly the expected values and locations."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudstation.config import Location, ProjectConfig, Value, load_config, parse_config
from cloudstation.errors import ConfigError
from cloudstation.vocabulary import Step

FULL = """\
project = "demo_1-x"
variable "registry_username" {
  type = "string"
  sensitive = true
  env = ["REGISTRY_USERNAME", "REG_USER"]
  default = ""
}
variable "replicas" {
  type = "number"
  env = ["REPLICAS"]
  default = 2
}
app "web" {
  path = "./web"
  labels = { team = "core", "app.kubernetes/tier" = "front", n = 3 }
  build    { use = "railpack"  name = "web"  tag = "latest" }
  registry {
    use = "docker"
    image = "reg.example.com/web"
    username = var.registry_username
  }
  deploy   {
    use = "nomad-pack"
    deployment_name = "web"
    pack = "cloudstation"
    count = var.replicas
  }
  release  { use = "noop" }
  config   { env = { PORT = "3000", DEBUG = true } }
}
app "worker" {
  build  { use = "nixpacks" }
  deploy { use = "nomad-pack" }
}
"""


def load(text: str, env: dict[str, str] | None = None) -> ProjectConfig:
    return parse_config(text, "cloudstation.hcl", env or {})


def test_full_example_model() -> None:
    cfg = load(FULL, {"REG_USER": "robot$1"})
    assert cfg.project == "demo_1-x"
    assert cfg.file == "cloudstation.hcl"
    assert list(cfg.apps) == ["web", "worker"]
    web = cfg.app("web")
    assert web.path == "./web"
    assert web.labels == {"team": "core", "app.kubernetes/tier": "front", "n": "3"}
    assert web.env == {"PORT": "3000", "DEBUG": "true"}
    assert web.location == Location("cloudstation.hcl", 13)
    assert [(c.kind, c.use) for c in web.components()] == [
        ("build", "railpack"),
        ("registry", "docker"),
        ("deploy", "nomad-pack"),
        ("release", "noop"),
    ]
    assert web.build.config == {"name": "web", "tag": "latest"}
    assert web.registry is not None
    assert web.registry.config == {"image": "reg.example.com/web", "username": "robot$1"}
    assert web.registry.location_of("username") == Location("cloudstation.hcl", 20)
    assert web.registry.location_of("use") == Location("cloudstation.hcl", 18)
    assert web.registry.location_of("absent") == Location("cloudstation.hcl", 17)
    assert web.registry.settings["username"].sensitive is True
    assert web.registry.settings["image"].sensitive is False
    assert web.deploy.config == {"deployment_name": "web", "pack": "cloudstation", "count": 2}
    assert web.component(Step.RELEASE) is not None
    worker = cfg.app("worker")
    assert worker.path == "."
    assert worker.labels == {}
    assert worker.env == {}
    assert worker.registry is None
    assert worker.component(Step.REGISTRY) is None
    assert [c.kind for c in worker.components()] == ["build", "deploy"]
    assert cfg.variables["registry_username"].source == "env:REG_USER"
    assert cfg.variables["replicas"].value == 2
    assert cfg.variables["replicas"].source == "default"
    assert cfg.sensitive_values == frozenset({"robot$1"})


def test_var_in_plugin_config_is_kept_not_dropped() -> None:
    """Fix of the original: attributes referencing var.* used to be silently dropped."""
    cfg = load(FULL, {"REGISTRY_USERNAME": "alice", "REPLICAS": "5"})
    registry = cfg.app("web").registry
    assert registry is not None
    assert registry.config["username"] == "alice"
    assert cfg.app("web").deploy.config["count"] == 5


def test_repr_does_not_show_sensitive_values() -> None:
    cfg = load(FULL, {"REGISTRY_USERNAME": "alice-secret"})
    assert "alice-secret" not in repr(cfg)


def test_unknown_app_lookup() -> None:
    with pytest.raises(ConfigError) as info:
        load(FULL).app("api")
    assert str(info.value) == 'cloudstation.hcl: no app "api" (apps: "web", "worker")'


def test_component_error_helper_for_plugins_layer() -> None:
    web = load(FULL).app("web")
    assert str(web.build.error('unknown plugin "railpak"', attribute="use")) == (
        'cloudstation.hcl:16: app "web": build: attribute "use": unknown plugin "railpak"'
    )
    assert str(web.deploy.error("expected string, got number", attribute="count")) == (
        'cloudstation.hcl:26: app "web": deploy: attribute "count": expected string, got number'
    )
    assert str(web.deploy.error('plugin "noop" has no deploy component')) == (
        'cloudstation.hcl:22: app "web": deploy: plugin "noop" has no deploy component'
    )


VALUE_CASES: list[tuple[str, str, dict[str, str], Value]] = [
    # (id, expression as written in a build block attribute, env, expected value)
    ("dollar-literal", '"pa$$word"', {}, "pa$$word"),
    ("dollar-home", '"$HOME"', {"HOME": "/root"}, "$HOME"),
    ("dollar-end", '"cost: 5$"', {}, "cost: 5$"),
    ("dollar-brace-space", '"$ {x}"', {}, "$ {x}"),
    ("escaped-interpolation", '"$${var.x}"', {}, "${var.x}"),
    ("escaped-directive", '"%%{x}"', {}, "%{x}"),
    ("percent-literal", '"100%"', {}, "100%"),
    ("escapes", r'"a\"b\\c\nd\te\r\u00e9\U0001F600"', {}, 'a"b\\c\nd\te\ré😀'),
    ("interpolation", '"${var.name}-suffix"', {}, "web-suffix"),
    ("interpolation-number", '"n=${var.count}"', {}, "n=3"),
    ("interpolation-bool", '"${var.on}!"', {}, "true!"),
    ("single-interpolation-keeps-type", '"${var.count}"', {}, 3),
    ("single-interpolation-list", '"${var.items}"', {}, ["a", "b"]),
    ("nested-template", '"${upper("x${var.name}")}"', {}, "XWEB"),
    ("var", "var.items", {}, ["a", "b"]),
    ("env-set", 'env("TOKEN")', {"TOKEN": "t$k"}, "t$k"),
    ("env-unset", 'env("NOPE")', {}, ""),
    ("lower", 'lower("AbC")', {}, "abc"),
    ("upper", "upper(var.name)", {}, "WEB"),
    ("concat-strings", 'concat("a", var.name, "c")', {}, "awebc"),
    ("concat-lists", 'concat(var.items, ["c"], [])', {}, ["a", "b", "c"]),
    ("parentheses", "(var.count)", {}, 3),
    ("negative", "-3", {}, -3),
    ("float", "1.5", {}, 1.5),
    ("exponent", "1e3", {}, 1000.0),
    ("null", "null", {}, None),
    ("list", '[1, "two", var.on, [], {}]', {}, [1, "two", True, [], {}]),
    ("object", '{ a = 1, "b-c" = var.name, d = { e = [var.count] } }', {}, {"a": 1, "b-c": "web", "d": {"e": [3]}}),
    ("object-colon", "{ a: 1 }", {}, {"a": 1}),
    ("heredoc", '<<EOT\nline ${var.name}\n  "q" \\n\nEOT', {}, 'line web\n  "q" \\n'),
    ("empty", '""', {}, ""),
]


@pytest.mark.parametrize(("expr", "env", "expected"), [c[1:] for c in VALUE_CASES], ids=[c[0] for c in VALUE_CASES])
def test_expression_values(expr: str, env: dict[str, str], expected: Value) -> None:
    text = (
        'project = "p"\n'
        'variable "name" { default = "web" }\n'
        'variable "count" { default = 3 }\n'
        'variable "on" { default = true }\n'
        'variable "items" { default = ["a", "b"] }\n'
        f'app "web" {{\n  build {{\n    use = "x"\n    v = {expr}\n  }}\n  deploy {{ use = "y" }}\n}}\n'
    )
    cfg = load(text, env)
    got = cfg.app("web").build.config["v"]
    assert got == expected
    assert type(got) is type(expected)


def test_sensitive_values_include_transformed_and_list_items() -> None:
    text = (
        'project = "p"\n'
        'variable "pw" {\n  sensitive = true\n  env = ["PW"]\n}\n'
        'variable "keys" {\n  type = "list"\n  sensitive = true\n  env = ["KEYS"]\n}\n'
        'variable "empty" {\n  sensitive = true\n  default = ""\n}\n'
        'variable "public" { default = "not-secret" }\n'
        'app "web" {\n  build {\n    use = "x"\n    a = upper(var.pw)\n    b = lower(upper(var.pw))\n'
        '    c = "${var.pw}-x"\n    d = upper(var.public)\n  }\n  deploy { use = "y" }\n}\n'
    )
    cfg = load(text, {"PW": "Hunter2", "KEYS": '["k1", "k2"]'})
    assert cfg.sensitive_values == frozenset({"Hunter2", "HUNTER2", "hunter2", "k1", "k2"})
    settings = cfg.app("web").build.settings
    assert [settings[n].sensitive for n in "abcd"] == [True, True, True, False]


VARIABLE_CASES: list[tuple[str, str, dict[str, str], Value, str]] = [
    # (id, variable body, env, expected value, expected source)
    ("default", 'default = "d"', {}, "d", "default"),
    ("first-set-env-wins", 'env = ["A", "B"]\n  default = "d"', {"B": "b", "A": "a"}, "a", "env:A"),
    ("second-env", 'env = ["A", "B"]\n  default = "d"', {"B": "b"}, "b", "env:B"),
    ("empty-env-counts-as-set", 'env = ["A"]\n  default = "d"', {"A": ""}, "", "env:A"),
    ("dollar-env-kept", 'env = ["A"]', {"A": "pa$$w$rd ${x}"}, "pa$$w$rd ${x}", "env:A"),
    ("number-int", 'type = "number"\n  env = ["N"]', {"N": "42"}, 42, "env:N"),
    ("number-float", 'type = "number"\n  env = ["N"]', {"N": "-0.5"}, -0.5, "env:N"),
    ("bool-true", 'type = "bool"\n  env = ["B"]', {"B": "true"}, True, "env:B"),
    ("bool-false", 'type = "bool"\n  env = ["B"]\n  default = true', {"B": "false"}, False, "env:B"),
    ("list-json", 'type = "list"\n  env = ["L"]', {"L": '["a", 1]'}, ["a", 1], "env:L"),
    ("map-json", 'type = "map"\n  env = ["M"]', {"M": '{"a": {"b": null}}'}, {"a": {"b": None}}, "env:M"),
    ("inferred-number", "default = 7", {}, 7, "default"),
    ("default-via-env-function", 'default = env("HOME")', {"HOME": "/h"}, "/h", "default"),
    ("map-default", 'type = "map"\n  default = { a = "b" }', {}, {"a": "b"}, "default"),
    ("description", 'description = "what"\n  default = 1', {}, 1, "default"),
]


@pytest.mark.parametrize(
    ("body", "env", "expected", "source"), [c[1:] for c in VARIABLE_CASES], ids=[c[0] for c in VARIABLE_CASES]
)
def test_variable_resolution(body: str, env: dict[str, str], expected: Value, source: str) -> None:
    text = (
        f'project = "p"\nvariable "v" {{\n  {body}\n}}\n'
        'app "web" {\n  build {\n    use = "x"\n    v = var.v\n  }\n  deploy { use = "y" }\n}\n'
    )
    cfg = load(text, env)
    var = cfg.variables["v"]
    assert var.value == expected
    assert type(var.value) is type(expected)
    assert var.source == source
    assert cfg.app("web").build.config["v"] == expected


def test_comments_and_multiple_attributes_per_line() -> None:
    text = (
        "# leading comment\n"
        'project = "p" // trailing\n'
        "/* block\n comment */\n"
        'app "web" {\n  build { use = "a"  name = "n" }\n  deploy { use = "b" }\n}\n'
    )
    cfg = load(text)
    assert cfg.app("web").build.config == {"name": "n"}
    assert cfg.app("web").location.line == 5


def test_load_config_reads_file(tmp_path: Path) -> None:
    path = tmp_path / "cloudstation.hcl"
    path.write_text(FULL, encoding="utf-8")
    cfg = load_config(path, {})
    assert cfg.file == str(path)
    assert cfg.app("web").build.location == Location(str(path), 16)


def test_load_config_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.hcl"
    with pytest.raises(ConfigError) as info:
        load_config(missing, {})
    assert str(info.value) == f"{missing}: file not found"
    bad = tmp_path / "bad.hcl"
    bad.write_bytes(b'project = "\xff"\n')
    with pytest.raises(ConfigError) as info:
        load_config(bad, {})
    assert str(info.value) == f"{bad}: file is not valid UTF-8"
    broken = tmp_path / "cloudstation.hcl"
    broken.write_text('project = "p"\napp "web" {\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(broken, {})
    assert str(info.value) == f'{broken}:3:1: syntax error: unexpected end of file, expected "}}"'
