"""Params → the variables of the ``cloudstation`` pack (written to ``vars.hcl`` by the nomad-pack plugin).

Owns the mapping from the dispatch params to the variables the ``cloudstation`` pack declares
(``plugins/builtin/packs/cloudstation/variables.hcl``; its README says where the schema comes from):
their names, shapes, defaults and omitted-when-empty rules, so that a platform's own copy of that pack in
a pack registry and our embedded pack (which declares exactly these variables) both deploy the same job.
``image`` is filled in by the nomad-pack plugin from the artifact it deploys (the pushed reference).

Some variables are written in the form nomad-pack and Nomad can use, where a string would not do (each
listed in ``packs/cloudstation/README.md``): ``update`` and ``entrypoint`` as an object and a list,
``job_config`` with all of its attributes and a real bool, the ``restart`` object beside
``restart_attempts`` / ``restart_mode`` (the pack only reads the object), ``vault_linked_secrets`` from
``vaultLinkedSecretPaths``, durations Nomad can parse, and resources with a non-zero cpu and memory.

No secret value goes into these variables, only where secrets live (Vault paths); the pack turns them
into Nomad ``template`` blocks rendered on the client.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Any

from cloudstation.dispatch.params_models import (
    ConfigFile,
    DeployParamsBase,
    HealthCheck,
    JobConfig,
    NetworkPort,
    UpdateParameters,
)

# The defaults written when the params leave a value out (the pack's own, variables.hcl).
DEFAULT_CPU = 200
DEFAULT_MEMORY = 200
MIN_MEMORY_MAX = 512
DEFAULT_RESTART_ATTEMPTS = 3  # when restartAttempts is 0 and the mode is not "never"
RESTART_INTERVAL = "3m"  # the pack's restart object
RESTART_DELAY = "15s"
DEFAULT_CHECK_TIMING = "30s"  # a health check interval or timeout that cannot be read
HEALTH_CHECK_TYPES = frozenset({"http", "tcp", "grpc", "script"})
UPDATE_DEFAULTS: dict[str, Any] = {
    "min_healthy_time": "15s",
    "healthy_deadline": "40m",
    "progress_deadline": "1h",
    "health_check": "checks",
    "stagger": "20s",
}
# The port of a deployment without networks, by builder (what the builder's images listen on by default).
BUILDER_DEFAULT_PORTS = {"nixpacks": 3000, "railpack": 3000, "csdocker": 8000}
DEFAULT_WEB_PORT = 3000
# Builders whose image already starts the app (the start command is theirs, not the job's args).
START_COMMAND_BUILDERS = frozenset({"nixpacks", "railpack"})

_DIGITS = re.compile(r"[0-9]+")
_DURATION = re.compile(r"[0-9]+(?:ms|s|m|h)")
_DAYS = re.compile(r"([0-9]+)d")
_VOLUME_INDEX = re.compile(r"(vol_.+)\[[0-9]+\]")


def duration(value: str) -> str:
    """A health check interval or timeout as Nomad takes it: bare digits are seconds (``"15"`` →
    ``"15s"``), days become hours, anything else unusable is ``"30s"``."""
    value = value.strip()
    if _DIGITS.fullmatch(value):
        return f"{value}s"
    if _DURATION.fullmatch(value):
        return value
    days = _DAYS.fullmatch(value)
    if days:
        return f"{int(days.group(1)) * 24}h"
    return DEFAULT_CHECK_TIMING


def health_check_type(port: NetworkPort) -> str:
    """The check type: ``health_check.type``, else the port's type; http / tcp / grpc / script, else tcp."""
    wanted = (port.health_check.type.strip() or port.port_type.strip()).lower()
    return wanted if wanted in HEALTH_CHECK_TYPES else "tcp"


def has_health_check(port: NetworkPort) -> str:
    """``has_health_check`` as the backend and the pack carry it: a type string, the port's type when empty."""
    return port.has_health_check.strip() or port.port_type


def network_entry(port: NetworkPort) -> dict[str, Any]:
    """One ``network`` element: named after its port number (its Consul service is ``<service>-<port>``)."""
    check = port.health_check
    return {
        "name": str(port.port_number),
        "port": port.port_number,
        "type": port.port_type,
        "public": port.public,
        "domain": port.domain,
        "custom_domain": port.custom_domain,
        "has_health_check": has_health_check(port),
        "health_check": {
            "type": health_check_type(port),
            "path": check.path.strip() or "/",
            "interval": duration(check.interval),
            "timeout": duration(check.timeout),
            "port": check.port if check.port > 0 else port.port_number,
        },
    }


def default_network(builder: str) -> NetworkPort:
    """The port of a deployment that has none (the builder's framework default): private, tcp check."""
    port = BUILDER_DEFAULT_PORTS.get(builder, DEFAULT_WEB_PORT)
    check = HealthCheck(type="tcp", path="/", interval=DEFAULT_CHECK_TIMING, timeout=DEFAULT_CHECK_TIMING, port=port)
    return NetworkPort(port_number=port, port_type="http", has_health_check="tcp", health_check=check)


def pack_variables(params: DeployParamsBase, networks: Sequence[NetworkPort], *, builder: str = "") -> dict[str, Any]:
    """The pack variables for ``params``, with ``networks`` (domains already allocated) and ``builder``
    (the one that built the image; ``noop`` for an image deploy)."""
    variables: dict[str, Any] = {"job_name": params.job_id}
    if params.replica_count > 0:
        variables["count"] = params.replica_count
    if params.secrets_path:
        variables["secret_path"] = params.secrets_path
    variables.update(restart_variables(params.restart_mode, params.restart_attempts))
    if params.cpu > 0 or params.ram > 0 or params.gpu > 0:
        memory = params.ram if params.ram > 0 else DEFAULT_MEMORY
        variables["resources"] = {
            "cpu": params.cpu if params.cpu > 0 else DEFAULT_CPU,
            "memory": memory,
            "memory_max": max(memory * 2, MIN_MEMORY_MAX),
            "gpu": max(params.gpu, 0),
        }
    if params.gpu_model and params.gpu > 0:
        variables["gpu_type"] = params.gpu_model
    _set_if(variables, "node_pool", params.node_pool)
    _set_if(variables, "user_id", params.owner_id)
    _set_if(variables, "alloc_id", params.deployment_id)
    _set_if(variables, "project_id", params.project_id)
    _set_if(variables, "service_id", params.service_id)
    _set_if(variables, "shared_secret_path", params.shared_secret_path)
    if params.uses_kv_engine is not None:
        variables["uses_kv_engine"] = params.uses_kv_engine
    if params.owner_uses_kv_engine is not None:
        variables["owner_uses_kv_engine"] = params.owner_uses_kv_engine
    variables["regions"] = params.regions if params.regions and params.gpu <= 0 else ""
    _set_if(variables, "private_registry", params.private_registry)
    _set_if(variables, "private_registry_provider", params.private_registry_provider)
    variables["user"] = params.docker_user or "0"
    _set_if(variables, "command", params.command)
    variables.update(volume_variables(params))
    variables["config_files"] = [config_file_entry(f) for f in params.config_files]
    if params.consul.service_name:
        variables["consul_service_name"] = params.consul.service_name
        variables["consul_linked_services"] = [
            {"key": s.variable_name, "value": s.consul_service_name} for s in params.consul.linked_services
        ]
    if params.entrypoint:
        variables["entrypoint"] = list(params.entrypoint)
    variables["template"] = [
        {
            "name": t.name,
            "pattern": t.pattern,
            "service_name": t.service_name,
            "service_secret_path": t.service_secret_path,
            "linked_vars": list(t.linked_vars),
        }
        for t in params.template_string_variables
    ]
    _set_if(variables, "cluster_domain", params.cluster_domain)
    ports = [port for port in networks if port.port_number > 0] or [default_network(builder)]
    variables["network"] = [network_entry(port) for port in ports]
    tls = params.tls
    variables["use_tls"] = tls is not None and bool(tls.pka_path)
    if tls is not None and tls.pka_path:
        variables["tls"] = [
            {
                "cert_path": tls.cert_path,
                "key_path": tls.key_path,
                "common_name": tls.common_name,
                "pka_path": tls.pka_path,
                "ttl": tls.ttl,
            }
        ]
    variables["vault_linked_secrets"] = [
        {"prefix": p.prefix, "secret_path": p.secret_path} for p in params.vault_linked_secret_paths if p.secret_path
    ]
    if params.update is not None:
        variables["update"] = update_variable(params.update)
    if params.job_config is not None:
        variables["job_config"] = job_config_variable(params.job_config)
    args = start_args(params, builder)
    if args:
        variables["args"] = args
    return variables


def restart_variables(mode: str, attempts: int) -> dict[str, Any]:
    """``restart_attempts`` / ``restart_mode`` (``never`` is Nomad's ``fail``
    with 0 attempts; unknown → ``fail``; no attempts → 3), and the ``restart`` object the pack reads."""
    nomad_mode = mode if mode in ("fail", "delay") else "fail"
    count = 0 if mode == "never" else attempts if attempts > 0 else DEFAULT_RESTART_ATTEMPTS
    return {
        "restart_attempts": count,
        "restart_mode": nomad_mode,
        "restart": {"attempts": count, "interval": RESTART_INTERVAL, "delay": RESTART_DELAY, "mode": nomad_mode},
    }


def volume_variables(params: DeployParamsBase) -> dict[str, Any]:
    """``use_csi_volume`` (always), and the first CSI volume's ``volume_name`` (its ``[N]`` index
    suffix removed: the pack mounts one volume per allocation) and ``volume_mount_destination``."""
    if not params.csi_volume:
        return {"use_csi_volume": False}
    volume = params.csi_volume[0]
    match = _VOLUME_INDEX.fullmatch(volume.id)
    variables: dict[str, Any] = {"use_csi_volume": True, "volume_name": match.group(1) if match else volume.id}
    if volume.mount_paths:
        variables["volume_mount_destination"] = list(volume.mount_paths)
    return variables


def update_variable(update: UpdateParameters) -> dict[str, Any]:
    """The ``update`` object with every attribute (the pack's defaults for the strings not given)."""
    return {
        "min_healthy_time": update.min_healthy_time or UPDATE_DEFAULTS["min_healthy_time"],
        "healthy_deadline": update.healthy_deadline or UPDATE_DEFAULTS["healthy_deadline"],
        "progress_deadline": update.progress_deadline or UPDATE_DEFAULTS["progress_deadline"],
        "auto_revert": update.auto_revert,
        "auto_promote": update.auto_promote,
        "max_parallel": update.max_parallel if update.max_parallel > 0 else 1,
        "canary": max(update.canary, 0),
        "health_check": UPDATE_DEFAULTS["health_check"],
        "stagger": UPDATE_DEFAULTS["stagger"],
    }


def job_config_variable(job: JobConfig) -> dict[str, Any]:
    """The ``job_config`` object: type (``service`` when empty), cron, payload, dispatch metadata;
    ``prohibit_overlap`` is forced on for every type but service and system (a batch or periodic job
    must not run twice at once)."""
    job_type = job.type.strip().lower() or "service"
    return {
        "type": job_type,
        "cron": job.cron,
        "prohibit_overlap": job.prohibit_overlap if job_type in ("service", "system") else True,
        "payload": job.payload,
        "meta_required": list(job.meta_required),
        "meta_optional": [],
    }


def start_args(params: DeployParamsBase, builder: str) -> list[str]:
    """``args``: one shell line (the pack runs it with ``/bin/sh -c``) exporting each of
    ``vaultLinkedSecrets`` then running ``build.startCommand``, unless nixpacks / railpack built the
    image (their image runs the start command itself)."""
    line = "".join(f"export {s.secret}={s.template};" for s in params.vault_linked_secrets)
    start = params.build.start_command
    if start and builder not in START_COMMAND_BUILDERS:
        line += start
    return [line] if line else []


def config_file_entry(config: ConfigFile) -> dict[str, str]:
    """One ``config_files`` element: the path as given, the content base64-encoded.

    The pack base64-decodes ``content`` (the backend sends it encoded); content that is not valid base64
    is taken as the file's text and encoded here, so the job never fails to decode it.
    """
    return {"path": config.path, "content": _as_base64(config.content)}


def _as_base64(content: str) -> str:
    try:
        base64.b64decode(content.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return base64.b64encode(content.encode("utf-8")).decode("ascii")
    return content


def _set_if(variables: dict[str, Any], name: str, value: str) -> None:
    if value:
        variables[name] = value
