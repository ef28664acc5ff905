"""Each ``cs dispatch`` task end to end from ``NOMAD_META_*``: a real nats-server and git, recording fakes for
docker, railpack, nixpacks, nomad-pack, nomad, Vault and the backend; the stream, the commands, the requests."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import signal
import tarfile
from pathlib import Path
from typing import Any

import hcl2
import pytest

from cloudstation.plugins.builtin.packs import embedded_pack_dir
from cloudstation.plugins.builtin.packs.schema import load_variables, read_vars_file, vars_problems
from tests.backend.recording_backend import recording_backend
from tests.conftest import CsRunner
from tests.dispatch.dispatch_kit import (
    ACCESS_TOKEN,
    GIT_PASS,
    IDENTITY,
    NOMAD_TOKEN,
    REGISTRY_PASSWORD,
    ROLE_ID,
    SECRET_ID,
    VAULT_VALUE,
    all_text_under,
    b64,
    dispatch,
    log_text,
    no_canary,
    outcome_events,
    stored,
    task_env,
    tool_path,
)
from tests.fakes import fakebin
from tests.fakes.fakebin import FakeBin, Rule, image_inspect_json
from tests.natsserver import NatsServer
from tests.secrets import openbao as bao
from tests.secrets.openbao import OpenBao
from tests.sources.sources_testkit import file_server, make_bare_repo

fake_bin = fakebin.fake_bin  # the fixtures
openbao = bao.openbao

RESULT = {
    "jobId": 42,
    "deploymentId": "dep-1",
    "serviceId": "svc-1",
    "teamId": "team-1",
    "userId": "7",
    "ownerId": "owner-1",
}
PACK_VARIABLES = load_variables(embedded_pack_dir())


def _check_vars_file(work: Path) -> dict[str, object]:
    path = work / "state" / "plugins" / "nomad-pack" / "dispatch" / "app" / "vars.hcl"
    values = read_vars_file(path)
    assert hcl2.loads(path.read_text()) is not None  # python-hcl2 parses it
    assert vars_problems(values, PACK_VARIABLES) == []
    return values


def test_deploy_repository_end_to_end(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path, openbao: OpenBao
) -> None:
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    fake_bin.add("railpack", Rule(("build",), stderr="railpack: no plan\n", exit_code=1))
    make_bare_repo(tmp_path / "remote", "acme/web", {"main": {"app/Dockerfile": "FROM scratch\n", "README": "x"}})
    secrets_path = openbao.put_kv2("svc-1", {"API_KEY": VAULT_VALUE})
    role = openbao.approle(secrets_path)
    with recording_backend() as backend:
        backend.on("/api/local/ask-domain", (200, {"domain": "web-abc"}))
        backend.on("/api/local/deployment-step/update", (200, {}))
        backend.on("/api/local/service-update/", (200, {}))
        params: dict[str, Any] = {
            **IDENTITY,
            "repository": "acme/web",
            "branch": "main",
            "gitPass": GIT_PASS,
            "imageName": "web",
            "imageTag": "v1",
            "nomadAddress": "http://127.0.0.1:4646",
            "nomadToken": NOMAD_TOKEN,
            "vaultAddress": openbao.url,
            "roleId": role.role_id,
            "secretId": role.secret_id,
            "secretsPath": secrets_path,
            "clusterDomain": "apps.example.com",
            "backendUrl": backend.base_url,
            "accessToken": ACCESS_TOKEN,
            "cpu": "500",
            "ram": 1024,
            "networks": [{"portNumber": 3000, "portType": "http", "public": True}],
            "build": {
                "builder": "railpack",
                "rootDirectory": "app",
                "registryUrl": "reg.example.com",
                "registryNamespace": "team",
                "registryUsername": "robot",
                "registryPassword": REGISTRY_PASSWORD,
            },
        }
        res = dispatch(cs, "deploy-repository", params, {**env, "CS_GIT_BASE_URL": f"file://{tmp_path / 'remote'}"})
    assert res.returncode == 0, res.stderr
    msgs = stored(nats_server)
    assert outcome_events(msgs) == [
        ("deployment.status.changed", {"jobId": 42, "status": "IN_PROGRESS"}),
        ("deployment.succeeded", {**RESULT, "type": "git_repo"}),
        ("build.log.end.dep-1", {"deploymentId": "dep-1", "jobId": 42, "status": "success"}),
    ]
    logs = [m.json for m in msgs if m.subject == "build.log.dep-1"]
    assert [m["sequence"] for m in logs] == list(range(1, len(logs) + 1))
    assert {m["phase"] for m in logs} >= {"init", "clone", "build", "registry", "deploy", "release"}
    text = log_text(msgs)
    assert "builder railpack failed; trying csdocker" in text

    image = "reg.example.com/team/web:v1"
    # the docker plugin's engine probe (`docker version`) is tested in tests/plugins; the image is inspected
    # for its ports after the build and before the push (the original's order)
    every = fake_bin.calls()
    inspects = [i for i, c in enumerate(every) if c.args[:2] == ["image", "inspect"]]
    login_at = next(i for i, c in enumerate(every) if c.args[:1] == ["login"])
    assert inspects and all(i < login_at for i in inspects)
    assert all(every[i].args == ["image", "inspect", image] for i in inspects)
    tool_steps = [c for c in every if c.args[:1] != ["version"] and c.args[:2] != ["image", "inspect"]]
    calls = [(c.tool, c.args) for c in tool_steps]
    assert [c[0] for c in calls] == ["railpack", "docker", "docker", "docker", "docker", "nomad-pack"]
    assert calls[0][1][:3] == ["build", "--name", image]
    assert calls[1][1] == ["build", "-t", image, "-f", "Dockerfile", "--build-arg", "API_KEY", "."]
    assert calls[2][1] == ["login", "reg.example.com", "-u", "robot", "--password-stdin"]
    assert calls[3][1] == ["tag", image, image]
    assert calls[4][1] == ["push", image]
    run = fake_bin.calls("nomad-pack")[0]
    assert run.args[0] == "run" and run.args[2] == "--name=web-job" and run.args[3].startswith("--var-file=")
    # secrets only where the tool needs them: the build env, docker login's stdin, nomad's env
    docker_build, docker_login = tool_steps[1], tool_steps[2]
    assert docker_build.env["API_KEY"] == VAULT_VALUE and docker_build.cwd.endswith("/source/app")
    assert docker_login.stdin == REGISTRY_PASSWORD
    assert run.env["NOMAD_TOKEN"] == NOMAD_TOKEN and run.env["NOMAD_ADDR"] == "http://127.0.0.1:4646"
    for call in fake_bin.calls():
        no_canary(" ".join(call.argv), call.env.get("NOMAD_META_PARAMS", ""))

    requests = [(r.method, r.path, r.body) for r in backend.requests]
    steps = [(b["deployment_type"], b["step"], b["status"]) for m, p, b in requests if p.endswith("/update")]
    assert steps == [
        ("repository", s, st) for s in ("clone", "build", "registry", "deploy") for st in ("in_progress", "completed")
    ]
    assert all(r.query["accessToken"] == [ACCESS_TOKEN] for r in backend.requests)
    assert ("GET", "/api/local/ask-domain", None) in requests
    service = [b for m, p, b in requests if p == "/api/local/service-update/"]
    assert service == [
        {
            "serviceId": "svc-1",
            "network": [
                {
                    "port": 3000,
                    "type": "http",
                    "public": True,
                    "domain": "web-abc.apps.example.com",
                    # a check type (the original's), with the check the pack renders
                    "has_health_check": "http",
                    "health_check": {"type": "http", "path": "/", "interval": "30s", "timeout": "30s", "port": 3000},
                }
            ],
        }
    ]

    work = tmp_path / "work"
    values = _check_vars_file(work)
    assert values["job_name"] == "web-job" and values["image"] == image
    # the original's memory_max: twice the memory, at least 512
    assert values["resources"] == {"cpu": 500, "memory": 1024, "memory_max": 2048, "gpu": 0}
    assert values["network"] == [
        {
            "name": "3000",
            "port": 3000,
            "type": "http",
            "public": True,
            "domain": "web-abc.apps.example.com",
            "custom_domain": "",
            "has_health_check": "http",
            "health_check": {"type": "http", "path": "/", "interval": "30s", "timeout": "30s", "port": 3000},
        }
    ]
    assert values["cluster_domain"] == "apps.example.com"
    assert (values["alloc_id"], values["service_id"], values["user_id"]) == ("dep-1", "svc-1", "owner-1")
    assert (values["secret_path"], values["user"], values["restart_mode"]) == ("kv/data/svc-1", "0", "fail")
    assert "args" not in values  # no start command, no linked secret
    generated = [work / "cloudstation.hcl", work / "state"]
    texts = (res.stdout, res.stderr, *(m.data.decode() for m in msgs), all_text_under(tmp_path / "alloc"))
    for text in (*texts, *(all_text_under(p) if p.is_dir() else p.read_text() for p in generated)):
        no_canary(text)
        assert role.secret_id not in text and role.role_id not in text


def test_deploy_image_detects_ports_when_no_networks(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path
) -> None:
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    fake_bin.add("docker", Rule(("image", "inspect"), stdout=image_inspect_json(exposed=("8080/tcp", "443/tcp"))))
    params = {**IDENTITY, "imageName": "nginx", "imageTag": "1.27", "nomadToken": NOMAD_TOKEN}
    res = dispatch(cs, "deploy-image", params, env)
    assert res.returncode == 0, res.stderr
    msgs = stored(nats_server)
    assert outcome_events(msgs) == [
        ("deployment.status.changed", {"jobId": 42, "status": "IN_PROGRESS"}),
        ("deployment.succeeded", {**RESULT, "type": "image"}),
        ("build.log.end.dep-1", {"deploymentId": "dep-1", "jobId": 42, "status": "success"}),
    ]
    assert any(m.json.get("phase") == "detect" for m in msgs if m.subject == "build.log.dep-1")
    assert [c.args[:2] for c in fake_bin.calls()] == [["image", "inspect"], ["run", str(embedded_pack_dir())]]
    assert fake_bin.calls("docker")[0].args == ["image", "inspect", "nginx:1.27"]
    values = _check_vars_file(tmp_path / "work")
    assert [(n["name"], n["port"]) for n in values["network"]] == [("443", 443), ("8080", 8080)]  # type: ignore[attr-defined]
    assert values["image"] == "nginx:1.27" and values["job_name"] == "web-job"
    no_canary(res.stdout, res.stderr, all_text_under(tmp_path / "work"))


NASTY_FILE = 'key: "v" \\ ${HOME} %{ if x } $${y} {{ .Env }} [[ var ]]\nline 2\r\n\ttab é\n'


def test_deploy_image_carries_files_runtime_secrets_and_registry_into_the_pack(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path
) -> None:
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    content = base64.b64encode(NASTY_FILE.encode()).decode()
    tls = {"cert_path": "local/c.pem", "key_path": "local/c.key", "common_name": "a.b", "pka_path": "pki/issue/r"}
    params = {
        **IDENTITY,
        "projectId": "prj-1",
        "imageName": "reg.example.com/team/web",
        "imageTag": "1",
        "nomadToken": NOMAD_TOKEN,
        "roleId": ROLE_ID,
        "secretId": SECRET_ID,
        "networks": [{"portNumber": 8080}],
        "configFiles": [{"path": "/etc/app.yaml", "content": content}, {"path": "raw.txt", "content": NASTY_FILE}],
        "secretsPath": "kv/data/prj-1/svc-1",
        "sharedSecretPath": "shared",
        "templateStringVariables": [{"name": "URL", "pattern": NASTY_FILE, "serviceName": "db-5432"}],
        "tls": {**tls, "ttl": "3h"},
        "consul": {
            "serviceName": "web",
            "linkedServices": [{"variableName": "DB_HOST", "consulServiceName": "db-5432_HOST"}],
        },
        "regions": "eu-west",
        "privateRegistry": "team-registry",
        "privateRegistryProvider": "dockerhub",
        "vaultLinkedSecrets": [{"secret": "DSN", "template": "pg://$USER@db"}],
        "build": {"registryUsername": "robot", "registryPassword": REGISTRY_PASSWORD},
    }
    res = dispatch(cs, "deploy-image", params, env)
    assert res.returncode == 0, res.stderr
    values = _check_vars_file(tmp_path / "work")
    assert values["config_files"] == [
        {"path": "/etc/app.yaml", "content": content},
        {"path": "raw.txt", "content": content},  # plain text arrives base64-encoded, like the rest
    ]
    assert base64.b64decode(content).decode() == NASTY_FILE
    assert (values["secret_path"], values["shared_secret_path"]) == ("kv/data/prj-1/svc-1", "shared")
    assert (values["project_id"], values["service_id"]) == ("prj-1", "svc-1")
    assert values["template"] == [
        {"name": "URL", "pattern": NASTY_FILE, "service_name": "db-5432", "service_secret_path": "", "linked_vars": []}
    ]
    assert values["use_tls"] is True and values["tls"] == [{**tls, "ttl": "3h"}]
    assert values["consul_service_name"] == "web"
    assert values["consul_linked_services"] == [{"key": "DB_HOST", "value": "db-5432_HOST"}]
    assert values["regions"] == "eu-west" and "region" not in values
    assert (values["private_registry"], values["private_registry_provider"]) == ("team-registry", "dockerhub")
    # an image deploy runs vaultLinkedSecrets' exports through /bin/sh -c (the pack's entrypoint)
    assert values["args"] == ["export DSN=pg://$USER@db;"] and "entrypoint" not in values
    assert values["image"] == "reg.example.com/team/web:1"
    no_canary(res.stdout, res.stderr, all_text_under(tmp_path / "work"))


def test_destroy_job_pack_stops_each_job_and_reports_a_failure(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path
) -> None:
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    fake_bin.add("nomad", Rule(("job", "stop", "-purge", "bad-job"), stderr="Error: permission denied\n", exit_code=1))
    jobs = [
        {"jobId": "bad-job", "serviceId": "svc-a", "nomadAddress": "http://n1:4646", "nomadToken": NOMAD_TOKEN + "a"},
        {"jobId": "good-job", "serviceId": "svc-b", "nomadAddress": "http://n2:4646", "nomadToken": NOMAD_TOKEN + "b"},
    ]
    res = dispatch(cs, "destroy-job-pack", {"jobs": jobs, "reason": "pause_service"}, env)
    assert res.returncode == 1
    assert "1 of 2 job(s) could not be stopped" in res.stderr
    calls = fake_bin.calls("nomad")
    assert [c.args for c in calls] == [["job", "stop", "-purge", "bad-job"], ["job", "stop", "-purge", "good-job"]]
    assert [(c.env["NOMAD_ADDR"], c.env["NOMAD_TOKEN"]) for c in calls] == [
        ("http://n1:4646", NOMAD_TOKEN + "a"),
        ("http://n2:4646", NOMAD_TOKEN + "b"),
    ]
    assert outcome_events(stored(nats_server)) == [("job.destroyed", {"id": "svc-b", "reason": "pause_service"})]
    no_canary(res.stdout, res.stderr)


def _tarball(member: tarfile.TarInfo, data: bytes = b"x") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return buf.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info


MALICIOUS = {
    "traversal": _member("../evil"),
    "absolute": _member("/etc/evil"),
    "symlink-escape": _member("link", tarfile.SYMTYPE, "../../etc"),
}


@pytest.mark.parametrize("kind", list(MALICIOUS))
def test_malicious_upload_is_refused_and_the_failure_published(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path, kind: str
) -> None:
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    with file_server({"/src.tar.gz": _tarball(MALICIOUS[kind])}) as base:
        params = {**IDENTITY, "sourceType": "local_upload", "sourceUrl": f"{base}/src.tar.gz?sig=CANARY-sig-77"}
        res = dispatch(cs, "deploy-repository", params, env)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1].startswith("cs: error: ")
    assert "CANARY-sig-77" not in res.stdout + res.stderr
    assert outcome_events(stored(nats_server))[-2:] == [
        ("deployment.failed", {**RESULT, "type": "git_repo"}),
        ("build.log.end.dep-1", {"deploymentId": "dep-1", "jobId": 42, "status": "failed"}),
    ]
    assert fake_bin.calls() == []
    assert not (tmp_path / "evil").exists()


def _slow_repo(tmp_path: Path) -> dict[str, Any]:
    """A build that would run for 5 minutes; its shell writes its pid (``exec`` keeps it for the sleep)."""
    make_bare_repo(tmp_path / "remote", "acme/web", {"main": {"README": "x"}})
    pid_file = tmp_path / "build.pid"
    return {
        **IDENTITY,
        "repository": "acme/web",
        "branch": "main",
        "deploy": "noop",
        "build": {"builder": "exec", "buildCommand": f"echo $$ > {pid_file}; echo building; exec sleep 300"},
    }


def _assert_build_killed(tmp_path: Path) -> None:
    """The build process (this test's own, by pid: never another test's ``sleep``) is gone, not orphaned."""
    pid = int((tmp_path / "build.pid").read_text())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
        assert stat.split(") ")[1].startswith("Z"), f"the build (pid {pid}) is still running"


@pytest.mark.slow
def test_job_timeout_publishes_the_failure(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path
) -> None:
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    env |= {"CS_JOB_TIMEOUT": "2s", "CS_GIT_BASE_URL": f"file://{tmp_path / 'remote'}"}
    # no bound on how long cs takes (tests assert no timings): the 300 s build ends only if cs kills it
    res = dispatch(cs, "deploy-repository", _slow_repo(tmp_path), env)
    assert res.returncode == 1
    assert "timed out after 2s" in res.stderr
    _assert_build_killed(tmp_path)
    assert outcome_events(stored(nats_server))[-2:] == [
        ("deployment.failed", {**RESULT, "type": "git_repo"}),
        ("build.log.end.dep-1", {"deploymentId": "dep-1", "jobId": 42, "status": "failed"}),
    ]


@pytest.mark.slow
def test_sigterm_stops_the_build_and_publishes_the_failure(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path
) -> None:
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    env |= {"CS_GIT_BASE_URL": f"file://{tmp_path / 'remote'}"}
    params = _slow_repo(tmp_path)
    proc = cs.popen("dispatch", env={**env, "NOMAD_META_TASK": "deploy-repository", "NOMAD_META_PARAMS": b64(params)})
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until the build runs
        if "building" in line:
            break
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=120)  # a liveness bound only: the build alone would run for 300 s
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGTERM  # the convention of every cs command
    assert outcome_events(stored(nats_server))[-2:] == [
        ("deployment.failed", {**RESULT, "type": "git_repo"}),
        ("build.log.end.dep-1", {"deploymentId": "dep-1", "jobId": 42, "status": "failed"}),
    ]
    _assert_build_killed(tmp_path)


def test_undelivered_events_stay_in_the_alloc_outbox_without_changing_the_exit_code(
    cs: CsRunner, fake_bin: FakeBin, tmp_path: Path
) -> None:
    from tests.backend.recording_backend import closed_port_url

    fake_bin.add("nomad-pack")
    down = closed_port_url().replace("http://", "nats://")
    env = {
        "NATS_SERVERS": down,
        "CS_DELIVERY_TIMEOUT": "1s",
        "PATH": tool_path(fake_bin),
        "NOMAD_ALLOC_DIR": str(tmp_path / "alloc"),
        "CS_STATE_DIR": "",
    }
    params = {
        **IDENTITY,
        "imageName": "nginx",
        "networks": [{"portNumber": 80, "public": False}],
    }
    res = dispatch(cs, "deploy-image", params, env)
    assert res.returncode == 0, res.stderr
    assert "not delivered" in res.stderr
    assert (tmp_path / "alloc" / "cs").is_dir()
    pending = cs("events", "pending", env={**env, "CS_STATE_DIR": str(tmp_path / "alloc" / "cs")})
    assert "dep-1" in pending.stdout + pending.stderr
    no_canary(res.stdout, res.stderr)


@pytest.mark.slow
def test_a_dead_backend_is_only_a_warning(cs: CsRunner, fake_bin: FakeBin, tmp_path: Path) -> None:
    from tests.backend.recording_backend import closed_port_url

    fake_bin.add("nomad-pack")
    params = {
        **IDENTITY,
        "imageName": "nginx",
        "networks": [{"portNumber": 80, "public": False}],
        "backendUrl": closed_port_url(),
        "accessToken": ACCESS_TOKEN,
    }
    # the real retry waits, but each update cut short: the deployment does not wait for a dead backend
    env = {"PATH": tool_path(fake_bin), "CS_STEP_UPDATE_BOUND": "500ms"}
    res = dispatch(cs, "deploy-image", params, env)
    assert res.returncode == 0, res.stderr
    assert "backend step update deploy/in_progress not recorded" in res.stderr
    assert "backend step update deploy/completed not recorded" in res.stderr
    no_canary(res.stdout, res.stderr)
