"""A production-shaped ``deploy-image`` payload, end to end: numbers as strings and floats, ids as numbers,
``""`` for unset integers, health checks as strings, nested settings."""

from __future__ import annotations

from pathlib import Path

from tests.backend.recording_backend import recording_backend
from tests.conftest import CsRunner
from tests.dispatch.dispatch_kit import (
    ACCESS_TOKEN,
    NOMAD_TOKEN,
    all_text_under,
    backend_ok,
    completed,
    dispatch,
    no_canary,
    outcome_events,
    pack_vars,
    steps_seen,
    stored,
    task_env,
)
from tests.fakes import fakebin
from tests.fakes.fakebin import FakeBin
from tests.natsserver import NatsServer

fake_bin = fakebin.fake_bin  # the fixtures


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
        backend_ok(backend, domain="minio-x1")
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
    assert steps_seen(backend) == completed("image", "deploy")
    run = fake_bin.calls("nomad-pack")[-1]
    assert run.args[0] == "run" and "--name=cst-minio-test" in run.args
    assert run.env["NOMAD_TOKEN"] == NOMAD_TOKEN
    values = pack_vars(tmp_path)
    assert values["image"] == "minio/minio:latest"
    assert [n["port"] for n in values["network"]] == [9000, 9001]
    no_canary(res.stdout, res.stderr, all_text_under(tmp_path / "work"))
