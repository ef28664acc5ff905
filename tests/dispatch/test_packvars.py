"""Params → the cloudstation pack's variables (``packvars``): exact values for config files, runtime
secrets, template strings, TLS, Consul linked services, regions and the private registry; every result
valid against the pack's ``variables.hcl``; free text exact through the HCL writer; no secret in vars."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cloudstation.config import hclwriter
from cloudstation.dispatch.packvars import pack_variables
from cloudstation.dispatch.params_models import DeployImageParams, DeployRepositoryParams
from cloudstation.plugins.builtin.packs import embedded_pack_dir
from cloudstation.plugins.builtin.packs.schema import load_variables, read_vars_file, vars_problems
from tests.dispatch.dispatch_kit import CANARIES, NOMAD_TOKEN, REGISTRY_PASSWORD, ROLE_ID, SECRET_ID

PACK_VARIABLES = load_variables(embedded_pack_dir())
NASTY = 'say "hi" \\ C:\\path ${HOME} %{ if x } $${x} %%{y} {{ .Env }} [[ var ]]\nline 2\r\n\ttab é ✓\n'
# Added by pack_variables for every deployment (not under test here).
BASE_KEYS = {"job_type", "count", "meta", "resources", "network"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def params_of(document: dict[str, Any]) -> DeployImageParams:
    """A deploy-image params model from its JSON document (camelCase names, as dispatched)."""
    return msgspec.convert({"jobId": "web", "imageName": "web", **document}, DeployImageParams)


def mapped(document: dict[str, Any]) -> dict[str, Any]:
    """The pack variables for ``document`` minus the ones every deployment has."""
    variables = pack_variables(params_of(document), [])
    return {key: value for key, value in variables.items() if key not in BASE_KEYS}


CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("nothing", {}, {}),
    # configFiles: base64 content passes through; other text is encoded; paths lose their leading "/"
    (
        "config files",
        {
            "configFiles": [
                {"path": "/etc/app/config.yaml", "content": b64("a: 1\n")},
                {"path": "conf/plain.ini", "content": "[x]\nkey = ${v}\n"},
                {"path": "empty", "content": ""},
            ]
        },
        {
            "config_files": [
                {"path": "etc/app/config.yaml", "content": b64("a: 1\n")},
                {"path": "conf/plain.ini", "content": b64("[x]\nkey = ${v}\n")},
                {"path": "empty", "content": ""},
            ]
        },
    ),
    (
        "config files outside the task or not mountable are dropped",
        {
            "configFiles": [
                {"path": "", "content": "x"},
                {"path": "/", "content": "x"},
                {"path": "../escape", "content": "x"},
                {"path": "a/../../b", "content": "x"},
                {"path": "a:b", "content": "x"},
                {"path": "new\nline", "content": "x"},
            ]
        },
        {},
    ),
    # runtime secrets: the service's path as given, shared and linked paths under kv/data/<project>/
    (
        "secrets paths",
        {
            "projectId": "prj-1",
            "secretsPath": "kv/data/prj-1/svc-1",
            "sharedSecretPath": "shared",
            "vaultLinkedSecretPaths": [
                {"prefix": "DB_", "secretPath": "svc-db"},
                {"prefix": "", "secretPath": "/svc-cache/"},
                {"prefix": "bad prefix", "secretPath": "svc-x"},
                {"prefix": "X_", "secretPath": ""},
                {"prefix": "Y_", "secretPath": 'a"}}{{'},
            ],
            "usesKvEngine": True,
            "ownerUsesKvEngine": False,
        },
        {
            "vault_env": [
                {"path": "kv/data/prj-1/svc-1", "prefix": ""},
                {"path": "kv/data/prj-1/shared", "prefix": ""},
                {"path": "kv/data/prj-1/svc-db", "prefix": "DB_"},
                {"path": "kv/data/prj-1/svc-cache", "prefix": ""},
            ],
            "vault_policies": ["prj-1"],
        },
    ),
    (
        "shared secrets without a project",
        {"sharedSecretPath": "shared"},
        {"vault_env": [{"path": "kv/data/shared", "prefix": ""}]},
    ),
    (
        "template string variables",
        {
            "projectId": "prj-1",
            "templateStringVariables": [
                {
                    "name": "DATABASE_URL",
                    "pattern": "mysql://{{ $USER }}:{{ $PASS }}@{{ .Address }}:{{ .Port }}/db",
                    "serviceName": "cst-mariadb-3306",
                    "serviceSecretPath": "img_6414",
                    "linkedVars": ["USER", "PASS", "not-an-identifier"],
                },
                {"name": "CACHE", "pattern": "{{ .Address }}", "serviceName": "redis-6379"},
                {"name": "bad name", "pattern": "x", "serviceName": "s"},
                {"name": "NO_SERVICE", "pattern": "x", "serviceName": ""},
                {"name": "BAD_SERVICE", "pattern": "x", "serviceName": 'a" }}'},
            ],
        },
        {
            "template_strings": [
                {
                    "name": "DATABASE_URL",
                    "pattern": "mysql://{{ $USER }}:{{ $PASS }}@{{ .Address }}:{{ .Port }}/db",
                    "service_name": "cst-mariadb-3306",
                    "secret_path": "kv/data/prj-1/img_6414",
                    "linked_vars": ["USER", "PASS"],
                },
                {
                    "name": "CACHE",
                    "pattern": "{{ .Address }}",
                    "service_name": "redis-6379",
                    "secret_path": "",
                    "linked_vars": [],
                },
            ],
            "vault_policies": ["prj-1"],
        },
    ),
    (
        "tls",
        {
            "projectId": "prj-1",
            "tls": {
                "cert_path": "local/certs/kafka.pem",
                "key_path": "local/certs/kafka.key",
                "common_name": "backend.clients.kafka.acme.com",
                "pka_path": "kafka-int-ca/issue/kafka-client",
                "ttl": "3h",
            },
        },
        {
            "tls": [
                {
                    "cert_path": "local/certs/kafka.pem",
                    "key_path": "local/certs/kafka.key",
                    "common_name": "backend.clients.kafka.acme.com",
                    "pka_path": "kafka-int-ca/issue/kafka-client",
                    "ttl": "3h",
                }
            ],
            "vault_policies": ["prj-1"],
        },
    ),
    ("tls without a PKI path", {"tls": {"cert_path": "local/c.pem", "key_path": "local/c.key"}}, {}),
    ("tls without files", {"tls": {"pka_path": "pki/issue/x"}}, {}),
    ("tls with template code", {"tls": {"pka_path": "pki/issue/x", "cert_path": "{{ x }}"}}, {}),
    (
        "consul linked services",
        {
            "consul": {
                "linkedServices": [
                    {"variableName": "DB_HOST", "consulServiceName": "cst-pg-5432_HOST"},
                    {"variableName": "DB_PORT", "consulServiceName": "cst-pg-5432_PORT"},
                    {"variableName": "API", "consulServiceName": "api-80"},
                    {"variableName": "bad-name", "consulServiceName": "api-80"},
                    {"variableName": "X", "consulServiceName": ""},
                    {"variableName": "Y", "consulServiceName": '" }}{{ secret "x'},
                ]
            }
        },
        {
            "consul_linked_services": [
                {"key": "DB_HOST", "value": "cst-pg-5432_HOST"},
                {"key": "DB_PORT", "value": "cst-pg-5432_PORT"},
                {"key": "API", "value": "api-80"},
            ]
        },
    ),
    # regions: node classes (a constraint), not the Nomad region; the original ignored them for GPU jobs
    ("regions", {"regions": "eu-west,us-east"}, {"regions": "eu-west,us-east"}),
    ("regions of a gpu job", {"regions": "eu-west", "gpu": 1}, {}),
    # private registry: names only; the credentials stay in Vault
    (
        "private registry",
        {"projectId": "prj-1", "privateRegistry": "team-registry", "privateRegistryProvider": "dockerhub"},
        {
            "private_registry": "team-registry",
            "private_registry_provider": "dockerhub",
            "vault_policies": ["team-registry", "prj-1"],
        },
    ),
    (
        "private registry without a provider or project",
        {"privateRegistry": "team-registry"},
        {"private_registry": "team-registry", "vault_policies": ["team-registry"]},
    ),
    ("provider alone", {"privateRegistryProvider": "dockerhub"}, {}),
    ("registry name with template code", {"privateRegistry": "r{{ x }}"}, {}),
    # not carried: the original exported these in the container's shell arguments (see the report)
    ("vault linked secrets", {"vaultLinkedSecrets": [{"secret": "DSN", "template": "pg://$USER@db"}]}, {}),
]


@pytest.mark.parametrize(("document", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_params_to_pack_variables(document: dict[str, Any], expected: dict[str, Any]) -> None:
    assert mapped(document) == expected


@pytest.mark.parametrize("document", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_every_mapping_fits_the_pack(document: dict[str, Any], tmp_path: Path) -> None:
    values = {"job_name": "web", "image": "web:1", **pack_variables(params_of(document), [])}
    assert vars_problems(values, PACK_VARIABLES) == []
    path = tmp_path / "vars.hcl"
    path.write_text(hclwriter.dumps(values))
    assert read_vars_file(path) == values  # exact through the writer and python-hcl2


def test_regions_are_no_longer_the_nomad_region() -> None:
    assert "region" not in pack_variables(params_of({"regions": "eu"}), [])


def test_nasty_config_contents_round_trip_exactly(tmp_path: Path) -> None:
    binary = bytes(range(256))
    document = {
        "configFiles": [
            {"path": "raw.txt", "content": NASTY},
            {"path": "encoded.txt", "content": b64(NASTY)},
            {"path": "bin.dat", "content": base64.b64encode(binary).decode()},
            {"path": 'we"ird ${x} %{y} \\ é.conf', "content": b64("x")},
        ]
    }
    values = {"job_name": "web", "image": "web:1", **pack_variables(params_of(document), [])}
    path = tmp_path / "vars.hcl"
    path.write_text(hclwriter.dumps(values))
    read = read_vars_file(path)
    assert read == values
    assert vars_problems(read, PACK_VARIABLES) == []
    files = read["config_files"]
    assert isinstance(files, list)
    decoded = [base64.b64decode(f["content"]) for f in files]
    assert decoded == [NASTY.encode(), NASTY.encode(), binary, b"x"]
    assert [f["path"] for f in files] == ["raw.txt", "encoded.txt", "bin.dat", 'we"ird ${x} %{y} \\ é.conf']


def test_nasty_template_patterns_round_trip_exactly(tmp_path: Path) -> None:
    document = {
        "templateStringVariables": [{"name": "URL", "pattern": NASTY, "serviceName": "db"}],
        "consul": {"linkedServices": [{"variableName": "DB", "consulServiceName": "db-5432"}]},
    }
    values = {"job_name": "web", "image": "web:1", **pack_variables(params_of(document), [])}
    path = tmp_path / "vars.hcl"
    path.write_text(hclwriter.dumps(values))
    assert read_vars_file(path) == values
    assert values["template_strings"][0]["pattern"] == NASTY


def test_no_secret_reaches_the_vars() -> None:
    document = {
        "projectId": "prj-1",
        "nomadToken": NOMAD_TOKEN,
        "roleId": ROLE_ID,
        "secretId": SECRET_ID,
        "secretsPath": "kv/data/prj-1/svc-1",
        "sharedSecretPath": "shared",
        "privateRegistry": "team-registry",
        "privateRegistryProvider": "dockerhub",
        "vaultLinkedSecrets": [{"secret": "DSN", "template": REGISTRY_PASSWORD}],
        "tls": {"pka_path": "pki/issue/x", "cert_path": "local/c.pem", "key_path": "local/c.key"},
        "build": {"privateRegistry": True, "registryUsername": "robot", "registryPassword": REGISTRY_PASSWORD},
        "registry": {"registryToken": NOMAD_TOKEN},
    }
    for model in (DeployImageParams, DeployRepositoryParams):
        params = msgspec.convert({"jobId": "web", "imageName": "web", **document}, model)
        text = hclwriter.dumps(pack_variables(params, []))
        assert "private_registry" in text and "vault_env" in text
        for canary in CANARIES:
            assert canary not in text, canary
        assert "password" not in text.lower()


def test_template_interpolates_only_nomad_runtime_values() -> None:
    """``${...}`` in the rendered job is Nomad's runtime interpolation: only these names, never pack data."""
    template = (embedded_pack_dir() / "templates" / "cloudstation.nomad.tpl").read_text()
    runtime = re.findall(r'"\$\{([A-Za-z0-9_.]+)\}"', template)
    assert set(runtime) == {"node.class", "device.model", "registry_username", "registry_password"}
    assert template.count("${") == len(runtime) + 3  # and the helper doubling "${" in free text (+ its comment)
    variables = (embedded_pack_dir() / "variables.hcl").read_text()
    assert "${" not in variables and "%{" not in variables  # descriptions are not templates
