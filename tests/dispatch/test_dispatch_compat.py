"""``cs dispatch`` keeps the Go worker's behaviour (Cloudstation-cli v2.0.1) where a platform depends on it,
end to end from ``NOMAD_META_*``: a real nats-server, real git, recording fakes for docker / nomad-pack /
nomad and a recording backend that fails on demand. One section per behaviour (issue 10's numbered
points); Vault is in test_dispatch_vault.py, the production-shaped payload in test_dispatch_payload.py."""

from __future__ import annotations

import base64
import io
import tarfile
import uuid
from pathlib import Path

import pytest

from tests.backend.recording_backend import recording_backend
from tests.conftest import CsRunner
from tests.dispatch.dispatch_kit import (
    ACCESS_TOKEN,
    DOMAIN,
    IDENTITY,
    REGISTRY_PASSWORD,
    RESULT,
    SERVICE,
    STEP,
    backend_ok,
    completed,
    dispatch,
    docker_steps,
    log_text,
    no_canary,
    outcome_events,
    pack_vars,
    repo_params,
    steps_seen,
    stored,
    task_env,
)
from tests.fakes import fakebin
from tests.fakes.fakebin import FakeBin, Rule, image_inspect_json
from tests.natsserver import NatsServer
from tests.sources.sources_testkit import file_server, git

fake_bin = fakebin.fake_bin  # the fixtures


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
        backend_ok(backend)
        params, extra = repo_params(
            tmp_path,
            {"README": "x", **files},
            build={"builder": "railpack", "disablePush": True},
            clusterDomain="apps.example.com",
            backendUrl=backend.base_url,
            accessToken=ACCESS_TOKEN,
        )
        res = dispatch(cs, "deploy-repository", params, {**env, **extra})
    assert res.returncode == 0, res.stderr
    # the builder reads the image's config after building; dispatch inspects again only if that failed
    inspects = 2 if inspect is None else 1
    assert [c.args for c in fake_bin.calls("docker")] == [["image", "inspect", "web:v1"]] * inspects
    asked = [r for r in backend.requests if r.path == DOMAIN]
    assert len(asked) == len(ports)
    (update,) = [r.body for r in backend.requests if r.path == SERVICE]
    assert update["serviceId"] == "svc-1"
    assert [(n["port"], n["domain"], n["public"]) for n in update["network"]] == [
        (port, "web-abc.apps.example.com", True) for port in ports
    ]
    values = pack_vars(tmp_path)
    assert [(n["port"], n["domain"]) for n in values["network"]] == [(p, "web-abc.apps.example.com") for p in ports]
    assert steps_seen(backend) == completed("repository", "clone", "build", "deploy")


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
    assert pack_vars(tmp_path)["network"][0]["port"] == 8080
    no_canary(res.stdout, res.stderr, text)


def test_an_empty_domain_answer_deploys_the_port_without_a_domain(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path
) -> None:
    fake_bin.add("docker", Rule(("image", "inspect"), stdout=image_inspect_json(exposed=("80/tcp", "5432/tcp"))))
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    with recording_backend() as backend:
        backend_ok(backend, domain="")
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
    assert steps_seen(backend) == completed("image", "deploy")


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
    params, extra = repo_params(tmp_path, {"Dockerfile": "FROM scratch\n"}, registry=registry)
    res = dispatch(cs, "deploy-repository", params, {**env, **extra})
    assert res.returncode == 0, res.stderr
    image = "reg.example.com/team/web:v1"
    docker = docker_steps(fake_bin)
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
        no_canary(" ".join(call.argv), extra=(token,))
    no_canary(res.stdout, res.stderr, log_text(stored(nats_server)), extra=(token,))


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
        backend_ok(backend)
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
    assert steps_seen(backend) == [
        *completed("local_upload", "clone"),
        *completed("repository", "build", "deploy"),
    ]
    assert [r.path for r in backend.requests if r.path == DOMAIN] == []  # the user gave the domain
    text = log_text(stored(nats_server))
    assert "warning: upload member 'app/pipe' skipped: FIFO files are not extracted" in text
    # 7. Dockerfile discovery tries the original's names: only Dockerfile.production here
    assert docker_steps(fake_bin)[0].args == ["build", "-t", "web:latest", "-f", "Dockerfile.production", "."]
    assert not (tmp_path / "work" / "source" / "app" / "pipe").exists()
    no_canary(res.stdout, res.stderr, text, extra=("CANARY-sig-5",))


def test_image_deploy_reports_only_the_deploy_step_typed_image(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path
) -> None:
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    with recording_backend() as backend:
        backend_ok(backend)
        params = {
            **IDENTITY,
            "imageName": "nginx",
            "networks": [{"portNumber": 80, "public": True}],
            "backendUrl": backend.base_url,
            "accessToken": ACCESS_TOKEN,
        }
        res = dispatch(cs, "deploy-image", params, env)
    assert res.returncode == 0, res.stderr
    assert steps_seen(backend) == completed("image", "deploy")
    assert [r.path for r in backend.requests if r.path != STEP] == []  # networks given: no detect, no domains
    assert fake_bin.calls("docker") == []


# ----------------------------------------------------------------------------------- 7. source fetch


def test_unknown_provider_clones_with_the_default_auth_and_history_is_there_for_git_describe(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path
) -> None:
    params, extra = repo_params(
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
