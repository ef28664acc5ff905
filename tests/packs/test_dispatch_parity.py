"""``cs dispatch`` end to end with the production-shaped payload (the original's real_payload_test.go):
a real nats-server and git, recording fakes for docker, nomad-pack and nomad; the vars.hcl nomad-pack
gets is exactly the original's variables, and the embedded pack renders it into the original's job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cloudstation.plugins.builtin.packs import embedded_pack_dir
from cloudstation.plugins.builtin.packs.schema import read_vars_file
from tests.conftest import CsRunner
from tests.dispatch.dispatch_kit import IDENTITY, NOMAD_TOKEN, dispatch, task_env
from tests.fakes import fakebin
from tests.fakes.fakebin import FakeBin
from tests.natsserver import NatsServer
from tests.packs.packrender import PackRenderer
from tests.sources.sources_testkit import make_bare_repo

fake_bin = fakebin.fake_bin  # the fixture

JOB = "csi-csbackend-main-xdjmwnyyplgo"
CHECK = {"type": "tcp", "path": "/", "interval": "30s", "timeout": "30s"}
PRODUCTION: dict[str, Any] = {
    **IDENTITY,
    "jobId": JOB,
    "projectId": "prj_90aae90a",
    "imageTag": "latest",
    "nomadAddress": "http://127.0.0.1:4646",
    "nomadToken": NOMAD_TOKEN,
    "cpu": 100,
    "ram": 500,
    "replicaCount": 1,
    "restartAttempts": 0,
    "restartMode": "fail",
    "clusterDomain": "frparis.cloud-station.io",
    "usesKvEngine": False,
    "ownerUsesKvEngine": True,
    "consul": {"serviceName": JOB},
    "networks": [
        {
            "portNumber": 8085,
            "portType": "tcp",
            "public": True,
            "domain": "api",
            "has_health_check": "tcp",
            "health_check": {**CHECK, "port": 8085},
        },
        {
            "portNumber": 8086,
            "portType": "tcp",
            "public": True,
            "domain": "auth",
            "has_health_check": "tcp",
            "health_check": {**CHECK, "port": 8086},
        },
    ],
    "vaultLinkedSecrets": [{"secret": "DATABASE_URL", "template": "postgres://$DB_USER@db"}],
}


def expected_vars(image: str, args: list[str]) -> dict[str, Any]:
    """What the original's GenerateVarsFile writes for PRODUCTION (+ the restart object, ours)."""
    return {
        "job_name": JOB,
        "count": 1,
        "restart_attempts": 3,
        "restart_mode": "fail",
        "restart": {"attempts": 3, "interval": "3m", "delay": "15s", "mode": "fail"},
        "resources": {"cpu": 100, "memory": 500, "memory_max": 1000, "gpu": 0},
        "user_id": "owner-1",
        "alloc_id": "dep-1",
        "project_id": "prj_90aae90a",
        "service_id": "svc-1",
        "uses_kv_engine": False,
        "owner_uses_kv_engine": True,
        "regions": "",
        "user": "0",
        "use_csi_volume": False,
        "config_files": [],
        "consul_service_name": JOB,
        "consul_linked_services": [],
        "template": [],
        "cluster_domain": "frparis.cloud-station.io",
        "network": [
            {
                "name": str(number),
                "port": number,
                "type": "tcp",
                "public": True,
                "domain": domain,
                "custom_domain": "",
                "has_health_check": "tcp",
                "health_check": {**CHECK, "port": number},
            }
            for number, domain in ((8085, "api"), (8086, "auth"))
        ],
        "use_tls": False,
        "vault_linked_secrets": [],
        "args": args,
        "image": image,
    }


def _vars(tmp_path: Path) -> dict[str, Any]:
    return read_vars_file(tmp_path / "work" / "state" / "plugins" / "nomad-pack" / "dispatch" / "app" / "vars.hcl")


def _check_job(pack: PackRenderer, values: dict[str, Any], image: str, args: list[str]) -> None:
    name, job = pack.job(values)
    assert name == JOB and job["vault"] == [{"policies": ["prj_90aae90a", "acr"], "change_mode": "restart"}]
    [groups] = job["group"]
    group = groups[JOB]
    assert [s["name"] for s in group["service"]] == [f"{JOB}-8085", f"{JOB}-8086"]
    assert [s["tags"] for s in group["service"]] == [
        ["blue", "urlprefix-api.frparis.cloud-station.io", "tcp-lb"],
        ["blue", "urlprefix-auth.frparis.cloud-station.io", "tcp-lb"],
    ]
    [tasks] = group["task"]
    [config] = tasks["dep-1"]["config"]
    assert config["image"] == image and config["entrypoint"] == ["/bin/sh", "-c"] and config["args"] == args


def test_deploy_image_with_the_production_payload(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path, pack: PackRenderer
) -> None:
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    params = {**PRODUCTION, "imageName": f"acrbc001.azurecr.io/{JOB}", "build": {"startCommand": "node server.js"}}
    res = dispatch(cs, "deploy-image", params, env)
    assert res.returncode == 0, res.stderr
    [run] = fake_bin.calls("nomad-pack")
    assert run.args[:3] == ["run", str(embedded_pack_dir()), f"--name={JOB}"]
    image = f"acrbc001.azurecr.io/{JOB}:latest"
    args = ["export DATABASE_URL=postgres://$DB_USER@db;node server.js"]
    values = _vars(tmp_path)
    assert values == expected_vars(image, args)
    _check_job(pack, values, image, args)


def test_deploy_repository_with_the_production_payload(
    cs: CsRunner, nats_server: NatsServer, fake_bin: FakeBin, tmp_path: Path, pack: PackRenderer
) -> None:
    env = task_env(cs, nats_server, fake_bin, tmp_path)
    make_bare_repo(tmp_path / "remote", "acme/api", {"main": {"Dockerfile": "FROM scratch\n"}})
    params = {
        **PRODUCTION,
        "repository": "acme/api",
        "branch": "main",
        "imageName": JOB,
        "build": {"builder": "csdocker", "startCommand": "node server.js", "registryUrl": "acrbc001.azurecr.io"},
        # a registry pack (useEmbedded false): job_name and image are in the vars all the same
        "registry": {
            "pack": "cloudstation",
            "registryName": "cloudstation-packs",
            "registrySource": "github.com/thecloudstation/cloudstation-packs",
            "registryRef": "main",
        },
    }
    res = dispatch(cs, "deploy-repository", params, {**env, "CS_GIT_BASE_URL": f"file://{tmp_path / 'remote'}"})
    assert res.returncode == 0, res.stderr
    runs = [c.args for c in fake_bin.calls("nomad-pack")]
    assert runs[0][:3] == ["registry", "add", "cloudstation-packs"]
    assert runs[1][:4] == ["run", "cloudstation", "--registry=cloudstation-packs", "--ref=main"]
    image = f"acrbc001.azurecr.io/{JOB}:latest"  # the pushed reference
    args = ["export DATABASE_URL=postgres://$DB_USER@db;node server.js"]
    values = _vars(tmp_path)
    assert values == expected_vars(image, args)
    _check_job(pack, values, image, args)
