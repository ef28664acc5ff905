"""Invalid ``cloudstation.hcl`` files: each must fail with one exact, located, secret-free message."""

from __future__ import annotations

import pytest

from cloudstation.config import parse_config
from cloudstation.errors import ConfigError, ExitCode

APP = 'app "web" {\n  build { use = "railpack" }\n  deploy { use = "nomad-pack" }\n}\n'

CASES: list[tuple[str, str, dict[str, str], str]] = [
    # (id, text, env, exact message)
    ("syntax-missing-value", 'project = "p"\nx = \n', {}, "cloudstation.hcl:2:5: syntax error: unexpected text"),
    (
        "syntax-unclosed-block",
        'project = "p"\napp "web" {\n  path = "."\n',
        {},
        'cloudstation.hcl:4:1: syntax error: unexpected end of file, expected "}"',
    ),
    (
        "syntax-unterminated-string",
        'project = "p"\nvariable "pw" { default = "hunter2\n}\n',
        {},
        "cloudstation.hcl:2:28: syntax error: unexpected end of file",
    ),
    (
        "syntax-bad-interpolation",
        'project = "p${var.x"\n',
        {},
        'cloudstation.hcl:1:20: syntax error: unexpected \'"\', expected "}"',
    ),
    ("missing-project", APP, {}, 'cloudstation.hcl: missing required attribute "project"'),
    (
        "invalid-project-name",
        'project = "my app"\n' + APP,
        {},
        'cloudstation.hcl:1: invalid project name "my app" (allowed: letters, digits, "_" and "-")',
    ),
    (
        "project-not-string",
        "project = 3\n" + APP,
        {},
        'cloudstation.hcl:1: attribute "project": expected string, got number',
    ),
    ("no-app", 'project = "p"\n', {}, 'cloudstation.hcl: no app block (at least one app "NAME" { ... } is required)'),
    (
        "invalid-app-name",
        'project = "p"\napp "we b" {\n  build { use = "a" }\n  deploy { use = "b" }\n}\n',
        {},
        'cloudstation.hcl:2: invalid app name "we b" (allowed: letters, digits, "_" and "-")',
    ),
    (
        "duplicate-app",
        'project = "p"\n' + APP + APP,
        {},
        'cloudstation.hcl:6: duplicate app "web" (first defined at line 2)',
    ),
    (
        "missing-deploy",
        'project = "p"\n\n\n\n\n\napp "web" {\n  build { use = "railpack" }\n}\n',
        {},
        'cloudstation.hcl:7: app "web": missing required block "deploy"',
    ),
    (
        "missing-build",
        'project = "p"\napp "web" {\n  deploy { use = "nomad-pack" }\n}\n',
        {},
        'cloudstation.hcl:2: app "web": missing required block "build"',
    ),
    (
        "missing-use",
        'project = "p"\napp "web" {\n  build { name = "x" }\n  deploy { use = "nomad-pack" }\n}\n',
        {},
        'cloudstation.hcl:3: app "web": build: missing required attribute "use"',
    ),
    (
        "use-not-string",
        'project = "p"\napp "web" {\n  build { use = 1 }\n  deploy { use = "nomad-pack" }\n}\n',
        {},
        'cloudstation.hcl:3: app "web": build: attribute "use": expected a plugin name, got number',
    ),
    (
        "unknown-variable",
        'project = "p"\napp "web" {\n  build {\n    use = "railpack"\n    name = var.nope\n  }\n'
        '  deploy { use = "nomad-pack" }\n}\n',
        {},
        'cloudstation.hcl:5: app "web": build: attribute "name": unknown variable "var.nope"',
    ),
    (
        "unknown-variable-in-template",
        'project = "p"\napp "web" {\n  build { use = "railpack" }\n  deploy {\n    use = "nomad-pack"\n'
        '    job = "x-${var.nope}"\n  }\n}\n',
        {},
        'cloudstation.hcl:6: app "web": deploy: attribute "job": unknown variable "var.nope"',
    ),
    (
        "unknown-function",
        'project = "p"\napp "web" {\n  build {\n    use = "railpack"\n    name = trim("x")\n  }\n'
        '  deploy { use = "nomad-pack" }\n}\n',
        {},
        'cloudstation.hcl:5: app "web": build: attribute "name": unknown function "trim" '
        "(available: concat, env, lower, upper)",
    ),
    (
        "function-arity",
        'project = lower("a", "b")\n' + APP,
        {},
        'cloudstation.hcl:1: attribute "project": lower() takes 1 argument, got 2',
    ),
    (
        "concat-mixed",
        'project = "p"\napp "web" {\n  path = concat("a", ["b"])\n  build { use = "a" }\n  deploy { use = "b" }\n}\n',
        {},
        'cloudstation.hcl:3: app "web": attribute "path": '
        "concat() expects all strings or all lists, got (string, list)",
    ),
    (
        "unsupported-operator",
        'project = "p"\napp "web" {\n  build {\n    use = "a"\n    n = 1 + 2\n  }\n  deploy { use = "b" }\n}\n',
        {},
        'cloudstation.hcl:5: app "web": build: attribute "n": unsupported syntax "+" in expression',
    ),
    (
        "bare-reference",
        'project = "p"\napp "web" {\n  build { use = railpack }\n  deploy { use = "b" }\n}\n',
        {},
        'cloudstation.hcl:3: app "web": build: attribute "use": unknown reference "railpack" '
        "(only var.<name> is supported)",
    ),
    (
        "template-directive",
        'project = "p"\napp "web" {\n  build {\n    use = "a"\n    s = "%{ if true }x%{ endif }"\n  }\n'
        '  deploy { use = "b" }\n}\n',
        {},
        'cloudstation.hcl:5: app "web": build: attribute "s": template directives (%{...}) are not supported; '
        "write %%{ for a literal %{",
    ),
    (
        "invalid-escape",
        'project = "p\\q"\n' + APP,
        {},
        'cloudstation.hcl:1: attribute "project": invalid escape sequence "\\q" in string',
    ),
    (
        "variable-without-value",
        'project = "p"\nvariable "token" {\n  env = ["TOKEN", "GH_TOKEN"]\n}\n' + APP,
        {},
        'cloudstation.hcl:2: variable "token": no value: none of TOKEN, GH_TOKEN is set and there is no default',
    ),
    (
        "variable-without-value-or-env",
        'project = "p"\nvariable "token" {\n  type = "string"\n}\n' + APP,
        {},
        'cloudstation.hcl:2: variable "token": no value: no default and no env',
    ),
    (
        "variable-wrong-default-type",
        'project = "p"\nvariable "port" {\n  type = "number"\n  default = "80"\n}\n' + APP,
        {},
        'cloudstation.hcl:4: variable "port": attribute "default": expected number, got string',
    ),
    (
        "variable-env-not-number",
        'project = "p"\nvariable "port" {\n  type = "number"\n  env = ["PORT"]\n}\n' + APP,
        {"PORT": "eighty"},
        'cloudstation.hcl:4: variable "port": environment variable PORT is not a valid number',
    ),
    (
        "variable-env-not-bool",
        'project = "p"\nvariable "debug" {\n  type = "bool"\n  env = ["DEBUG"]\n  default = false\n}\n' + APP,
        {"DEBUG": "yes"},
        'cloudstation.hcl:4: variable "debug": environment variable DEBUG is not a valid bool',
    ),
    (
        "variable-env-not-list",
        'project = "p"\nvariable "hosts" {\n  type = "list"\n  env = ["HOSTS"]\n}\n' + APP,
        {"HOSTS": '{"a": 1}'},
        'cloudstation.hcl:4: variable "hosts": environment variable HOSTS is not a valid list',
    ),
    (
        "variable-unknown-type",
        'project = "p"\nvariable "x" {\n  type = "int"\n  default = 1\n}\n' + APP,
        {},
        'cloudstation.hcl:3: variable "x": attribute "type": unknown type "int" '
        "(expected string, number, bool, list or map)",
    ),
    (
        "variable-references-variable",
        'project = "p"\nvariable "a" { default = "x" }\nvariable "b" {\n  default = var.a\n}\n' + APP,
        {},
        'cloudstation.hcl:4: variable "b": attribute "default": variables cannot reference other variables ("var.a")',
    ),
    (
        "variable-unknown-attribute",
        'project = "p"\nvariable "a" {\n  default = "x"\n  secret = true\n}\n' + APP,
        {},
        'cloudstation.hcl:4: variable "a": unknown attribute "secret" '
        "(expected type, default, env, sensitive, description)",
    ),
    (
        "variable-duplicate",
        'project = "p"\nvariable "a" { default = "x" }\nvariable "a" { default = "y" }\n' + APP,
        {},
        'cloudstation.hcl:3: duplicate variable "a" (first defined at line 2)',
    ),
    (
        "variable-no-label",
        'project = "p"\nvariable { default = "x" }\n' + APP,
        {},
        'cloudstation.hcl:2: block "variable" needs exactly one label: variable "NAME" { ... }',
    ),
    (
        "variable-sensitive-not-bool",
        'project = "p"\nvariable "a" {\n  default = "x"\n  sensitive = "yes"\n}\n' + APP,
        {},
        'cloudstation.hcl:4: variable "a": attribute "sensitive": expected bool, got string',
    ),
    (
        "unknown-top-level-attribute",
        'project = "p"\nname = "x"\n' + APP,
        {},
        'cloudstation.hcl:2: unknown attribute "name" (expected "project")',
    ),
    (
        "unknown-top-level-block",
        'project = "p"\nlocals {\n  a = 1\n}\n' + APP,
        {},
        'cloudstation.hcl:2: unknown block "locals" (expected "variable" or "app")',
    ),
    (
        "unknown-app-attribute",
        'project = "p"\napp "web" {\n  image = "x"\n  build { use = "a" }\n  deploy { use = "b" }\n}\n',
        {},
        'cloudstation.hcl:3: app "web": unknown attribute "image" (expected "path" or "labels")',
    ),
    (
        "unknown-app-block",
        'project = "p"\napp "web" {\n  build { use = "a" }\n  deploy { use = "b" }\n  hooks { x = 1 }\n}\n',
        {},
        'cloudstation.hcl:5: app "web": unknown block "hooks" '
        '(expected "build", "registry", "deploy", "release", "config")',
    ),
    (
        "duplicate-component",
        'project = "p"\napp "web" {\n  build { use = "a" }\n  build { use = "c" }\n  deploy { use = "b" }\n}\n',
        {},
        'cloudstation.hcl:4: app "web": duplicate block "build" (first at line 3)',
    ),
    (
        "component-with-label",
        'project = "p"\napp "web" {\n  build "x" { use = "a" }\n  deploy { use = "b" }\n}\n',
        {},
        'cloudstation.hcl:3: app "web": block "build" takes no label',
    ),
    (
        "nested-block-in-component",
        'project = "p"\napp "web" {\n  build { use = "a" }\n  deploy {\n    use = "b"\n    network {\n'
        "      port = 80\n    }\n  }\n}\n",
        {},
        'cloudstation.hcl:6: app "web": deploy: unexpected block "network" (write an attribute: network = { ... })',
    ),
    (
        "duplicate-attribute",
        'project = "p"\napp "web" {\n  build {\n    use = "a"\n    use = "c"\n  }\n  deploy { use = "b" }\n}\n',
        {},
        'cloudstation.hcl:5: app "web": build: duplicate attribute "use" (first set at line 4)',
    ),
    (
        "config-env-not-map",
        'project = "p"\napp "web" {\n  build { use = "a" }\n  deploy { use = "b" }\n  config {\n'
        '    env = ["A=1"]\n  }\n}\n',
        {},
        'cloudstation.hcl:6: app "web": config: attribute "env": expected map, got list',
    ),
    (
        "config-env-value-list",
        'project = "p"\napp "web" {\n  build { use = "a" }\n  deploy { use = "b" }\n  config {\n'
        "    env = { A = [1] }\n  }\n}\n",
        {},
        'cloudstation.hcl:6: app "web": config: attribute "env": key "A": expected string, got list',
    ),
    (
        "config-unknown-attribute",
        'project = "p"\napp "web" {\n  build { use = "a" }\n  deploy { use = "b" }\n  config {\n'
        "    vars = {}\n  }\n}\n",
        {},
        'cloudstation.hcl:6: app "web": config: unknown attribute "vars" (expected "env")',
    ),
    (
        "labels-null-value",
        'project = "p"\napp "web" {\n  labels = { team = null }\n  build { use = "a" }\n  deploy { use = "b" }\n}\n',
        {},
        'cloudstation.hcl:3: app "web": attribute "labels": key "team": expected string, got null',
    ),
    (
        "interpolate-list",
        'project = "p"\nvariable "l" { default = ["a"] }\napp "web" {\n  path = "x/${var.l}"\n'
        '  build { use = "a" }\n  deploy { use = "b" }\n}\n',
        {},
        'cloudstation.hcl:4: app "web": attribute "path": cannot convert a list to a string',
    ),
]


@pytest.mark.parametrize(("text", "env", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_file_has_exact_located_message(text: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "cloudstation.hcl", env)
    assert str(info.value) == message
    assert "\n" not in str(info.value)
    assert info.value.exit_code == ExitCode.USAGE


SECRET = "s3cr3t-Value"

SENSITIVE_CASES: list[tuple[str, str, dict[str, str]]] = [
    (
        "wrong-type-from-env",
        'project = "p"\nvariable "pw" {\n  type = "number"\n  sensitive = true\n  env = ["PW"]\n}\n' + APP,
        {"PW": SECRET},
    ),
    (
        "secret-in-bad-label",
        'project = "p"\nvariable "pw" {\n  sensitive = true\n  env = ["PW"]\n}\n'
        'app "web" {\n  labels = { x = ["${var.pw}"] }\n  build { use = "a" }\n  deploy { use = "b" }\n}\n',
        {"PW": SECRET},
    ),
    (
        "secret-as-project-name",
        'variable "pw" {\n  sensitive = true\n  env = ["PW"]\n}\nproject = upper(var.pw)\n' + APP,
        {"PW": "bad value " + SECRET},
    ),
    (
        "secret-as-function-name-arg",
        'project = "p"\nvariable "pw" {\n  sensitive = true\n  env = ["PW"]\n}\n'
        'app "web" {\n  path = concat(var.pw, [var.pw])\n  build { use = "a" }\n  deploy { use = "b" }\n}\n',
        {"PW": SECRET},
    ),
    (
        "secret-as-map-key",
        'project = "p"\nvariable "pw" {\n  sensitive = true\n  env = ["PW"]\n}\n'
        'app "web" {\n  labels = { "${var.pw}" = null }\n  build { use = "a" }\n  deploy { use = "b" }\n}\n',
        {"PW": SECRET},
    ),
    (
        "secret-literal-default-syntax-error",
        'project = "p"\nvariable "pw" {\n  sensitive = true\n  default = "' + SECRET + "\n}\n" + APP,
        {},
    ),
]


@pytest.mark.parametrize(("text", "env"), [c[1:] for c in SENSITIVE_CASES], ids=[c[0] for c in SENSITIVE_CASES])
def test_sensitive_value_never_in_error_message(text: str, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "cloudstation.hcl", env)
    assert SECRET.lower() not in str(info.value).lower()
    assert str(info.value).startswith("cloudstation.hcl:")
