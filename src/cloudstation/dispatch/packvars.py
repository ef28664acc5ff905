"""Params → the variables of the embedded ``cloudstation`` pack (written to ``vars.hcl`` by nomad-pack).

Owns the mapping from the dispatch params (resources, networks with health checks, job type, volumes,
consul, restart, update...) to the names and types the pack's ``variables.hcl`` declares. ``job_name``
and ``image`` are filled in by the nomad-pack plugin from its ``deployment_name`` and the artifact.
No secret goes into these variables: Vault secrets are build-time only, and tokens go to the tools'
environments.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from cloudstation.dispatch.params_models import DeployParamsBase, NetworkPort

DEFAULT_CPU = 200
DEFAULT_MEMORY = 256
_META_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def network_entry(index: int, port: NetworkPort) -> dict[str, Any]:
    """One ``network`` element of the pack."""
    check = port.health_check
    enabled = port.has_health_check.strip().lower() in ("true", "yes", "1")
    return {
        "name": f"port{index}" if not port.port_number else f"p{port.port_number}",
        "port": port.port_number,
        "type": port.port_type or "http",
        "public": port.public,
        "domain": port.domain,
        "custom_domain": port.custom_domain,
        "health_check": {
            "type": (check.type or "http") if enabled else "none",
            "path": check.path or "/",
            "interval": check.interval or "30s",
            "timeout": check.timeout or "5s",
        },
    }


def pack_variables(params: DeployParamsBase, networks: Sequence[NetworkPort]) -> dict[str, Any]:
    """The pack variables for ``params``, with ``networks`` (domains already allocated)."""
    job = params.job_config
    job_type = (job.type if job is not None and job.type else "service").lower()
    variables: dict[str, Any] = {
        "job_type": "batch" if job_type == "batch" else "service",
        "count": params.replica_count if params.replica_count > 0 else 1,
        "meta": _meta(params),
        "resources": {
            "cpu": params.cpu if params.cpu > 0 else DEFAULT_CPU,
            "memory": params.ram if params.ram > 0 else DEFAULT_MEMORY,
            "memory_max": 0,
            "gpu": max(params.gpu, 0),
        },
        "network": [network_entry(i, port) for i, port in enumerate(networks)],
    }
    if params.regions:
        variables["region"] = params.regions
    if params.node_pool:
        variables["node_pool"] = params.node_pool
    if job is not None and variables["job_type"] == "batch":
        if job.cron:
            variables["cron"] = job.cron
        variables["prohibit_overlap"] = job.prohibit_overlap
        if job.meta_required:
            variables["meta_required"] = list(job.meta_required)
    if params.command:
        variables["command"] = params.command
    if params.entrypoint:
        variables["entrypoint"] = list(params.entrypoint)
    if params.docker_user:
        variables["user"] = params.docker_user
    if params.gpu_model:
        variables["gpu_model"] = params.gpu_model
    volumes = [
        {"name": f"vol{i}_{j}", "source": vol.id, "destination": path, "read_only": False}
        for i, vol in enumerate(params.csi_volume)
        for j, path in enumerate(vol.mount_paths)
        if vol.id and path
    ]
    if volumes:
        variables["volumes"] = volumes
    if params.consul.service_name:
        variables["consul_service_name"] = params.consul.service_name
    if params.consul.tags:
        variables["consul_tags"] = list(params.consul.tags)
    if params.restart_mode or params.restart_attempts:
        variables["restart"] = {
            "attempts": max(params.restart_attempts, 0),
            "interval": "30m",
            "delay": "15s",
            "mode": params.restart_mode or "fail",
        }
    if params.update is not None:
        up = params.update
        variables["update"] = {
            "max_parallel": up.max_parallel if up.max_parallel > 0 else 1,
            "min_healthy_time": up.min_healthy_time or "10s",
            "healthy_deadline": up.healthy_deadline or "5m",
            "progress_deadline": up.progress_deadline or "10m",
            "auto_revert": up.auto_revert,
            "canary": max(up.canary, 0),
            "auto_promote": up.auto_promote,
        }
    return variables


def _meta(params: DeployParamsBase) -> dict[str, str]:
    meta = {
        "service_id": params.service_id,
        "deployment_id": params.deployment_id,
        "project_id": params.project_id,
        "team_id": params.team_id,
        "owner_id": params.owner_id,
    }
    return {key: value for key, value in meta.items() if value and _META_KEY.fullmatch(key)}
