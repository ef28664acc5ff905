"""Tests of the dispatch params: lenient decoding, validation messages, garbage input, no value leaks."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from msgspec import inspect as mi

from cloudstation.dispatch.params import (
    ParamsError,
    PartialIdentity,
    Task,
    decode_params,
    extract_identity,
    parse_task,
)
from cloudstation.dispatch.params_models import (
    BuildOptions,
    DeployImageParams,
    DeployRepositoryParams,
    DestroyJobPackParams,
    HealthCheck,
    NetworkPort,
)
from cloudstation.errors import ExitCode, UsageError
from cloudstation.vocabulary import DESTROY_REASONS

NO_ENV: dict[str, str] = {}

REPO_MIN: dict[str, Any] = {
    "jobId": "svc-nomad-job",
    "repository": "acme/web",
    "branch": "main",
    "deploymentId": "dep-1",
    "serviceId": "svc-1",
    "deploymentJobId": 42,
}
IMAGE_MIN: dict[str, Any] = {
    "jobId": "svc-nomad-job",
    "imageName": "nginx",
    "deploymentId": "dep-1",
    "serviceId": "svc-1",
    "deploymentJobId": 42,
}
DESTROY_MIN: dict[str, Any] = {
    "jobs": [{"jobId": "j1", "serviceId": "s1", "nomadAddress": "http://n:4646", "nomadToken": "tok"}],
    "reason": "delete",
}


def b64(document: object) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def repo(**changes: Any) -> DeployRepositoryParams:
    return decode_params("deploy-repository", json.dumps(REPO_MIN | changes), base64_encoded=False, env=NO_ENV)


def error_of(task: str, raw: bytes | str, *, base64_encoded: bool = False) -> ParamsError:
    with pytest.raises(ParamsError) as info:
        decode_params(task, raw, base64_encoded=base64_encoded, env=NO_ENV)
    return info.value


# ---------------------------------------------------------------------------------------------- tasks


def test_every_task_decodes_its_model_from_base64() -> None:
    cases: list[tuple[str, dict[str, Any], type[msgspec.Struct]]] = [
        ("deploy-repository", REPO_MIN, DeployRepositoryParams),
        ("redeploy-repository", REPO_MIN, DeployRepositoryParams),
        ("deploy-image", IMAGE_MIN, DeployImageParams),
        ("destroy-job-pack", DESTROY_MIN, DestroyJobPackParams),
    ]
    for task, document, model in cases:
        for raw in (b64(document), b64(document).encode()):
            assert type(decode_params(task, raw, base64_encoded=True, env=NO_ENV)) is model
        assert type(decode_params(task, json.dumps(document), base64_encoded=False, env=NO_ENV)) is model
        assert type(decode_params(Task(task), json.dumps(document).encode(), base64_encoded=False)) is model


def test_parse_task() -> None:
    assert parse_task("deploy-image") is Task.DEPLOY_IMAGE
    with pytest.raises(ParamsError) as info:
        parse_task("")
    assert str(info.value).startswith("dispatch: no task given (expected one of deploy-repository,")


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ("deploy", 'dispatch: unknown task "deploy" (expected one of '),
        ("Deploy-Image", 'dispatch: unknown task "Deploy-Image" (expected one of '),
        ("rm -rf /; canary", "dispatch: unknown task (expected one of "),
        ("x" * 41, "dispatch: unknown task (expected one of "),
    ],
)
def test_unknown_task_is_a_usage_error(task: str, message: str) -> None:
    err = error_of(task, json.dumps(REPO_MIN))
    assert isinstance(err, UsageError)
    assert err.exit_code == ExitCode.USAGE
    assert str(err) == message + "deploy-repository, redeploy-repository, deploy-image, destroy-job-pack)"


# ---------------------------------------------------------------------------------------- lenient input


@pytest.mark.parametrize(
    ("changes", "attribute", "expected"),
    [
        ({"cpu": 500}, "cpu", 500),
        ({"cpu": "500"}, "cpu", 500),
        ({"cpu": " 500 "}, "cpu", 500),
        ({"cpu": ""}, "cpu", 0),
        ({"cpu": None}, "cpu", 0),
        ({"ram": 1.0e6}, "ram", 1_000_000),
        ({"ram": "1.0e6"}, "ram", 1_000_000),
        ({"ram": "2048.0"}, "ram", 2048),
        ({"gpu": -1}, "gpu", -1),
        ({"deploymentJobId": "77"}, "deployment_job_id", 77),
        ({"deploymentJobId": 1.2e10}, "deployment_job_id", 12_000_000_000),
        ({"deploymentJobId": 2**63 - 1}, "deployment_job_id", 2**63 - 1),
        ({"replicaCount": "3"}, "replica_count", 3),
        ({"restartAttempts": ""}, "restart_attempts", 0),
        ({"ownerId": 12}, "owner_id", "12"),
        ({"ownerId": 12.0}, "owner_id", "12"),
        ({"ownerId": 1.5e9}, "owner_id", "1500000000"),
        ({"ownerId": "abc-12"}, "owner_id", "abc-12"),
        ({"userId": 5}, "user_id", "5"),
        ({"userId": "5"}, "user_id", "5"),
        ({"userId": 2.5}, "user_id", "2.5"),
        ({"teamId": 9}, "team_id", "9"),
        ({"jobId": 123}, "job_id", "123"),
        ({"regions": "eu,us"}, "regions", "eu,us"),
        ({"usesKvEngine": "true"}, "uses_kv_engine", True),
        ({"usesKvEngine": "FALSE"}, "uses_kv_engine", False),
        ({"usesKvEngine": False}, "uses_kv_engine", False),
        ({"usesKvEngine": None}, "uses_kv_engine", None),
        ({"ownerUsesKvEngine": ""}, "owner_uses_kv_engine", False),
        ({"provider": "gitlab"}, "provider", "gitlab"),
        ({"provider": ""}, "provider", "github"),
        ({"provider": None}, "provider", "github"),
        ({"node_pool": "gpu"}, "node_pool", "gpu"),
        ({"gpu_model": "a100"}, "gpu_model", "a100"),
        ({"docker_user": "1000:1000"}, "docker_user", "1000:1000"),
        ({"entrypoint": ["sh", "-c", None]}, "entrypoint", ("sh", "-c")),
    ],
)
def test_lenient_scalars(changes: dict[str, Any], attribute: str, expected: object) -> None:
    assert getattr(repo(**changes), attribute) == expected


def test_provider_defaults_to_github_and_unknown_fields_are_ignored() -> None:
    params = repo(somethingNew={"deep": [1, 2]}, nodePool="camel-is-not-the-name")
    assert params.provider == "github"
    assert params.node_pool == ""


def test_nested_models_are_lenient_too() -> None:
    params = repo(
        networks=[
            {
                "portNumber": "3000",
                "portType": "http",
                "public": "true",
                "domain": "a.example.com",
                "custom_domain": "www.example.com",
                "has_health_check": True,
                "health_check": {"type": "http", "path": "/", "interval": 30, "timeout": "5s", "port": ""},
            },
            None,
            {"portNumber": 5432.0, "portType": "tcp", "public": False, "has_health_check": "false"},
        ],
        consul={"serviceName": "web", "tags": ["a"], "servicePort": "80", "linkedServices": [{}]},
        csiVolume=[{"id": "vol", "mountPaths": ["/data"]}],
        jobConfig={"type": "cron", "cron": "* * * * *", "prohibit_overlap": "true", "meta_required": ["x"]},
        update={"maxParallel": "2", "canary": 1.0, "autoRevert": "true", "minHealthyTime": "10s"},
        tls={"cert_path": "c", "key_path": "k", "common_name": "cn", "pka_path": "p", "ttl": "24h"},
        configFiles=[{"path": "/etc/app.conf", "content": "x=1"}],
        build={"builder": "railpack", "buildArgs": {"A": 1, "B": True}, "disablePush": "true"},
        registry={"pack": "web", "registryToken": "rt", "useEmbedded": "true"},
        vaultLinkedSecretPaths=[{"prefix": "DB_", "secretPath": "kv/data/db"}],
        vaultLinkedSecrets=[{"secret": "s", "template": "t"}],
        templateStringVariables=[{"name": "n", "linkedVars": ["a"]}],
        nomadPackConfig={"anything": [1, {"x": None}]},
    )
    assert params.networks == (
        NetworkPort(
            port_number=3000,
            port_type="http",
            public=True,
            domain="a.example.com",
            custom_domain="www.example.com",
            has_health_check="true",
            health_check=HealthCheck(type="http", path="/", interval="30", timeout="5s", port=0),
        ),
        NetworkPort(port_number=5432, port_type="tcp", public=False, has_health_check="false"),
    )
    assert params.consul.service_port == 80
    assert params.consul.linked_services[0].consul_service_name == ""
    assert params.csi_volume[0].mount_paths == ("/data",)
    assert params.job_config is not None and params.job_config.prohibit_overlap is True
    assert params.job_config.meta_required == ("x",)
    assert params.update is not None and (params.update.max_parallel, params.update.canary) == (2, 1)
    assert params.update.auto_revert is True
    assert params.tls is not None and params.tls.ttl == "24h"
    assert params.config_files[0].content == "x=1"
    assert params.build == BuildOptions(builder="railpack", build_args={"A": "1", "B": "true"}, disable_push=True)
    assert params.registry.use_embedded is True
    assert params.vault_linked_secret_paths[0].secret_path == "kv/data/db"
    assert params.vault_linked_secrets[0].template == "t"
    assert params.template_string_variables[0].linked_vars == ("a",)
    assert params.nomad_pack_config == {"anything": [1, {"x": None}]}


def test_json_names_are_the_originals() -> None:
    encoded = json.loads(msgspec.json.encode(DeployRepositoryParams(networks=(NetworkPort(),))))
    names = (
        "jobId deploymentId serviceId teamId userId ownerId deploymentJobId projectId imageName imageTag "
        "deploy replicaCount nomadAddress nomadToken node_pool vaultAddress roleId secretId secretsPath "
        "sharedSecretPath usesKvEngine ownerUsesKvEngine vaultLinkedSecretPaths vaultLinkedSecrets registry "
        "privateRegistry privateRegistryProvider cpu ram gpu gpu_model networks consul csiVolume restartMode "
        "restartAttempts jobConfig command entrypoint docker_user update configFiles regions tls "
        "clusterDomain clusterTcpDomain backendUrl accessToken repository branch gitPass provider "
        "sourceType sourceUrl build"
    )
    for name in names.split():
        assert name in encoded, name
    assert set(encoded["networks"][0]) == {
        "portNumber",
        "portType",
        "public",
        "domain",
        "custom_domain",
        "has_health_check",
        "health_check",
    }
    build_names = (
        "builder dockerfilePath buildCommand startCommand rootDirectory buildArgs staticBuildEnv disablePush "
        "privateRegistry registryUrl registryNamespace registryUsername registryPassword"
    )
    assert set(encoded["build"]) == set(build_names.split())
    registry_names = "pack registryName registryRef registrySource registryTarget registryToken useEmbedded"
    assert set(encoded["registry"]) == set(registry_names.split())
    destroy = json.loads(
        msgspec.json.encode(decode_params("destroy-job-pack", json.dumps(DESTROY_MIN), base64_encoded=False))
    )
    assert destroy == DESTROY_MIN


def test_backend_url_and_access_token_fall_back_to_env(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"BACKEND_URL": "http://backend", "ACCESS_TOKEN": "env-token"}
    doc = json.dumps(REPO_MIN)
    params = decode_params("deploy-repository", doc, base64_encoded=False, env=env)
    assert (params.backend_url, params.access_token) == ("http://backend", "env-token")

    own = json.dumps(IMAGE_MIN | {"backendUrl": "http://mine", "accessToken": "mine"})
    params_image = decode_params("deploy-image", own, base64_encoded=False, env=env)
    assert (params_image.backend_url, params_image.access_token) == ("http://mine", "mine")

    assert decode_params("deploy-repository", doc, base64_encoded=False, env={}).backend_url == ""

    monkeypatch.setenv("BACKEND_URL", "http://from-os")
    monkeypatch.setenv("ACCESS_TOKEN", "os-token")
    params = decode_params("deploy-repository", doc, base64_encoded=False)
    assert (params.backend_url, params.access_token) == ("http://from-os", "os-token")


# ----------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("task", "document", "message", "field"),
    [
        ("deploy-repository", REPO_MIN | {"jobId": ""}, 'params: field "jobId" is required', "jobId"),
        ("redeploy-repository", REPO_MIN | {"jobId": None}, 'params: field "jobId" is required', "jobId"),
        ("deploy-repository", REPO_MIN | {"jobId": "  "}, 'params: field "jobId" is required', "jobId"),
        (
            "deploy-repository",
            {"repository": "", "branch": "", "deploymentId": "", "serviceId": ""},
            'params: field "jobId" is required',
            "jobId",
        ),
        (
            "deploy-repository",
            REPO_MIN | {"repository": ""},
            'params: field "repository" is required',
            "repository",
        ),
        ("deploy-repository", REPO_MIN | {"branch": ""}, 'params: field "branch" is required', "branch"),
        (
            "deploy-repository",
            REPO_MIN | {"repository": "", "branch": ""},
            'params: field "repository" is required',
            "repository",
        ),
        (
            "deploy-repository",
            REPO_MIN | {"sourceType": "local_upload", "repository": "", "branch": ""},
            'params: field "sourceUrl" is required when sourceType is "local_upload"',
            "sourceUrl",
        ),
        (
            "deploy-repository",
            REPO_MIN | {"deploymentId": ""},
            'params: field "deploymentId" is required',
            "deploymentId",
        ),
        (
            "deploy-repository",
            REPO_MIN | {"serviceId": ""},
            'params: field "serviceId" is required',
            "serviceId",
        ),
        ("deploy-image", IMAGE_MIN | {"jobId": ""}, 'params: field "jobId" is required', "jobId"),
        ("deploy-image", IMAGE_MIN | {"imageName": ""}, 'params: field "imageName" is required', "imageName"),
        (
            "deploy-image",
            IMAGE_MIN | {"imageName": "", "deploymentId": ""},
            'params: field "imageName" is required',
            "imageName",
        ),
        (
            "deploy-image",
            IMAGE_MIN | {"deploymentId": ""},
            'params: field "deploymentId" is required',
            "deploymentId",
        ),
        ("deploy-image", IMAGE_MIN | {"serviceId": ""}, 'params: field "serviceId" is required', "serviceId"),
        (
            "destroy-job-pack",
            {"reason": "delete"},
            'params: field "jobs": at least one job is required',
            "jobs",
        ),
        (
            "destroy-job-pack",
            {"jobs": [], "reason": "delete"},
            'params: field "jobs": at least one job is required',
            "jobs",
        ),
        (
            "destroy-job-pack",
            {"jobs": [None], "reason": "delete"},
            'params: field "jobs": at least one job is required',
            "jobs",
        ),
        ("destroy-job-pack", DESTROY_MIN | {"reason": ""}, 'params: field "reason" is required', "reason"),
    ],
)
def test_validation_errors(task: str, document: dict[str, Any], message: str, field: str) -> None:
    err = error_of(task, b64(document), base64_encoded=True)
    assert str(err) == message
    assert err.field == field
    assert err.exit_code == ExitCode.USAGE


def test_valid_variants() -> None:
    upload = repo(sourceType="local_upload", sourceUrl="https://minio/x.tgz", repository="", branch="")
    assert upload.source_url == "https://minio/x.tgz"
    for reason in (*DESTROY_REASONS, "archive", "Delete"):  # any non-empty reason, as the original
        params = decode_params("destroy-job-pack", json.dumps(DESTROY_MIN | {"reason": reason}), base64_encoded=False)
        assert params.reason == reason
        assert params.jobs[0].nomad_token == "tok"


@pytest.mark.parametrize(
    ("task", "changes", "message"),
    [
        ("deploy-repository", {"cpu": "abc"}, 'params: field "cpu": expected a number'),
        ("deploy-repository", {"cpu": True}, 'params: field "cpu": expected a number'),
        ("deploy-repository", {"cpu": [1]}, 'params: field "cpu": expected a number'),
        ("deploy-repository", {"cpu": 1.5}, 'params: field "cpu": expected a whole number'),
        ("deploy-repository", {"cpu": "1.5"}, 'params: field "cpu": expected a whole number'),
        ("deploy-repository", {"cpu": "NaN"}, 'params: field "cpu": expected a number'),
        ("deploy-repository", {"cpu": "1e999"}, 'params: field "cpu": expected a number'),
        (
            "deploy-repository",
            {"deploymentJobId": 2**63},
            'params: field "deploymentJobId": expected a number within 64 bits',
        ),
        (
            "deploy-repository",
            {"deploymentJobId": "9" * 5000},
            'params: field "deploymentJobId": expected a number',
        ),
        ("deploy-repository", {"networks": {"portNumber": 1}}, 'params: field "networks": expected a list'),
        ("deploy-repository", {"networks": "3000"}, 'params: field "networks": expected a list'),
        ("deploy-repository", {"networks": [3000]}, 'params: field "networks[0]": expected an object'),
        (
            "deploy-repository",
            {"networks": [{}, {"portNumber": "http"}]},
            'params: field "networks[1].portNumber": expected a number',
        ),
        (
            "deploy-repository",
            {"networks": [{"health_check": {"port": "x"}}]},
            'params: field "networks[0].health_check.port": expected a number',
        ),
        (
            "deploy-repository",
            {"networks": [{"public": "yes"}]},
            'params: field "networks[0].public": expected a boolean',
        ),
        ("deploy-repository", {"usesKvEngine": 1}, 'params: field "usesKvEngine": expected a boolean'),
        ("deploy-repository", {"jobId": {"a": 1}}, 'params: field "jobId": expected a string'),
        ("deploy-repository", {"ownerId": [1]}, 'params: field "ownerId": expected a string'),
        ("deploy-repository", {"build": "railpack"}, 'params: field "build": expected an object'),
        (
            "deploy-repository",
            {"build": {"buildArgs": []}},
            'params: field "build.buildArgs": expected an object',
        ),
        (
            "deploy-repository",
            {"build": {"buildArgs": {"NPM_TOKEN": {"v": 1}}}},
            'params: field "build.buildArgs.NPM_TOKEN": expected a string',
        ),
        (
            "deploy-repository",
            {"build": {"staticBuildEnv": {"not a name": [1]}}},
            'params: field "build.staticBuildEnv.<key>": expected a string',
        ),
        ("deploy-repository", {"entrypoint": "sh"}, 'params: field "entrypoint": expected a list'),
        ("deploy-image", {"consul": {"tags": [{}]}}, 'params: field "consul.tags[0]": expected a string'),
        ("deploy-image", {"update": {"canary": "one"}}, 'params: field "update.canary": expected a number'),
        ("deploy-image", {"jobConfig": []}, 'params: field "jobConfig": expected an object'),
        ("destroy-job-pack", {"jobs": {"jobId": "x"}}, 'params: field "jobs": expected a list'),
        ("destroy-job-pack", {"jobs": ["x"]}, 'params: field "jobs[0]": expected an object'),
        (
            "destroy-job-pack",
            {"jobs": [{"nomadToken": {}}]},
            'params: field "jobs[0].nomadToken": expected a string',
        ),
    ],
)
def test_shape_errors_name_the_field(task: str, changes: dict[str, Any], message: str) -> None:
    base = {"deploy-image": IMAGE_MIN, "destroy-job-pack": DESTROY_MIN}.get(task, REPO_MIN)
    err = error_of(task, json.dumps(base | changes))
    assert str(err) == message
    assert err.field == message.split('"')[1]


@pytest.mark.parametrize(
    ("raw", "base64_encoded", "message"),
    [
        ("", True, "params: empty document"),
        ("  \n", True, "params: empty document"),
        (b"", False, "params: empty document"),
        (" ", False, "params: empty document"),
        ("not base64 at all!", True, "params: not valid standard base64"),
        ("eyJhIjoxfQ", True, "params: not valid standard base64"),  # missing padding
        (base64.urlsafe_b64encode(b'{"a":"\xfb\xff"}').decode(), True, "params: not valid standard base64"),
        ("eyJh\nIjoxfQ==", True, "params: not valid standard base64"),
        ("QEBAQA==", True, "params: not valid JSON (at byte 0)"),  # "@@@@"
        (base64.b64encode(b'{"jobId": "x"').decode(), True, "params: not valid JSON (truncated)"),
        ('{"jobId": }', False, "params: not valid JSON (at byte 10)"),
        (b'{"jobId": "\xff"}', False, "params: not valid JSON (not UTF-8)"),
        ('{"jobId": "\ud800"}', False, "params: not valid JSON (not UTF-8)"),
        ("eyJqb2JJZCI6ICL/In0=", True, "params: not valid JSON (not UTF-8)"),
        ("é", True, "params: not valid standard base64"),
        (b"\xff\xfe", True, "params: not valid standard base64"),
        ("[1, 2]", False, "params: expected a JSON object"),
        ('"a string"', False, "params: expected a JSON object"),
        ("null", False, "params: expected a JSON object"),
        (b64(REPO_MIN), False, "params: not valid JSON (at byte 0)"),  # base64 given as plain JSON
    ],
)
def test_garbage_input(raw: str | bytes, base64_encoded: bool, message: str) -> None:
    err = error_of("deploy-repository", raw, base64_encoded=base64_encoded)
    assert str(err) == message
    assert err.field is None
    assert err.exit_code == ExitCode.USAGE


# --------------------------------------------------------------------------------- identity, secrets


def test_identity_survives_a_failed_validation() -> None:
    doc = {
        "deploymentJobId": "7",
        "deploymentId": "d",
        "serviceId": "s",
        "ownerId": 3.0,
        "userId": 4,
        "cpu": "x",
    }
    err = error_of("deploy-image", b64(doc), base64_encoded=True)
    assert err.identity == PartialIdentity(
        deployment_job_id=7,
        deployment_id="d",
        service_id="s",
        owner_id="3",
        user_id="4",
        deployment_type="image",
    )
    assert err.identity.can_report_failure
    assert extract_identity("deploy-image", b64(doc), base64_encoded=True) == err.identity

    missing = error_of("deploy-repository", json.dumps(REPO_MIN | {"repository": ""}))
    assert missing.identity.deployment_type == "git_repo"
    assert missing.identity.can_report_failure


@pytest.mark.parametrize(
    ("task", "raw", "base64_encoded", "expected"),
    [
        ("deploy-image", "%%%", True, PartialIdentity(deployment_type="image")),
        ("deploy-repository", "{", False, PartialIdentity(deployment_type="git_repo")),
        ("nope", json.dumps(REPO_MIN), False, PartialIdentity(42, "dep-1", "svc-1")),
        ("destroy-job-pack", json.dumps(DESTROY_MIN), False, PartialIdentity()),
        ("deploy-image", "[1]", False, PartialIdentity(deployment_type="image")),
        (
            "deploy-image",
            json.dumps({"deploymentJobId": "x", "deploymentId": {}, "serviceId": "s", "teamId": 5}),
            False,
            PartialIdentity(service_id="s", team_id="5", deployment_type="image"),
        ),
        (
            "deploy-image",
            json.dumps({"deploymentJobId": "", "deploymentId": "d", "serviceId": "s"}),
            False,
            PartialIdentity(0, "d", "s", deployment_type="image"),
        ),
    ],
)
def test_extract_identity_never_raises(task: str, raw: str, base64_encoded: bool, expected: PartialIdentity) -> None:
    assert extract_identity(task, raw, base64_encoded=base64_encoded) == expected


def test_identity_needs_job_id_deployment_and_service_to_report() -> None:
    assert not PartialIdentity(None, "d", "s", deployment_type="image").can_report_failure
    assert not PartialIdentity(1, "", "s", deployment_type="image").can_report_failure
    assert not PartialIdentity(1, "d", " ", deployment_type="git_repo").can_report_failure
    assert not PartialIdentity(1, "d", "s").can_report_failure
    assert PartialIdentity(1, "d", "s", deployment_type="git_repo").can_report_failure


def test_bad_task_errors_carry_no_identity_and_bad_base64_carries_the_type() -> None:
    assert error_of("x", "{}").identity == PartialIdentity()
    assert error_of("deploy-image", "!!", base64_encoded=True).identity == PartialIdentity(deployment_type="image")


def test_secrets_lists_every_secret_value() -> None:
    params = repo(
        gitPass="s-git",
        nomadToken="s-nomad",
        secretId="s-secret-id",
        roleId="s-role-id",
        accessToken="s-access",
        sourceUrl="https://minio/x?X-Amz-Signature=s-sig",
        registry={"registryToken": "s-registry-token"},
        build={"registryPassword": "s-registry-password", "registryUsername": "not-secret"},
        networks=[{"domain": "not-secret"}],
    )
    assert params.secrets() == {
        "s-git",
        "s-nomad",
        "s-secret-id",
        "s-role-id",
        "s-access",
        "https://minio/x?X-Amz-Signature=s-sig",
        "s-registry-token",
        "s-registry-password",
    }
    image = decode_params(
        "deploy-image",
        json.dumps(IMAGE_MIN | {"nomadToken": "n", "build": {"registryPassword": "p"}}),
        base64_encoded=False,
        env={"ACCESS_TOKEN": "from-env"},
    )
    assert image.secrets() == {"n", "p", "from-env"}
    destroy = decode_params(
        "destroy-job-pack",
        json.dumps({"jobs": [{"nomadToken": "t1"}, {"nomadToken": "t2"}, {"nomadToken": ""}], "reason": "delete"}),
        base64_encoded=False,
    )
    assert destroy.secrets() == {"t1", "t2"}
    assert repo().secrets() == frozenset()


def test_repr_masks_secrets() -> None:
    params = repo(
        gitPass="s-git",
        nomadToken="s-nomad",
        registry={"registryToken": "s-rt"},
        build={"registryPassword": "s-rp"},
    )
    text = repr(params) + str(params)
    for secret in params.secrets():
        assert secret not in text
    assert "git_pass='***'" in text
    assert "repository='acme/web'" in text


# --------------------------------------------------------------------------------------- canaries


def _leaves(tp: mi.Type, path: str) -> Iterator[tuple[str, mi.Type]]:
    """Every leaf (scalar or map) JSON path of ``tp``, lists entered at index 0."""
    if isinstance(tp, mi.UnionType):
        (tp,) = [t for t in tp.types if not isinstance(t, mi.NoneType)]
    if isinstance(tp, mi.StructType):
        for field in tp.fields:
            yield from _leaves(field.type, f"{path}.{field.encode_name}" if path else field.encode_name)
    elif isinstance(tp, mi.VarTupleType):
        yield from _leaves(tp.item_type, f"{path}[0]")
    else:
        yield path, tp


def _set(document: dict[str, Any], path: str, value: object) -> None:
    node: Any = document
    steps = path.replace("[0]", ".0").split(".")
    for step, following in itertools.pairwise(steps):
        key: Any = int(step) if step.isdigit() else step
        if isinstance(node, list):
            while len(node) <= key:
                node.append({} if not following.isdigit() else [])
        elif key not in node:
            node[key] = [] if following.isdigit() else {}
        node = node[key]
    last: Any = int(steps[-1]) if steps[-1].isdigit() else steps[-1]
    if isinstance(node, list) and len(node) <= last:
        node.append(value)
    else:
        node[last] = value


def _canary_document(
    model: type[msgspec.Struct],
) -> tuple[dict[str, Any], list[tuple[str, mi.Type]], list[str]]:
    """A document with a distinct canary in every leaf, its leaves, and the canaries."""
    info = mi.type_info(model)
    leaves = list(_leaves(info, ""))
    document: dict[str, Any] = {}
    canaries: list[str] = []
    for index, (path, tp) in enumerate(leaves):
        if isinstance(tp, mi.IntType):
            value: object = str(7_770_000 + index)
            canaries.append(str(value))
        elif isinstance(tp, mi.BoolType):
            value = "true"
        elif isinstance(tp, mi.DictType):
            value = {f"K{index}": f"CANARY{index}V"}
            canaries.append(f"CANARY{index}V")
        else:
            value = f"CANARY{index}S"
            canaries.append(str(value))
        _set(document, path, value)
    return document, leaves, canaries


CANARY_MODELS = [
    ("deploy-repository", DeployRepositoryParams),
    ("deploy-image", DeployImageParams),
    ("destroy-job-pack", DestroyJobPackParams),
]


@pytest.mark.parametrize(("task", "model"), CANARY_MODELS)
def test_canary_document_decodes_and_every_wrong_leaf_names_only_its_path(
    task: str, model: type[msgspec.Struct]
) -> None:
    document, leaves, canaries = _canary_document(model)
    if task == "destroy-job-pack":
        document["reason"] = "delete"
    decode_params(task, b64(document), base64_encoded=True, env=NO_ENV)  # the canary document is valid

    for path, tp in leaves:
        broken = json.loads(json.dumps(document))
        if isinstance(tp, mi.StrType):
            wrong: object = {"CANARYX": ["CANARYY"]}
        elif isinstance(tp, mi.DictType):
            wrong = ["CANARYX", "CANARYY"]
        else:
            wrong = "CANARYX"
        _set(broken, path, wrong)
        err = error_of(task, b64(broken), base64_encoded=True)
        message = str(err)
        assert message.startswith(f'params: field "{path}": expected '), message
        assert "CANARY" not in message and "CANARY" not in repr(err.args)
        assert not any(canary in message for canary in canaries), message


@pytest.mark.parametrize(("task", "model"), CANARY_MODELS)
def test_validation_and_garbage_messages_never_echo_values(task: str, model: type[msgspec.Struct]) -> None:
    document, _, canaries = _canary_document(model)
    required = {
        "deploy-repository": {"jobId", "repository", "branch", "deploymentId", "serviceId"},
        "deploy-image": {"jobId", "imageName", "deploymentId", "serviceId"},
        "destroy-job-pack": {"reason"},
    }[task]
    messages: list[str] = []
    for name in required:
        broken = dict(document) | {name: ""}
        with pytest.raises(ParamsError) as info:
            decode_params(task, json.dumps(broken), base64_encoded=False, env=NO_ENV)
        messages.append(str(info.value))
    for name in required:
        broken = dict(document) | {name: "  "}
        messages.append(str(error_of(task, json.dumps(broken))))
    local = dict(document) | {"sourceType": "local_upload", "sourceUrl": ""}
    if task != "destroy-job-pack":
        messages.append(str(error_of(task, json.dumps(local))) if task == "deploy-repository" else "")
    text = json.dumps(document)
    messages.append(str(error_of(task, text[:-1])))  # truncated
    messages.append(str(error_of(task, text[:200] + "\x00" + text[200:])))  # control char
    messages.append(str(error_of(task, base64.b64encode(text.encode()).decode()[:-1], base64_encoded=True)))
    messages.append(str(error_of(task, "CANARY" + b64(document), base64_encoded=True)))
    messages.append(str(error_of(task, "CANARY" + text)))
    assert len([m for m in messages if m]) >= 6
    for message in messages:
        assert "CANARY" not in message, message
        assert not any(canary in message for canary in canaries), message
        assert "\n" not in message
