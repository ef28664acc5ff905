"""Params → the cloudstation pack's variables (``packvars``), field by field against what the original's
generator writes (Cloudstation-cli v2.0.1, ``internal/hclgen/generator.go`` ``GenerateVarsFile``).

Each case is one of the original's tests (named in its comment) turned into the complete variable set it
produces; where we deliberately differ (the original's plain bugs, listed in ``packs/cloudstation/README.md``)
the comment says so. Every result fits the pack's ``variables.hcl`` and survives the HCL writer exactly.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cloudstation.config import hclwriter
from cloudstation.dispatch.packvars import duration, pack_variables
from cloudstation.dispatch.params_models import DeployImageParams, NetworkPort
from cloudstation.plugins.builtin.packs import embedded_pack_dir
from cloudstation.plugins.builtin.packs.schema import load_variables, read_vars_file, vars_problems
from tests.dispatch.dispatch_kit import CANARIES, NOMAD_TOKEN, REGISTRY_PASSWORD, ROLE_ID, SECRET_ID
from tests.dispatch.packvars_cases import CASES, b64, port, variables_for

PACK_VARIABLES = load_variables(embedded_pack_dir())
NASTY = 'say "hi" \\ C:\\path ${HOME} %{ if x } $${x} %%{y} {{ .Env }} [[ var ]]\nline 2\r\n\ttab é ✓\n'


@pytest.mark.parametrize(("document", "builder", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_params_to_the_original_vars(document: dict[str, Any], builder: str, expected: dict[str, Any]) -> None:
    assert variables_for(document, builder) == expected


@pytest.mark.parametrize(("document", "builder"), [c[1:3] for c in CASES], ids=[c[0] for c in CASES])
def test_every_result_fits_the_pack_and_the_writer(document: dict[str, Any], builder: str, tmp_path: Path) -> None:
    values = {**variables_for(document, builder), "image": "web:1"}
    assert vars_problems(values, PACK_VARIABLES) == []
    path = tmp_path / "vars.hcl"
    path.write_text(hclwriter.dumps(values))
    assert read_vars_file(path) == values  # exact through the writer and python-hcl2


def test_field_order_is_the_originals() -> None:
    """generator_test.go TestGenerateVarsFile_FieldOrdering: the cs-runner order of the vars file."""
    document = {
        "replicaCount": 2,
        "secretsPath": "secret/path",
        "restartMode": "fail",
        "restartAttempts": 3,
        "cpu": 100,
        "ram": 512,
        "node_pool": "default",
        "ownerId": "usr_123",
        "deploymentId": "dep_456",
        "projectId": "prj_789",
        "serviceId": "svc_012",
        "sharedSecretPath": "secret/shared",
        "usesKvEngine": True,
        "ownerUsesKvEngine": False,
        "regions": "us-west",
        "privateRegistry": "ghcr.io",
        "docker_user": "1000",
        "command": "/bin/sh",
        "clusterDomain": "c.io",
    }
    order = list(variables_for(document, "csdocker"))
    original = [
        "job_name",
        "count",
        "secret_path",
        "restart_attempts",
        "restart_mode",
        "resources",
        "node_pool",
        "user_id",
        "alloc_id",
        "project_id",
        "service_id",
        "shared_secret_path",
        "uses_kv_engine",
        "owner_uses_kv_engine",
        "regions",
        "private_registry",
        "user",
        "command",
        "use_csi_volume",
        "config_files",
        "template",
        "cluster_domain",
        "network",
        "use_tls",
        "vault_linked_secrets",
    ]
    assert [name for name in order if name in original] == original


@pytest.mark.parametrize(
    ("mode", "attempts", "expected"),
    [
        # generator_test.go TestGenerateVarsFile_RestartModes (+ explicit attempts)
        ("fail", 0, (3, "fail")),
        ("delay", 0, (3, "delay")),
        ("never", 0, (0, "fail")),
        ("never", 5, (0, "fail")),
        ("", 0, (3, "fail")),
        ("fail", 5, (5, "fail")),
        ("bogus", 2, (2, "fail")),
    ],
)
def test_restart_modes(mode: str, attempts: int, expected: tuple[int, str]) -> None:
    values = variables_for({"restartMode": mode, "restartAttempts": attempts})
    assert (values["restart_attempts"], values["restart_mode"]) == expected
    assert values["restart"] == {"attempts": expected[0], "interval": "3m", "delay": "15s", "mode": expected[1]}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        # generator_edge_cases_test.go TestGenerateNetworking_IntervalWithoutTimeUnit ("1d": the original
        # kept it, which Nomad cannot parse; we write hours)
        ("30", "30s"),
        ("15", "15s"),
        ("30s", "30s"),
        ("5m", "5m"),
        ("1h", "1h"),
        ("1d", "24h"),
        ("500ms", "500ms"),
        ("abc", "30s"),
        ("", "30s"),
        (" 10s ", "10s"),
    ],
)
def test_check_durations(given: str, expected: str) -> None:
    assert duration(given) == expected
    network = [{"portNumber": 80, "portType": "http", "health_check": {"interval": given, "timeout": given}}]
    check = variables_for({"networks": network})["network"][0]["health_check"]
    assert (check["interval"], check["timeout"]) == (expected, expected)


@pytest.mark.parametrize(
    ("port_type", "has_check", "check_type", "expected_type", "expected_has"),
    [
        # generator_edge_cases_test.go TestGenerateNetworking_InvalidHealthCheckTypeFallback / MixedCase
        # (the original kept "HTTP" as given; Nomad wants lower case)
        ("http", "no", "no", "tcp", "no"),
        ("http", "none", "none", "tcp", "none"),
        ("http", "", "", "http", "http"),
        ("http", "invalid", "invalid", "tcp", "invalid"),
        ("http", "123", "123", "tcp", "123"),
        ("http", "HTTP", "HTTP", "http", "HTTP"),
        ("http", "GrPc", "GrPc", "grpc", "GrPc"),
        ("tcp", "", "", "tcp", "tcp"),
        ("tcp", "tcp", "script", "script", "tcp"),
        ("udp", "", "", "tcp", "udp"),
    ],
)
def test_health_check_types(
    port_type: str, has_check: str, check_type: str, expected_type: str, expected_has: str
) -> None:
    network = {
        "portNumber": 80,
        "portType": port_type,
        "has_health_check": has_check,
        "health_check": {"type": check_type},
    }
    entry = variables_for({"networks": [network]})["network"][0]
    assert (entry["health_check"]["type"], entry["has_health_check"]) == (expected_type, expected_has)


def test_volume_without_index_and_without_mount_paths() -> None:
    """generator_test.go TestGenerateVarsFile_CSIVolumeIDCleaning; no mount path: the pack's /data."""
    assert (
        variables_for({"csiVolume": [{"id": "vol_abc123[0]", "mountPaths": ["/data"]}]})["volume_name"] == "vol_abc123"
    )
    values = variables_for({"csiVolume": [{"id": "plain-id"}, {"id": "vol_other[1]"}]})
    assert (values["use_csi_volume"], values["volume_name"]) == (True, "plain-id")
    assert "volume_mount_destination" not in values


def test_omitted_when_empty() -> None:
    """generator_test.go TestGenerateVarsFile_EmptyClusterDomain, ConditionalFields, TLS disabled."""
    values = variables_for(
        {"tls": {"cert_path": "c"}, "consul": {"tags": ["x"], "linkedServices": [{"variableName": "A"}]}}
    )
    for name in (
        "cluster_domain",
        "count",
        "resources",
        "tls",
        "consul_service_name",
        "consul_linked_services",
        "update",
    ):
        assert name not in values, name
    assert values["use_tls"] is False  # no PKI path: nothing to issue


def test_image_params_give_the_same_vars() -> None:
    document = {
        "cpu": 100,
        "ram": 256,
        "build": {"startCommand": "serve"},
        "vaultLinkedSecrets": [{"secret": "K", "template": "v"}],
    }
    image = msgspec.convert({"jobId": "test-job", **document}, DeployImageParams)
    values = pack_variables(image, [NetworkPort(port_number=80, port_type="http")], builder="noop")
    assert values["args"] == ["export K=v;serve"]
    assert values["network"] == [port(80, "http", "http")]


def test_nasty_strings_round_trip_exactly(tmp_path: Path) -> None:
    binary = bytes(range(256))
    document = {
        "configFiles": [
            {"path": "raw.txt", "content": NASTY},
            {"path": "bin.dat", "content": base64.b64encode(binary).decode()},
            {"path": 'we"ird ${x} %{y} \\ é.conf', "content": b64("x")},
        ],
        "templateStringVariables": [{"name": "URL", "pattern": NASTY, "serviceName": "db"}],
        "vaultLinkedSecrets": [{"secret": "S", "template": NASTY}],
        "build": {"startCommand": NASTY},
    }
    values = {**variables_for(document, "csdocker"), "image": "web:1"}
    path = tmp_path / "vars.hcl"
    path.write_text(hclwriter.dumps(values))
    read = read_vars_file(path)
    assert read == values and vars_problems(read, PACK_VARIABLES) == []
    files = read["config_files"]
    assert isinstance(files, list)
    assert [base64.b64decode(f["content"]) for f in files] == [NASTY.encode(), binary, b"x"]
    assert read["args"] == [f"export S={NASTY};{NASTY}"]


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
        "tls": {"pka_path": "pki/issue/x", "cert_path": "local/c.pem", "key_path": "local/c.key"},
        "build": {"privateRegistry": True, "registryUsername": "robot", "registryPassword": REGISTRY_PASSWORD},
        "registry": {"registryToken": NOMAD_TOKEN},
    }
    for image in (True, False):
        text = hclwriter.dumps(variables_for(document, "csdocker", image=image))
        assert "private_registry" in text and "secret_path" in text
        for canary in CANARIES:
            assert canary not in text, canary
        assert "password" not in text.lower()
