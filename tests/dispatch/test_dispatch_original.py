"""``cs dispatch`` behaves as the original where a platform depends on it (issue 10), end to end from
``NOMAD_META_*``: a real nats-server, real git, a real OpenBao, recording fakes for docker / nomad-pack /
nomad and a recording backend that fails on demand. One section per numbered point of the issue."""

from __future__ import annotations

import base64
import io
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from cloudstation.plugins.builtin.packs.schema import read_vars_file
from tests.backend.recording_backend import RecordingBackend, recording_backend
from tests.conftest import CsRunner
from tests.dispatch.dispatch_kit import (
    ACCESS_TOKEN,
    CANARIES,
    GIT_PASS,
    IDENTITY,
    NKEY_SEED,
    NOMAD_TOKEN,
    REGISTRY_PASSWORD,
    all_text_under,
    dispatch,
    log_text,
    outcome_events,
    stored,
    task_env,
)
from tests.fakes import fakebin
from tests.fakes.fakebin import FakeBin, Rule, image_inspect_json
from tests.natsserver import NatsServer
from tests.secrets import openbao as bao
from tests.secrets.openbao import OpenBao
from tests.sources.sources_testkit import file_server, git, make_bare_repo

fake_bin = fakebin.fake_bin  # the fixtures
openbao = bao.openbao

RESULT = {"jobId": 42, "deploymentId": "dep-1", "serviceId": "svc-1", "teamId": "team-1", "ownerId": "owner-1"}
STEP = "/api/local/deployment-step/update"
DOMAIN = "/api/local/ask-domain"
SERVICE = "/api/local/service-update/"


def _vars(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "work" / "state" / "plugins" / "nomad-pack" / "dispatch" / "app" / "vars.hcl"
    return read_vars_file(path)


def _no_canary(*texts: str, extra: tuple[str, ...] = ()) -> None:
    for text in texts:
        for canary in (*CANARIES, NKEY_SEED, *extra):
            assert canary not in text, canary


def _backend_ok(backend: RecordingBackend, domain: str = "web-abc") -> None:
    backend.on(STEP, (200, {"success": True}))
    backend.on(DOMAIN, (200, {"domain": domain}))
    backend.on(SERVICE, (201, {"message": "updated!"}))


def _steps(backend: RecordingBackend) -> list[tuple[str, str, str]]:
    return [(r.body["deployment_type"], r.body["step"], r.body["status"]) for r in backend.requests if r.path == STEP]


def _completed(kind: str, *steps: str) -> list[tuple[str, str, str]]:
    return [(kind, step, status) for step in steps for status in ("in_progress", "completed")]


def _repo(tmp_path: Path, files: dict[str, str], **params: Any) -> tuple[dict[str, Any], dict[str, str]]:
    make_bare_repo(tmp_path / "remote", "acme/web", {"main": files})
    document = {
        **IDENTITY,
        "repository": "acme/web",
        "branch": "main",
        "gitPass": GIT_PASS,
        "imageName": "web",
        "imageTag": "v1",
        "nomadToken": NOMAD_TOKEN,
        **params,
    }
    return document, {"CS_GIT_BASE_URL": f"file://{tmp_path / 'remote'}"}


# ------------------------------------------------------------------ 1. zero-config ports, domains, service

DETECTION: dict[str, tuple[dict[str, tuple[str, ...]] | None, dict[str, str], list[int]]] = {
    "expose": ({"exposed": ("9090/tcp", "8080/tcp")}, {}, [8080, 9090]),
    "env": ({"env": ("PORT=5000",)}, {}, [5000]),
    "framework": ({}, {"manage.py": "import django\n"}, [8000]),
    "default": (None, {}, [3000]),
}


@pytest.mark.parametrize("case", list(DETECTION))
def test_zero_config_repository_gets_detected_ports_domains_and_a_service_update(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path, case: str
) -> None:
    inspect, files, ports = DETECTION[case]
    if inspect is None:
        fake_bin.add("docker", Rule(("image", "inspect"), stderr="Error: No such image: web:v1\n", exit_code=1))
    else:
        fake_bin.add("docker", Rule(("image", "inspect"), stdout=image_inspect_json(**inspect)))
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    with recording_backend() as backend:
        _backend_ok(backend)
        params, extra = _repo(
            tmp_path,
            {"README": "x", **files},
            build={"builder": "railpack", "disablePush": True},
            clusterDomain="apps.example.com",
            backendUrl=backend.base_url,
            accessToken=ACCESS_TOKEN,
        )
        res = dispatch(cs, "deploy-repository", params, {**env, **extra})
    assert res.returncode == 0, res.stderr
    assert [c.args for c in fake_bin.calls("docker")] == [["image", "inspect", "web:v1"]]
    asked = [r for r in backend.requests if r.path == DOMAIN]
    assert len(asked) == len(ports)
    (update,) = [r.body for r in backend.requests if r.path == SERVICE]
    assert update["serviceId"] == "svc-1"
    assert [(n["port"], n["domain"], n["public"]) for n in update["network"]] == [
        (port, "web-abc.apps.example.com", True) for port in ports
    ]
    values = _vars(tmp_path)
    assert [(n["port"], n["domain"]) for n in values["network"]] == [(p, "web-abc.apps.example.com") for p in ports]
    assert _steps(backend) == _completed("repository", "clone", "build", "deploy")


# --------------------------------------------------------------------------- 2. a backend outage


def test_a_backend_outage_during_domain_allocation_is_a_warning_not_a_failure(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path
) -> None:
    fake_bin.add("docker", Rule(("image", "inspect"), stdout=image_inspect_json(exposed=("8080/tcp",))))
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    with recording_backend() as backend:
        backend.on(STEP, (500, None))
        backend.on(DOMAIN, (429, None), (502, None), (503, None), (500, {"error": "down"}))
        backend.on(SERVICE, (200, {}))
        params = {**IDENTITY, "imageName": "web", "backendUrl": backend.base_url, "accessToken": ACCESS_TOKEN}
        res = dispatch(cs, "deploy-image", params, env)
    assert res.returncode == 0, res.stderr
    msgs = stored(nats_server)
    assert [s for s, _ in outcome_events(msgs)] == [
        "deployment.status.changed",
        "deployment.succeeded",
        "build.log.end.dep-1",
    ]
    assert len([r for r in backend.requests if r.path == DOMAIN]) == 4  # 3 retries: 429 and 5xx
    text = log_text(msgs)
    assert "no domain for port 8080" in text and "failed after 4 attempts: HTTP 500" in text
    (update,) = [r.body for r in backend.requests if r.path == SERVICE]
    assert update["network"][0]["port"] == 8080 and update["network"][0]["domain"] == ""
    assert _vars(tmp_path)["network"][0]["port"] == 8080
    _no_canary(res.stdout, res.stderr, text)


def test_an_empty_domain_answer_deploys_the_port_without_a_domain(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path
) -> None:
    fake_bin.add("docker", Rule(("image", "inspect"), stdout=image_inspect_json(exposed=("80/tcp", "5432/tcp"))))
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    with recording_backend() as backend:
        _backend_ok(backend, domain="")
        params = {
            **IDENTITY,
            "imageName": "web",
            "clusterDomain": "apps.example.com",
            "backendUrl": backend.base_url,
            "accessToken": ACCESS_TOKEN,
        }
        res = dispatch(cs, "deploy-image", params, env)
    assert res.returncode == 0, res.stderr
    assert len([r for r in backend.requests if r.path == DOMAIN]) == 2  # every detected port, tcp too
    (update,) = [r.body for r in backend.requests if r.path == SERVICE]
    assert [(n["port"], n["type"], n["domain"]) for n in update["network"]] == [(80, "http", ""), (5432, "tcp", "")]
    text = log_text(stored(nats_server))
    assert "the backend gave no domain for port 80" in text and "the backend gave no domain for port 5432" in text
    assert _steps(backend) == _completed("image", "deploy")


# ------------------------------------------------------------------------- 3. Vault at build time


def test_only_secrets_path_is_read_at_build_time_from_a_real_vault(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path, openbao: OpenBao
) -> None:
    secret = "CANARY-vault-" + uuid.uuid4().hex[:8]
    path = openbao.put_kv2(f"prj-1/svc-{uuid.uuid4().hex[:6]}", {"API_KEY": secret, "PORT": 42})
    role = openbao.approle(path)  # may read the service path only: "shared" or "db" would be refused
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    params, extra = _repo(
        tmp_path,
        {"Dockerfile": "FROM scratch\n"},
        projectId="prj-1",
        vaultAddress=openbao.url,
        roleId=role.role_id,
        secretId=role.secret_id,
        secretsPath=path,
        sharedSecretPath="shared",
        vaultLinkedSecretPaths=[{"prefix": "DB_", "secretPath": "db"}],
        build={"disablePush": True},
    )
    res = dispatch(cs, "deploy-repository", params, {**env, **extra})
    assert res.returncode == 0, res.stderr
    build = fake_bin.calls("docker")[0]
    assert build.args[:1] == ["build"] and "--build-arg" in build.args and "API_KEY" in build.args
    assert build.env["API_KEY"] == secret and build.env["PORT"] == "42"
    runtime = _vars(tmp_path)["vault_env"]
    assert {"path": path, "prefix": ""} in runtime  # the shared and linked paths are the job's, at run time
    text = log_text(stored(nats_server))
    _no_canary(res.stdout, res.stderr, text, extra=(secret, role.secret_id, role.role_id))

    openbao.revoke_secret_id(role)
    env["CS_WORK_DIR"] = str(tmp_path / "work-2")
    again = dispatch(cs, "deploy-repository", {**params, "deploymentId": "dep-2"}, {**env, **extra})
    assert again.returncode == 1
    assert again.stderr.strip().splitlines()[-1] == "cs: error: vault: login (auth/approle/login): HTTP 400 Bad Request"
    assert outcome_events(stored(nats_server))[-2][0] == "deployment.failed"
    _no_canary(again.stdout, again.stderr, extra=(secret, role.secret_id, role.role_id))


def test_a_kv1_secrets_path_and_a_missing_one_from_a_real_vault(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path, openbao: OpenBao
) -> None:
    secret = "CANARY-kv1-" + uuid.uuid4().hex[:8]
    kv1 = openbao.put_kv1(f"svc-{uuid.uuid4().hex[:6]}", {"TOKEN": secret})
    missing = f"{bao.KV2_MOUNT}/data/nothing-{uuid.uuid4().hex[:6]}"
    role = openbao.approle(kv1, missing)
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    vault = {"vaultAddress": openbao.url, "roleId": role.role_id, "secretId": role.secret_id}
    params, extra = _repo(
        tmp_path, {"Dockerfile": "FROM scratch\n"}, secretsPath=kv1, build={"disablePush": True}, **vault
    )
    res = dispatch(cs, "deploy-repository", params, {**env, **extra})
    assert res.returncode == 0, res.stderr
    assert fake_bin.calls("docker")[0].env["TOKEN"] == secret

    env["CS_WORK_DIR"] = str(tmp_path / "work-2")
    res = dispatch(cs, "deploy-repository", {**params, "secretsPath": missing}, {**env, **extra})
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == f'cs: error: vault: read "{missing}": HTTP 404 Not Found'
    assert outcome_events(stored(nats_server))[-2][0] == "deployment.failed"
    _no_canary(res.stdout, res.stderr, log_text(stored(nats_server)), extra=(secret, role.secret_id, role.role_id))


# ------------------------------------------------------------------ 4. registry credentials from the env


def test_registry_credentials_and_pack_token_fall_back_to_the_environment(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path
) -> None:
    token = "CANARY-packtoken-" + uuid.uuid4().hex[:6]
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    env |= {
        "REGISTRY_URL": "reg.example.com",
        "REGISTRY_NAMESPACE": "team",
        "REGISTRY_USERNAME": "robot",
        "REGISTRY_PASSWORD": REGISTRY_PASSWORD,
        "REGISTRY_TOKEN": token,
    }
    registry = {"registryName": "cs", "registrySource": "https://git.example.com/packs.git", "pack": "cloudstation"}
    params, extra = _repo(tmp_path, {"Dockerfile": "FROM scratch\n"}, registry=registry)
    res = dispatch(cs, "deploy-repository", params, {**env, **extra})
    assert res.returncode == 0, res.stderr
    image = "reg.example.com/team/web:v1"
    docker = fake_bin.calls("docker")
    assert [c.args for c in docker] == [
        ["build", "-t", image, "-f", "Dockerfile", "."],
        ["image", "inspect", image],
        ["login", "reg.example.com", "-u", "robot", "--password-stdin"],
        ["tag", image, image],
        ["push", image],
    ]
    assert docker[2].stdin == REGISTRY_PASSWORD
    add = fake_bin.calls("nomad-pack")[0]
    assert add.args[:4] == ["registry", "add", "cs", "https://git.example.com/packs.git"]
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    assert add.env["GIT_CONFIG_VALUE_0"] == f"Authorization: Basic {basic}"
    for call in fake_bin.calls():
        _no_canary(" ".join(call.argv), extra=(token,))
    _no_canary(res.stdout, res.stderr, log_text(stored(nats_server)), extra=(token,))


# ------------------------------------------------------------------------------ 5. idempotent destroy

NOT_FOUND = 'No job(s) with prefix or ID "{job}" found\n'
REFUSED = (
    'Error querying job prefix: Get "http://127.0.0.1:4646/v1/jobs?prefix=x": dial tcp: connect: connection refused\n'
)


def test_destroy_of_a_job_that_is_already_gone_publishes_job_destroyed_and_exits_0(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path
) -> None:
    fake_bin.add("nomad", Rule(("job", "stop", "-purge", "gone"), stderr=NOT_FOUND.format(job="gone"), exit_code=1))
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    jobs = [{"jobId": "gone", "serviceId": "svc-a"}, {"jobId": "live", "serviceId": "svc-b"}]
    res = dispatch(cs, "destroy-job-pack", {"jobs": jobs, "reason": "archive"}, env)
    assert res.returncode == 0, res.stderr
    assert outcome_events(stored(nats_server)) == [
        ("job.destroyed", {"id": "svc-a", "reason": "archive"}),
        ("job.destroyed", {"id": "svc-b", "reason": "archive"}),
    ]


def test_destroy_retries_an_unreachable_nomad_and_only_then_fails(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path
) -> None:
    fake_bin.add("nomad", Rule(("job", "stop", "-purge", "down"), stderr=REFUSED, exit_code=1))
    env = task_env(cs, nats_server, fake_bin, tmp_path) | {"CS_DESTROY_RETRY_WAIT": "0"}
    jobs = [{"jobId": "down", "serviceId": "svc-a"}, {"jobId": "live", "serviceId": "svc-b"}]
    res = dispatch(cs, "destroy-job-pack", {"jobs": jobs, "reason": "delete"}, env)
    assert res.returncode == 1
    assert "1 of 2 job(s) could not be stopped" in res.stderr
    assert [c.args[-1] for c in fake_bin.calls("nomad")] == ["down"] * 4 + ["live"]
    assert outcome_events(stored(nats_server)) == [("job.destroyed", {"id": "svc-b", "reason": "delete"})]


# ------------------------------------------------------------------- 6. backend step updates (+ 7, 8)


def _upload(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_upload_clone_step_is_local_upload_and_a_fifo_member_is_skipped_with_a_warning(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path
) -> None:
    fifo = tarfile.TarInfo("app/pipe")
    fifo.type = tarfile.FIFOTYPE
    archive = _upload([_file("app/Dockerfile.production", b"FROM scratch\n"), (fifo, None)])
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    with file_server({"/src.tar.gz": archive}) as base, recording_backend() as backend:
        _backend_ok(backend)
        params = {
            **IDENTITY,
            "sourceType": "local_upload",
            "sourceUrl": f"{base}/src.tar.gz?sig=CANARY-sig-5",
            "imageName": "web",
            "networks": [{"portNumber": 3000, "portType": "http", "public": True, "domain": "mine.example.com"}],
            "build": {"rootDirectory": "app", "disablePush": True},
            "backendUrl": backend.base_url,
            "accessToken": ACCESS_TOKEN,
        }
        res = dispatch(cs, "deploy-repository", params, env)
    assert res.returncode == 0, res.stderr
    assert _steps(backend) == [
        *_completed("local_upload", "clone"),
        *_completed("repository", "build", "deploy"),
    ]
    assert [r.path for r in backend.requests if r.path == DOMAIN] == []  # the user gave the domain
    text = log_text(stored(nats_server))
    assert "warning: upload member 'app/pipe' skipped: FIFO files are not extracted" in text
    # 7. Dockerfile discovery tries the original's names: only Dockerfile.production here
    assert fake_bin.calls("docker")[0].args == ["build", "-t", "web:latest", "-f", "Dockerfile.production", "."]
    assert not (tmp_path / "work" / "source" / "app" / "pipe").exists()
    _no_canary(res.stdout, res.stderr, text, extra=("CANARY-sig-5",))


def test_image_deploy_reports_only_the_deploy_step_typed_image(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path
) -> None:
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    with recording_backend() as backend:
        _backend_ok(backend)
        params = {
            **IDENTITY,
            "imageName": "nginx",
            "networks": [{"portNumber": 80, "public": True}],
            "backendUrl": backend.base_url,
            "accessToken": ACCESS_TOKEN,
        }
        res = dispatch(cs, "deploy-image", params, env)
    assert res.returncode == 0, res.stderr
    assert _steps(backend) == _completed("image", "deploy")
    assert [r.path for r in backend.requests if r.path != STEP] == []  # networks given: no detect, no domains
    assert fake_bin.calls("docker") == []


# ----------------------------------------------------------------------------------- 7. source fetch


def test_unknown_provider_clones_with_the_default_auth_and_history_is_there_for_git_describe(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path
) -> None:
    params, extra = _repo(
        tmp_path,
        {"README": "x"},
        provider="gitea",
        deploy="noop",
        build={"builder": "exec", "buildCommand": "git describe --tags --always; git rev-list --count HEAD"},
    )
    work = tmp_path / "history"
    git("clone", "-q", str(tmp_path / "remote" / "acme" / "web.git"), str(work))
    for command in (
        ["tag", "v2.3.0"],
        ["commit", "-q", "--allow-empty", "-m", "next"],
        ["push", "-q", "origin", "main", "--tags"],
    ):
        git(*command, cwd=work)
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    res = dispatch(cs, "deploy-repository", params, {**env, **extra})
    assert res.returncode == 0, res.stderr
    lines = log_text(stored(nats_server)).splitlines()
    assert any(line.startswith("v2.3.0-1-g") for line in lines), lines
    assert "2" in lines


# ----------------------------------------------------------------------------------------- 8. userId


def test_a_missing_user_id_is_0_in_the_events(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path
) -> None:
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    params = {k: v for k, v in IDENTITY.items() if k != "userId"} | {
        "imageName": "nginx",
        "networks": [{"portNumber": 80}],
    }
    res = dispatch(cs, "deploy-image", params, env)
    assert res.returncode == 0, res.stderr
    assert outcome_events(stored(nats_server))[1] == (
        "deployment.succeeded",
        {**RESULT, "userId": "0", "type": "image"},
    )


# ------------------------------------------------------------------------- a production-shaped payload

# The shape the backend sends (modelled on the original's types_test.go and handlers: numbers as strings
# or floats, ids as numbers, "" for unset integers, health checks as strings, nested settings).
PRODUCTION = {
    "jobId": "cst-minio-test",
    "deploymentId": "dep_123",
    "serviceId": "svc_123",
    "teamId": "team_77",
    "userId": 1234,
    "ownerId": 3694,
    "deploymentJobId": 5678.0,
    "projectId": "prj_9",
    "imageName": "minio/minio",
    "imageTag": "latest",
    "deploy": "nomad-pack",
    "replicaCount": "1",
    "cpu": 500,
    "ram": "1024",
    "gpu": "",
    "gpu_model": "",
    "node_pool": "default",
    "nomadAddress": "http://10.0.0.5:4646",
    "nomadToken": NOMAD_TOKEN,
    "clusterDomain": "apps.example.com",
    "clusterTcpDomain": "tcp.example.com",
    "restartMode": "fail",
    "restartAttempts": 3,
    "usesKvEngine": True,
    "ownerUsesKvEngine": False,
    "sharedSecretPath": "shared",
    "secretsPath": "kv/data/prj_9/svc_123",
    "vaultLinkedSecretPaths": [{"prefix": "DB_", "secretPath": "postgres-5432"}],
    "vaultLinkedSecrets": [],
    "registry": {"pack": "cloudstation", "useEmbedded": True},
    "networks": [
        {
            "portNumber": "9000",
            "portType": "http",
            "public": True,
            "domain": "",
            "custom_domain": "",
            "has_health_check": "true",
            "health_check": {"type": "http", "path": "/minio/health/live", "interval": "30s", "timeout": "5s"},
        },
        {"portNumber": 9001, "portType": "tcp", "public": False, "has_health_check": "false"},
    ],
    "consul": {"serviceName": "svc-123", "tags": [], "servicePort": 9000, "linkedServices": []},
    "csiVolume": [{"id": "vol_1", "mountPaths": ["/data"]}],
    "entrypoint": [],
    "command": "",
    "build": {"builder": "noop", "startCommand": "minio server --address 0.0.0.0:9000 /data"},
    "configFiles": [],
}


def test_a_production_shaped_image_payload_deploys(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path
) -> None:
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    with recording_backend() as backend:
        _backend_ok(backend, domain="minio-x1")
        res = dispatch(
            cs, "deploy-image", PRODUCTION | {"backendUrl": backend.base_url, "accessToken": ACCESS_TOKEN}, env
        )
    assert res.returncode == 0, res.stderr
    events = outcome_events(stored(nats_server))
    assert events[0] == ("deployment.status.changed", {"jobId": 5678, "status": "IN_PROGRESS"})
    assert events[1] == (
        "deployment.succeeded",
        {
            "jobId": 5678,
            "type": "image",
            "deploymentId": "dep_123",
            "serviceId": "svc_123",
            "teamId": "team_77",
            "userId": "1234",
            "ownerId": "3694",
        },
    )
    assert _steps(backend) == _completed("image", "deploy")
    run = fake_bin.calls("nomad-pack")[-1]
    assert run.args[0] == "run" and "--name=cst-minio-test" in run.args
    assert run.env["NOMAD_TOKEN"] == NOMAD_TOKEN
    values = _vars(tmp_path)
    assert values["image"] == "minio/minio:latest"
    assert [n["port"] for n in values["network"]] == [9000, 9001]
    _no_canary(res.stdout, res.stderr, all_text_under(tmp_path / "work"))
