"""The embedded cloudstation pack rendered for real (Go text/template + sprig + nomad-pack's ``var``, see
``packrender``), from the variables packvars writes, parsed with python-hcl2 and checked against the job
the original pack (Cloudstation-cli v2.0.1 ``templates/cloudstation.nomad.tpl``) renders: service names,
blue/green tags, checks, node pools, vault, update/migrate, resources, volumes, templates, args."""

from __future__ import annotations

from typing import Any

import pytest

from tests.dispatch.packvars_cases import CASES, variables_for
from tests.packs.packrender import PackRenderer

IMAGE = "acrbc001.azurecr.io/csi-csbackend-main-xdjmwnyyplgo:latest"


def case(name: str) -> dict[str, Any]:
    [(document, builder)] = [(c[1], c[2]) for c in CASES if c[0] == name]
    return {**variables_for(document, builder), "image": IMAGE}


def group_of(job: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    [groups] = job["group"]
    [(name, group)] = groups.items()
    return name, group


def task_of(group: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    [tasks] = group["task"]
    [(name, task)] = tasks.items()
    return name, task


def templates(task: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["destination"]: t for t in task["template"]}


def test_production_payload(pack: PackRenderer) -> None:
    name, job = pack.job(case("production payload"))
    assert name == "csi-csbackend-main-xdjmwnyyplgo"
    assert job["type"] == "service" and job["node_pool"] == "minions" and "constraint" not in job
    assert job["meta"] == [{"run_uuid": "${uuidv4()}"}]
    assert job["vault"] == [{"policies": ["acr"], "change_mode": "restart"}]  # no project id: no empty policy
    assert job["update"] == [
        {
            "max_parallel": 1,
            "min_healthy_time": "15s",
            "healthy_deadline": "40m",
            "progress_deadline": "1h",
            "auto_revert": True,
            "stagger": "20s",
            "health_check": "checks",
            "auto_promote": True,
            "canary": 1,
        }
    ]
    assert job["migrate"] == [
        {"max_parallel": 2, "health_check": "checks", "min_healthy_time": "15s", "healthy_deadline": "40m"}
    ]
    group_name, group = group_of(job)
    assert group_name == "service" and group["count"] == 1  # no consul.serviceName: the pack's "service"
    assert group["network"] == [{"port": [{"8085": {"to": 8085}}, {"8086": {"to": 8086}}]}]
    assert group["service"] == [
        {
            "name": f"service-{number}",
            "port": str(number),
            "check": [{"type": "tcp", "interval": "30s", "timeout": "30s", "port": str(number)}],
            "tags": ["blue", f"urlprefix-{domain}.frparis.cloud-station.io", "tcp-lb"],
            "canary_tags": ["green", f"urlprefix-canary-{domain}.frparis.cloud-station.io"],
        }
        for number, domain in ((8085, "api"), (8086, "auth"))
    ]
    assert group["restart"] == [{"attempts": 3, "interval": "3m", "delay": "15s", "mode": "fail"}]
    task_name, task = task_of(group)
    assert task_name == "deployment-xxx" and task["driver"] == "docker" and task["user"] == "0"
    [config] = task["config"]
    assert config["image"] == IMAGE and config["image_pull_timeout"] == "30m"
    assert config["auth"] == [{"username": "${registry_username}", "password": "${registry_password}"}]  # ACR
    assert config["ports"] == ["8085", "8086"]
    assert "args" not in config and "entrypoint" not in config
    assert config["labels"] == {
        "job": "csi-csbackend-main-xdjmwnyyplgo",
        "group": "service",
        "task": "service",
        "alloc_id": "${NOMAD_ALLOC_ID}",
        "user_id": "",
        "project_id": "",
        "service_id": "prj_integ_8d0e89bc-71ad-4f7a-8bb9-ee6c72820248",
    }
    found = templates(task)
    assert set(found) == {"secrets/file.env", "private_registry/file.env"}
    assert '{{ with secret "/acr/data/registry" }}' in found["private_registry/file.env"]["data"]
    assert task["resources"] == [{"cpu": 100, "memory": 500, "memory_max": 1000}]


def test_all_fields_gpu_batch_job(pack: PackRenderer) -> None:
    name, job = pack.job(case("all fields"))
    assert name == "test-service"
    assert job["node_pool"] == "gpu-minions"
    assert job["constraint"] == [{"attribute": "${node.class}", "operator": "set_contains_any", "value": "L4"}]
    assert job["type"] == "batch" and "update" not in job and "migrate" not in job
    assert job["periodic"] == [{"cron": "0 0 * * *", "prohibit_overlap": True}]
    assert job["parameterized"] == [{"payload": "", "meta_required": ["env", "region"]}]
    assert job["vault"] == [{"policies": ["ghcr.io", "prj_456"], "change_mode": "restart"}]
    group_name, group = group_of(job)
    assert group_name == "my-service" and group["count"] == 3
    assert group["volume"] == [
        {
            "vol_data": {
                "type": "csi",
                "source": "vol_data",
                "read_only": False,
                "access_mode": "single-node-writer",
                "attachment_mode": "file-system",
                "per_alloc": True,
            }
        }
    ]
    [service] = group["service"]
    assert service["name"] == "my-service-3000" and service["port"] == "3000"
    assert service["check"] == [{"type": "http", "path": "/", "interval": "30s", "timeout": "30s", "port": "3000"}]
    assert service["tags"] == ["blue"] and service["canary_tags"] == ["green"]  # public, no domain yet
    assert group["restart"] == [{"attempts": 3, "interval": "3m", "delay": "15s", "mode": "delay"}]
    task_name, task = task_of(group)
    assert task_name == "dep_345" and task["user"] == "1000"
    assert task["volume_mount"] == [
        {"volume": "vol_data", "destination": "/data", "read_only": False},
        {"volume": "vol_data", "destination": "/mnt", "read_only": False},
    ]
    [config] = task["config"]
    assert config["auth"] == [{"username": "${registry_username}", "password": "${registry_password}"}]
    assert config["volumes"] == ["local/app/config.json:/app/config.json"]
    assert config["labels"]["user_id"] == "usr_123" and config["labels"]["group"] == "my-service"
    found = templates(task)
    assert '{{ with secret "/kv/data/prj_456/svc_789" }}' in found["secrets/file.env"]["data"]
    assert '{{ with secret "/kv/data/prj_456/secret/data/shared" }}' in found["secrets/shared-secrets.env"]["data"]
    assert '{{ with secret "/kv/data/ghcr.io/ghcr" }}' in found["private_registry/file.env"]["data"]
    config_file = found["local/app/config.json"]
    assert config_file["env"] is False and "base64Decode" in config_file["data"]
    assert task["resources"] == [
        {"cpu": 2000, "memory": 4096, "memory_max": 8192, "device": [{"letmutx/gpu": {"count": 1}}]}
    ]


def test_csi_volume_means_no_canary(pack: PackRenderer) -> None:
    variables = {
        **variables_for({"csiVolume": [{"id": "vol_db[0]", "mountPaths": ["/var/lib/db"]}], "update": {"canary": 3}}),
        "image": IMAGE,
    }
    _, job = pack.job(variables)
    [update] = job["update"]
    assert (update["canary"], update["auto_promote"]) == (0, False)


@pytest.mark.parametrize(
    ("network", "cluster", "tags", "canary"),
    [
        # a user's domain: qualified with cluster_domain (it was "urlprefix-api/")
        ({"domain": "api"}, "frparis.cloud-station.io", ["blue", "urlprefix-api.frparis.cloud-station.io"], None),
        # a domain the backend allocated comes qualified: not twice
        (
            {"domain": "web-abc.c.io"},
            "c.io",
            ["blue", "urlprefix-web-abc.c.io"],
            ["green", "urlprefix-canary-web-abc.c.io"],
        ),
        # the pack's default cluster domain
        ({"domain": "x"}, "", ["blue", "urlprefix-x.cloud-station.app"], None),
        (
            {"domain": "api", "custom_domain": "shop.example.com", "portType": "tcp"},
            "c.io",
            ["blue", "urlprefix-api.c.io", "custom-shop.example.com", "tcp-lb"],
            ["green", "urlprefix-canary-api.c.io", "custom-canary-shop.example.com"],
        ),
    ],
)
def test_public_tags(
    pack: PackRenderer, network: dict[str, Any], cluster: str, tags: list[str], canary: list[str] | None
) -> None:
    document: dict[str, Any] = {"networks": [{"portNumber": 8080, "portType": "http", "public": True, **network}]}
    if cluster:
        document["clusterDomain"] = cluster
    _, job = pack.job({**variables_for(document), "image": IMAGE})
    [service] = group_of(job)[1]["service"]
    assert service["tags"] == tags
    if canary is not None:
        assert service["canary_tags"] == canary


def test_no_network_is_an_internal_service(pack: PackRenderer) -> None:
    """The original's internal tag sat in an unreachable branch; we render it when there is no port."""
    variables = {**variables_for({"consul": {"serviceName": "worker"}, "clusterDomain": "c.io"}), "network": []}
    _, job = pack.job({**variables, "image": IMAGE})
    _, group = group_of(job)
    assert group["service"] == [{"name": "worker", "tags": ["urlprefix-worker.internal.c.io"]}]
    [config] = task_of(group)[1]["config"]
    assert "ports" not in config


def test_health_checks(pack: PackRenderer) -> None:
    networks = [
        {
            "portNumber": 3000,
            "portType": "http",
            "has_health_check": "http",
            "health_check": {"path": "/healthz", "interval": "15", "port": 9100},
        },
        {"portNumber": 9100, "portType": "tcp", "health_check": {"type": "grpc", "timeout": "5"}},
    ]
    _, job = pack.job({**variables_for({"networks": networks}), "image": IMAGE})
    checks = [s["check"] for s in group_of(job)[1]["service"]]
    assert checks == [
        # health_check.port names the port whose number it is
        [{"type": "http", "path": "/healthz", "interval": "15s", "timeout": "30s", "port": "9100"}],
        [{"type": "grpc", "interval": "30s", "timeout": "5s", "port": "9100"}],
    ]


def test_restart_never(pack: PackRenderer) -> None:
    _, job = pack.job({**variables_for({"restartMode": "never", "restartAttempts": 4}), "image": IMAGE})
    assert group_of(job)[1]["restart"] == [{"attempts": 0, "interval": "3m", "delay": "15s", "mode": "fail"}]


def test_args_run_through_the_shell(pack: PackRenderer) -> None:
    _, job = pack.job(case("start command and linked secrets, railpack"))
    [config] = task_of(group_of(job)[1])[1]["config"]
    assert config["entrypoint"] == ["/bin/sh", "-c"] and config["args"] == ["export A=b;"]
    _, job = pack.job(case("start command and linked secrets, csdocker"))
    [config] = task_of(group_of(job)[1])[1]["config"]
    assert config["entrypoint"] == ["/bin/bash", "-lc"] and config["command"] == "run"
    assert config["args"] == ["export DB_URL=postgres://$DB_USER@db;export X=y;node server.js"]
    connection = templates(task_of(group_of(job)[1])[1])["secrets/connection.env"]
    assert connection["data"] == (
        '{{ with secret "/kv/data//img_1" }}{{ $U := index .Data.data "U" }}'
        '{{ with service "db-3306" }}{{ if . }}{{ with index . 0 }}CONN= "mysql://{{ $U }}@{{ .Address }}"\n'
        "{{ end }}{{ end }}{{ end }}{{ end }}\n"
    )


def test_linked_services_tls_regions_and_secrets(pack: PackRenderer) -> None:
    document = {
        "projectId": "prj-1",
        "serviceId": "svc-1",
        "regions": "eu-west",
        "node_pool": "minions",
        "consul": {
            "serviceName": "web",
            "linkedServices": [
                {"variableName": "DB_HOST", "consulServiceName": "db-5432_HOST"},
                {"variableName": "DB_PORT", "consulServiceName": "db-5432_PORT"},
                {"variableName": "CACHE", "consulServiceName": "cache-6379"},
            ],
        },
        "tls": {
            "cert_path": "local/c.pem",
            "key_path": "local/c.key",
            "common_name": "a.b",
            "pka_path": "pki/issue/r",
            "ttl": "3h",
        },
        "vaultLinkedSecretPaths": [{"prefix": "PG_", "secretPath": "pg"}],
        "sharedSecretPath": "shared",
        "ram": 300,
    }
    _, job = pack.job({**variables_for(document), "image": "nginx:1"})
    assert job["node_pool"] == "minions"
    assert job["constraint"] == [{"attribute": "${node.class}", "operator": "set_contains_any", "value": "eu-west"}]
    assert job["vault"] == [{"policies": ["prj-1", "acr"], "change_mode": "restart"}]
    _, task = task_of(group_of(job)[1])
    [config] = task["config"]
    assert "auth" not in config  # neither ACR nor a private registry
    found = templates(task)
    assert found["secrets/consul_services.env"]["data"] == (
        '{{ with service "db-5432" }}{{ if . }}{{ with index . 0 }}DB_HOST={{ .Address }}\n{{ end }}{{ end }}{{ end }}'
        '{{ with service "db-5432" }}{{ if . }}{{ with index . 0 }}DB_PORT={{ .Port }}\n{{ end }}{{ end }}{{ end }}'
        '{{ with service "cache-6379" }}{{ if . }}{{ with index . 0 }}CACHE={{ .Address }}:{{ .Port }}\n'
        "{{ end }}{{ end }}{{ end }}"
    )
    issue = '{{ with secret "pki/issue/r" "common_name=a.b" "ttl=3h" }}'
    assert found["local/c.pem"]["data"] == issue + "{{ .Data.certificate }}{{ end }}\n"
    assert found["local/c.key"]["data"] == issue + "{{ .Data.private_key }}{{ end }}\n"
    assert found["secrets/linked-0.env"]["data"].startswith('{{ with secret "/kv/data/prj-1/pg" }}')
    assert "PG_{{ $key }}={{ $value }}" in found["secrets/linked-0.env"]["data"]
    assert '"/kv/data/prj-1/shared"' in found["secrets/shared-secrets.env"]["data"]
    assert task["resources"] == [{"cpu": 200, "memory": 300, "memory_max": 600}]


def test_pack_only_features(pack: PackRenderer) -> None:
    """Variables packvars never writes but the pack honours, as the original's."""
    variables = {
        **variables_for({}),
        "image": IMAGE,
        "autoscale": True,
        "ephemeral_disk": {"enabled": True, "migrate": True, "size": 500, "sticky": False},
        "privileged": True,
        "multi_region": True,
        "region": "eu",
        "script": "echo hi",
        "env_vars": [{"key": "A", "value": "${NOMAD_ALLOC_ID}"}],
    }
    _, job = pack.job(variables)
    assert job["region"] == "eu" and {"distinct_hosts": True} in job["constraint"]
    _, group = group_of(job)
    assert group["ephemeral_disk"] == [{"migrate": True, "size": 500, "sticky": False}]
    [scaling] = group["scaling"]
    assert (scaling["enabled"], scaling["min"], scaling["max"]) == (True, 1, 3)
    checks = scaling["policy"][0]["check"]
    assert [next(iter(c)) for c in checks] == ["cpu_usage", "memory_usage"]
    _, task = task_of(group)
    assert task["config"][0]["privileged"] is True
    assert task["env"] == {"A": "${NOMAD_ALLOC_ID}"}
    assert templates(task)["local/script.sh"]["data"] == '#!/bin/ash\necho hi\nexec "$@"\n'


def test_nasty_strings_stay_strings(pack: PackRenderer) -> None:
    nasty = 'say "hi" \\ %{ if x } {{ .Env }} [[ var ]]\nline'
    document = {
        "templateStringVariables": [{"name": "URL", "pattern": nasty, "serviceName": "db"}],
        "configFiles": [{"path": "a.txt", "content": nasty}],
        "build": {"startCommand": nasty},
        "command": nasty,
    }
    _, job = pack.job({**variables_for(document, "csdocker"), "image": IMAGE})
    _, task = task_of(group_of(job)[1])
    [config] = task["config"]
    assert config["args"] == [nasty] and config["command"] == nasty


def test_only_nomad_runtime_interpolations_are_literal() -> None:
    """``${...}`` written into the template itself is Nomad's run-time interpolation, nothing else."""
    import re

    from cloudstation.plugins.builtin.packs import embedded_pack_dir

    template = (embedded_pack_dir() / "templates" / "cloudstation.nomad.tpl").read_text()
    runtime = set(re.findall(r'"\$\{([A-Za-z0-9_.()]+)\}"', template))
    assert runtime == {"uuidv4()", "node.class", "registry_username", "registry_password", "NOMAD_ALLOC_ID"}
    assert "${" not in (embedded_pack_dir() / "variables.hcl").read_text()
