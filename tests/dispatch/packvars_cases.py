"""The original generator's tests as complete variable sets (Cloudstation-cli v2.0.1
``internal/hclgen``): each case names the test it comes from; shared by the packvars and pack render tests."""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from cloudstation.dispatch.packvars import pack_variables
from cloudstation.dispatch.params_models import DeployImageParams, DeployRepositoryParams


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def variables_for(document: dict[str, Any], builder: str = "", *, image: bool = False) -> dict[str, Any]:
    """The pack variables for a params document (camelCase, as dispatched), its networks as given."""
    model = DeployImageParams if image else DeployRepositoryParams
    params = msgspec.convert({"jobId": "test-job", **document}, model)
    return pack_variables(params, params.networks, builder=builder)


def restart(attempts: int, mode: str) -> dict[str, Any]:
    """restart_attempts / restart_mode as the original wrote them, and the restart object (ours: the pack
    reads only the object, which the original never wrote)."""
    return {
        "restart_attempts": attempts,
        "restart_mode": mode,
        "restart": {"attempts": attempts, "interval": "3m", "delay": "15s", "mode": mode},
    }


def port(number: int, kind: str, check: str, *, public: bool = False, domain: str = "", **extra: Any) -> dict[str, Any]:
    """One ``network`` element as generateNetworking writes it."""
    health = {"type": check, "path": "/", "interval": "30s", "timeout": "30s", "port": number}
    health.update(extra.pop("health_check", {}))
    entry = {
        "name": str(number),
        "port": number,
        "type": kind,
        "public": public,
        "domain": domain,
        "custom_domain": "",
        "has_health_check": check,
        "health_check": health,
    }
    entry.update(extra)
    return entry


# What every deployment carries (the original writes these lines whatever the params).
ALWAYS = {
    **restart(3, "fail"),
    "regions": "",
    "user": "0",
    "use_csi_volume": False,
    "config_files": [],
    "template": [],
    "use_tls": False,
    "vault_linked_secrets": [],
}

PRODUCTION_NETWORK = {"portType": "tcp", "public": True, "has_health_check": "tcp"}
PRODUCTION_CHECK = {"type": "tcp", "path": "/", "interval": "30s", "timeout": "30s"}

CASES: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    # real_payload_test.go TestRealProductionPayload_CSBackend: the production payload (2 public tcp ports)
    (
        "production payload",
        {
            "jobId": "csi-csbackend-main-xdjmwnyyplgo",
            "imageName": "acrbc001.azurecr.io/csi-csbackend-main-xdjmwnyyplgo",
            "imageTag": "latest",
            "cpu": 100,
            "ram": 500,
            "replicaCount": 1,
            "restartAttempts": 0,
            "restartMode": "fail",
            "clusterDomain": "frparis.cloud-station.io",
            "networks": [
                {
                    **PRODUCTION_NETWORK,
                    "portNumber": 8085,
                    "domain": "api",
                    "health_check": {**PRODUCTION_CHECK, "port": 8085},
                },
                {
                    **PRODUCTION_NETWORK,
                    "portNumber": 8086,
                    "domain": "auth",
                    "health_check": {**PRODUCTION_CHECK, "port": 8086},
                },
            ],
        },
        "csdocker",
        {
            **ALWAYS,
            "job_name": "csi-csbackend-main-xdjmwnyyplgo",
            "count": 1,
            "resources": {"cpu": 100, "memory": 500, "memory_max": 1000, "gpu": 0},
            "cluster_domain": "frparis.cloud-station.io",
            "network": [
                port(8085, "tcp", "tcp", public=True, domain="api"),
                port(8086, "tcp", "tcp", public=True, domain="auth"),
            ],
        },
    ),
    # real_payload_test.go TestRealProductionPayload_PrivateTCPVariant
    (
        "production payload, private tcp",
        {
            "cpu": 100,
            "ram": 500,
            "replicaCount": 1,
            "clusterDomain": "internal.cloud-station.io",
            "networks": [
                {
                    **PRODUCTION_NETWORK,
                    "public": False,
                    "portNumber": 8085,
                    "health_check": {**PRODUCTION_CHECK, "port": 8085},
                }
            ],
        },
        "csdocker",
        {
            **ALWAYS,
            "job_name": "test-job",
            "count": 1,
            "resources": {"cpu": 100, "memory": 500, "memory_max": 1000, "gpu": 0},
            "cluster_domain": "internal.cloud-station.io",
            "network": [port(8085, "tcp", "tcp")],
        },
    ),
    # generator_test.go TestGenerateVarsFile_AllFields (config file content: the original wrote the raw
    # JSON, which its pack then fails to base64-decode; we encode it)
    (
        "all fields",
        {
            "jobId": "test-service",
            "replicaCount": 3,
            "ownerId": "usr_123",
            "projectId": "prj_456",
            "serviceId": "svc_789",
            "deploymentId": "dep_345",
            "secretsPath": "secret/data/app",
            "sharedSecretPath": "secret/data/shared",
            "usesKvEngine": True,
            "ownerUsesKvEngine": False,
            "cpu": 2000,
            "ram": 4096,
            "gpu": 1,
            "gpu_model": "L4",
            "networks": [{"portNumber": 3000, "portType": "http", "public": True}],
            "consul": {"serviceName": "my-service", "tags": ["web", "api"]},
            "restartMode": "delay",
            "node_pool": "gpu-pool",
            "privateRegistry": "ghcr.io",
            "privateRegistryProvider": "ghcr",
            "docker_user": "1000",
            "csiVolume": [{"id": "vol_data[0]", "mountPaths": ["/data", "/mnt"]}],
            "jobConfig": {
                "type": "batch",
                "cron": "0 0 * * *",
                "prohibit_overlap": True,
                "meta_required": ["env", "region"],
            },
            "configFiles": [{"path": "/app/config.json", "content": '{"key":"value"}'}],
            "regions": "us-west-2",
        },
        "",
        {
            **ALWAYS,
            **restart(3, "delay"),
            "job_name": "test-service",
            "count": 3,
            "secret_path": "secret/data/app",
            "resources": {"cpu": 2000, "memory": 4096, "memory_max": 8192, "gpu": 1},
            "gpu_type": "L4",
            "node_pool": "gpu-pool",
            "user_id": "usr_123",
            "alloc_id": "dep_345",
            "project_id": "prj_456",
            "service_id": "svc_789",
            "shared_secret_path": "secret/data/shared",
            "uses_kv_engine": True,
            "owner_uses_kv_engine": False,
            "regions": "",  # a GPU job ignores regions
            "private_registry": "ghcr.io",
            "private_registry_provider": "ghcr",
            "user": "1000",
            "use_csi_volume": True,
            "volume_name": "vol_data",
            "volume_mount_destination": ["/data", "/mnt"],
            "config_files": [{"path": "/app/config.json", "content": b64('{"key":"value"}')}],
            "consul_service_name": "my-service",  # no consul_tags: the original never wrote them
            "consul_linked_services": [],
            "network": [port(3000, "http", "http", public=True)],
            "job_config": {
                "type": "batch",
                "cron": "0 0 * * *",
                "prohibit_overlap": True,
                "payload": "",
                "meta_required": ["env", "region"],
                "meta_optional": [],  # the pack's object needs it (the original left it out)
            },
        },
    ),
    # generator_test.go TestPrintRealPayloadVars / TestGenerateVarsFile_ProductionPayloadValidation
    (
        "production payload, private http with a custom domain",
        {
            "jobId": "csi-12devsnode-master-aomzkbgpepel",
            "replicaCount": 1,
            "cpu": 100,
            "ram": 500,
            "restartMode": "fail",
            "restartAttempts": 3,
            "node_pool": "minions",
            "ownerId": "team_9e0c8754-de83-4fee-937b-380ade396b1c",
            "deploymentId": "gdeployment_2e808231-d90f-4d3d-aaa4-dcd7d4d81788",
            "projectId": "prj_90aae90a-64b0-40a6-ac2c-39c27f3ffa49",
            "serviceId": "prj_integ_2f716e42-7e18-4444-be8a-94607e3a431b",
            "secretsPath": "prj_90aae90a/data/prj_integ_2f716e42?version=1",
            "sharedSecretPath": "prj_env_aed55113-8d32-447c-8900-8e73b9e92dab",
            "usesKvEngine": False,
            "ownerUsesKvEngine": False,
            "clusterDomain": "cluster.example.com",
            "clusterTcpDomain": "tcp.cluster.example.com",
            "consul": {"serviceName": "csi-12devsnode-master-aomzkbgpepel"},
            "jobConfig": {"type": "service", "prohibit_overlap": False},
            "networks": [
                {
                    "portNumber": 3000,
                    "portType": "http",
                    "public": False,
                    "custom_domain": "my-service.internal.cluster.example.com",
                    "has_health_check": "http",
                    "health_check": {
                        "type": "http",
                        "path": "/health/ready",
                        "interval": "15s",
                        "timeout": "10s",
                        "port": 3000,
                    },
                }
            ],
        },
        "csdocker",
        {
            **ALWAYS,
            "job_name": "csi-12devsnode-master-aomzkbgpepel",
            "count": 1,
            "secret_path": "prj_90aae90a/data/prj_integ_2f716e42?version=1",
            "resources": {"cpu": 100, "memory": 500, "memory_max": 1000, "gpu": 0},
            "node_pool": "minions",
            "user_id": "team_9e0c8754-de83-4fee-937b-380ade396b1c",
            "alloc_id": "gdeployment_2e808231-d90f-4d3d-aaa4-dcd7d4d81788",
            "project_id": "prj_90aae90a-64b0-40a6-ac2c-39c27f3ffa49",
            "service_id": "prj_integ_2f716e42-7e18-4444-be8a-94607e3a431b",
            "shared_secret_path": "prj_env_aed55113-8d32-447c-8900-8e73b9e92dab",
            "uses_kv_engine": False,
            "owner_uses_kv_engine": False,
            "consul_service_name": "csi-12devsnode-master-aomzkbgpepel",
            "consul_linked_services": [],
            "cluster_domain": "cluster.example.com",
            "network": [
                port(
                    3000,
                    "http",
                    "http",
                    custom_domain="my-service.internal.cluster.example.com",
                    health_check={"path": "/health/ready", "interval": "15s", "timeout": "10s"},
                )
            ],
            "job_config": {
                "type": "service",
                "cron": "",
                "prohibit_overlap": False,  # kept for service (and system) jobs
                "payload": "",
                "meta_required": [],
                "meta_optional": [],
            },
        },
    ),
    # generator_edge_cases_test.go TestGenerateNetworking_EmptyNetworkArray: the framework default port
    (
        "no networks, csdocker",
        {},
        "csdocker",
        {**ALWAYS, "job_name": "test-job", "network": [port(8000, "http", "tcp")]},
    ),
    # port_defaults.go GetFrameworkDefault
    (
        "no networks, railpack",
        {},
        "railpack",
        {**ALWAYS, "job_name": "test-job", "network": [port(3000, "http", "tcp")]},
    ),
    (
        "no networks, nixpacks",
        {},
        "nixpacks",
        {**ALWAYS, "job_name": "test-job", "network": [port(3000, "http", "tcp")]},
    ),
    ("no networks, image", {}, "noop", {**ALWAYS, "job_name": "test-job", "network": [port(3000, "http", "tcp")]}),
    # generator_edge_cases_test.go TestGenerateNetworking_NilHealthCheck: the port's type is the check's
    (
        "empty health check",
        {"networks": [{"portNumber": 8080, "portType": "http", "public": True}]},
        "csdocker",
        {**ALWAYS, "job_name": "test-job", "network": [port(8080, "http", "http", public=True)]},
    ),
    # generator_edge_cases_test.go TestGenerateNetworking_MultipleNetworksWithMixedConfig (port 0 skipped)
    (
        "mixed networks",
        {
            "networks": [
                {
                    "portNumber": 8080,
                    "portType": "http",
                    "public": True,
                    "has_health_check": "http",
                    "health_check": {"type": "http", "path": "/health", "interval": "15s", "timeout": "5s"},
                },
                {
                    "portNumber": 9090,
                    "portType": "grpc",
                    "has_health_check": "grpc",
                    "health_check": {"type": "grpc", "interval": "30s", "timeout": "10s"},
                },
                {"portNumber": 0, "portType": "tcp"},
            ]
        },
        "csdocker",
        {
            **ALWAYS,
            "job_name": "test-job",
            "network": [
                port(
                    8080,
                    "http",
                    "http",
                    public=True,
                    health_check={"path": "/health", "interval": "15s", "timeout": "5s"},
                ),
                port(9090, "grpc", "grpc", health_check={"timeout": "10s"}),
            ],
        },
    ),
    # generator_edge_cases_test.go TestGenerateNetworking_ExplicitHealthCheckPort
    (
        "explicit health check port",
        {
            "networks": [
                {
                    "portNumber": 8080,
                    "portType": "http",
                    "public": True,
                    "has_health_check": "http",
                    "health_check": {
                        "type": "http",
                        "path": "/health",
                        "interval": "30s",
                        "timeout": "10s",
                        "port": 9090,
                    },
                }
            ]
        },
        "csdocker",
        {
            **ALWAYS,
            "job_name": "test-job",
            "network": [
                port(
                    8080, "http", "http", public=True, health_check={"path": "/health", "timeout": "10s", "port": 9090}
                )
            ],
        },
    ),
    # generator_test.go TestGenerateVarsFile_TLS (TLS enabled)
    (
        "tls",
        {
            "tls": {
                "cert_path": "/path/to/cert",
                "key_path": "/path/to/key",
                "common_name": "example.com",
                "pka_path": "/path/to/pka",
                "ttl": "24h",
            }
        },
        "csdocker",
        {
            **ALWAYS,
            "job_name": "test-job",
            "network": [port(8000, "http", "tcp")],
            "use_tls": True,
            "tls": [
                {
                    "cert_path": "/path/to/cert",
                    "key_path": "/path/to/key",
                    "common_name": "example.com",
                    "pka_path": "/path/to/pka",
                    "ttl": "24h",
                }
            ],
        },
    ),
    # generator_test.go TestGenerateVarsFile_ConsulLinkedServices (with linked services)
    (
        "consul linked services",
        {
            "replicaCount": 1,
            "consul": {
                "serviceName": "my-service",
                "linkedServices": [
                    {"variableName": "DB_URL", "consulServiceName": "postgres"},
                    {"variableName": "REDIS_URL", "consulServiceName": "redis"},
                ],
            },
        },
        "nixpacks",
        {
            **ALWAYS,
            "job_name": "test-job",
            "count": 1,
            "consul_service_name": "my-service",
            "consul_linked_services": [{"key": "DB_URL", "value": "postgres"}, {"key": "REDIS_URL", "value": "redis"}],
            "network": [port(3000, "http", "tcp")],
        },
    ),
    # TestGenerateVarsFile (args): vaultLinkedSecrets' exports then the start command, for a docker build
    (
        "start command and linked secrets, csdocker",
        {
            "vaultLinkedSecrets": [
                {"secret": "DB_URL", "template": "postgres://$DB_USER@db"},
                {"secret": "X", "template": "y"},
            ],
            "build": {"startCommand": "node server.js"},
            "entrypoint": ["/bin/bash", "-lc"],
            "command": "run",
            "templateStringVariables": [
                {
                    "name": "CONN",
                    "pattern": "mysql://{{ $U }}@{{ .Address }}",
                    "serviceName": "db-3306",
                    "serviceSecretPath": "img_1",
                    "linkedVars": ["U"],
                }
            ],
        },
        "csdocker",
        {
            **ALWAYS,
            "job_name": "test-job",
            "command": "run",
            "entrypoint": ["/bin/bash", "-lc"],  # a list (the original wrote the string "[...]")
            "template": [
                {
                    "name": "CONN",
                    "pattern": "mysql://{{ $U }}@{{ .Address }}",
                    "service_name": "db-3306",
                    "service_secret_path": "img_1",
                    "linked_vars": ["U"],
                }
            ],
            "network": [port(8000, "http", "tcp")],
            "args": ["export DB_URL=postgres://$DB_USER@db;export X=y;node server.js"],
        },
    ),
    # railpack / nixpacks images start the app themselves: only the exports
    (
        "start command and linked secrets, railpack",
        {"vaultLinkedSecrets": [{"secret": "A", "template": "b"}], "build": {"startCommand": "npm start"}},
        "railpack",
        {**ALWAYS, "job_name": "test-job", "network": [port(3000, "http", "tcp")], "args": ["export A=b;"]},
    ),
    (
        "start command, nixpacks",
        {"build": {"startCommand": "npm start"}},
        "nixpacks",
        {**ALWAYS, "job_name": "test-job", "network": [port(3000, "http", "tcp")]},
    ),
    # generator.go generateUpdateParams: written as an object with every attribute (the original wrote a
    # string, which nomad-pack rejects); the pack's defaults for what is not given
    (
        "update",
        {"update": {"minHealthyTime": "30s", "autoRevert": True, "canary": 2, "autoPromote": True}},
        "csdocker",
        {
            **ALWAYS,
            "job_name": "test-job",
            "network": [port(8000, "http", "tcp")],
            "update": {
                "min_healthy_time": "30s",
                "healthy_deadline": "40m",
                "progress_deadline": "1h",
                "auto_revert": True,
                "auto_promote": True,
                "max_parallel": 1,
                "canary": 2,
                "health_check": "checks",
                "stagger": "20s",
            },
        },
    ),
    # generator.go generateJobTypeConfig: sysbatch forces prohibit_overlap; payload carried
    (
        "job config sysbatch",
        {"jobConfig": {"type": "sysbatch", "payload": "optional", "meta_required": ["tenant"]}},
        "csdocker",
        {
            **ALWAYS,
            "job_name": "test-job",
            "network": [port(8000, "http", "tcp")],
            "job_config": {
                "type": "sysbatch",
                "cron": "",
                "prohibit_overlap": True,
                "payload": "optional",
                "meta_required": ["tenant"],
                "meta_optional": [],
            },
        },
    ),
    # a CPU-only resources block: the pack's memory (the original wrote memory=0, which Nomad rejects)
    (
        "cpu only",
        {"cpu": 300, "regions": "eu-west,eu-north", "vaultLinkedSecretPaths": [{"prefix": "PG_", "secretPath": "pg"}]},
        "csdocker",
        {
            **ALWAYS,
            "job_name": "test-job",
            "resources": {"cpu": 300, "memory": 200, "memory_max": 512, "gpu": 0},
            "regions": "eu-west,eu-north",
            "network": [port(8000, "http", "tcp")],
            "vault_linked_secrets": [{"prefix": "PG_", "secret_path": "pg"}],  # the original always wrote []
        },
    ),
]
