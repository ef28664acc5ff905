"""Params → the variables of the embedded ``cloudstation`` pack (written to ``vars.hcl`` by nomad-pack).

Owns the mapping from the dispatch params (resources, networks with health checks, job type, volumes,
consul, restart, update, config files, runtime secrets, TLS, linked services, regions, private
registry...) to the names and types the pack's ``variables.hcl`` declares. ``job_name`` and ``image`` are
filled in by the nomad-pack plugin from its ``deployment_name`` and the artifact.

No secret goes into these variables, only where secrets live: runtime secrets (the service's and the
shared KV secrets, template strings, TLS certificates, private registry credentials) are Vault paths the
pack turns into Nomad ``template`` blocks, rendered by Nomad on the client. Tokens go to the tools'
environments. Config file contents are not secrets; they are carried base64-encoded (the original's
format), which keeps any content (binary too) exact and inert in HCL and in Nomad's template language.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Any

from cloudstation.dispatch.params_models import (
    ConfigFile,
    ConsulLinkedService,
    DeployParamsBase,
    NetworkPort,
    TemplateStringVariable,
    TlsSettings,
)

DEFAULT_CPU = 200
DEFAULT_MEMORY = 256
_META_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Names spliced into Nomad template code (Consul service names, Vault paths): no quotes, braces, spaces.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@=-]*")
KV_MOUNT = "kv/data"


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
    if params.regions and params.gpu <= 0:
        variables["regions"] = params.regions
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
    variables.update(_runtime_variables(params))
    return variables


def _runtime_variables(params: DeployParamsBase) -> dict[str, Any]:
    """Config files, runtime secrets (Vault), TLS, linked services and the private registry."""
    variables: dict[str, Any] = {}
    files = [entry for entry in (config_file_entry(f) for f in params.config_files) if entry is not None]
    if files:
        variables["config_files"] = files
    env_paths = vault_env_paths(params)
    if env_paths:
        variables["vault_env"] = env_paths
    templates = [
        entry
        for entry in (template_string_entry(t, params.project_id) for t in params.template_string_variables)
        if entry is not None
    ]
    if templates:
        variables["template_strings"] = templates
    tls = tls_entry(params.tls)
    if tls is not None:
        variables["tls"] = [tls]
    linked = [entry for entry in map(linked_service_entry, params.consul.linked_services) if entry is not None]
    if linked:
        variables["consul_linked_services"] = linked
    registry = params.private_registry
    if registry and _SAFE_NAME.fullmatch(registry) and _safe_or_empty(params.private_registry_provider):
        variables["private_registry"] = registry
        if params.private_registry_provider:
            variables["private_registry_provider"] = params.private_registry_provider
    if any(key in variables for key in ("vault_env", "template_strings", "tls", "private_registry")):
        policies = [name for name in (variables.get("private_registry", ""), params.project_id) if name]
        if policies:
            variables["vault_policies"] = policies
    return variables


def config_file_entry(config: ConfigFile) -> dict[str, str] | None:
    """One ``config_files`` element: the path inside the task (no leading ``/``), the base64 content.

    ``content`` arrives base64-encoded (the original's pack decoded it); content that is not valid
    base64 is taken as the file's text and encoded here, so the pack always gets base64.
    """
    path = config.path.strip().lstrip("/")
    if not path or ".." in path.split("/") or any(char == ":" or ord(char) < 32 for char in path):
        return None  # outside the task directory, or not a valid docker bind mount
    return {"path": path, "content": _as_base64(config.content)}


def _as_base64(content: str) -> str:
    try:
        base64.b64decode(content.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return base64.b64encode(content.encode("utf-8")).decode("ascii")
    return content


def kv_path(project_id: str, name: str) -> str:
    """The KV v2 path of a project-relative secret name (``kv/data/<project>/<name>``), as the original."""
    name = name.strip("/")
    return f"{KV_MOUNT}/{project_id}/{name}" if project_id else f"{KV_MOUNT}/{name}"


def vault_env_paths(params: DeployParamsBase) -> list[dict[str, str]]:
    """``vault_env``: KV secrets whose keys become the task's environment, each with a name prefix.

    The service's own secrets (``secretsPath``, the same path the build reads), the project's shared
    secrets (``sharedSecretPath``, under ``kv/data/<project>/``) and each ``vaultLinkedSecretPaths[]``
    entry (under the same folder, its keys prefixed with ``prefix``).
    """
    entries: list[dict[str, str]] = []
    if params.secrets_path:
        entries.append({"path": params.secrets_path.strip("/"), "prefix": ""})
    if params.shared_secret_path:
        entries.append({"path": kv_path(params.project_id, params.shared_secret_path), "prefix": ""})
    for linked in params.vault_linked_secret_paths:
        if linked.secret_path and (not linked.prefix or _ENV_NAME.fullmatch(linked.prefix)):
            entries.append({"path": kv_path(params.project_id, linked.secret_path), "prefix": linked.prefix})
    return [entry for entry in entries if _SAFE_NAME.fullmatch(entry["path"])]


def template_string_entry(variable: TemplateStringVariable, project_id: str) -> dict[str, Any] | None:
    """One ``template_strings`` element: ``name`` rendered from ``pattern`` (Nomad template code) with
    the first instance of Consul service ``service_name`` in scope and each of ``linked_vars`` bound
    (as ``$NAME``) to that key of the KV secret ``secret_path``."""
    if not _ENV_NAME.fullmatch(variable.name) or not _SAFE_NAME.fullmatch(variable.service_name):
        return None
    secret_path = kv_path(project_id, variable.service_secret_path) if variable.service_secret_path else ""
    if secret_path and not _SAFE_NAME.fullmatch(secret_path):
        return None
    return {
        "name": variable.name,
        "pattern": variable.pattern,
        "service_name": variable.service_name,
        "secret_path": secret_path,
        "linked_vars": [name for name in variable.linked_vars if _ENV_NAME.fullmatch(name)],
    }


def tls_entry(tls: TlsSettings | None) -> dict[str, str] | None:
    """One ``tls`` element: a certificate and key issued by Vault PKI ``pka_path`` into the task."""
    if tls is None or not tls.pka_path or not (tls.cert_path or tls.key_path):
        return None
    fields = {
        "cert_path": tls.cert_path,
        "key_path": tls.key_path,
        "common_name": tls.common_name,
        "pka_path": tls.pka_path,
        "ttl": tls.ttl,
    }
    return fields if all(_safe_or_empty(value) for value in fields.values()) else None


def linked_service_entry(service: ConsulLinkedService) -> dict[str, str] | None:
    """One ``consul_linked_services`` element: env ``key`` ← the address of Consul service ``value``
    (``NAME_HOST``: the host only, ``NAME_PORT``: the port only, else ``host:port``)."""
    if not _ENV_NAME.fullmatch(service.variable_name) or not _SAFE_NAME.fullmatch(service.consul_service_name):
        return None
    return {"key": service.variable_name, "value": service.consul_service_name}


def _safe_or_empty(value: str) -> bool:
    return not value or _SAFE_NAME.fullmatch(value) is not None


def _meta(params: DeployParamsBase) -> dict[str, str]:
    meta = {
        "service_id": params.service_id,
        "deployment_id": params.deployment_id,
        "project_id": params.project_id,
        "team_id": params.team_id,
        "owner_id": params.owner_id,
    }
    return {key: value for key, value in meta.items() if value and _META_KEY.fullmatch(key)}
