"""A deployment's network list, its backend domains and the service update the backend expects.

Owns three things:

* the zero-config network list for detected ports (repository deploys: ``http``, public; image deploys:
  the port type inferred from the port number (:func:`infer_port_type`), with its health check shape);
* :func:`allocate_domains`: ``GET ask-domain`` for every port that needs a domain and has none. A backend
  that fails or is down is a **warning**: the port is deployed without a domain (a domain is a
  convenience, the deployment is what was asked). An empty answer means no domain for that port;
* the ``PUT service-update`` with the final list (best-effort too).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from cloudstation.backend.client import BackendError, NetworkEntry
from cloudstation.dispatch.context import TaskContext
from cloudstation.dispatch.packvars import has_health_check, network_entry
from cloudstation.dispatch.params_models import DeployParamsBase, HealthCheck, NetworkPort

# The type of a detected port: common web ports are http, 443/8443 https, anything else tcp.
_HTTP_PORTS = frozenset({80, 8080, 3000, 5000, 8000, 8888, 9000})
_HTTPS_PORTS = frozenset({443, 8443})


def infer_port_type(port: int) -> str:
    if port in _HTTP_PORTS:
        return "http"
    return "https" if port in _HTTPS_PORTS else "tcp"


def repository_networks(ports: Sequence[int]) -> list[NetworkPort]:
    """Networks for the detected ports of a zero-config repository deploy: public http."""
    return [NetworkPort(port_number=port, port_type="http", public=True) for port in ports]


def image_networks(ports: Sequence[int]) -> list[NetworkPort]:
    """Networks for the detected ports of an image deploy: inferred type, http or tcp health check."""
    out: list[NetworkPort] = []
    for port in ports:
        kind = infer_port_type(port)
        web = kind in ("http", "https")
        check = HealthCheck(type="http" if web else "tcp", path="/" if web else "", interval="30s", timeout="30s")
        out.append(NetworkPort(port_number=port, port_type=kind, public=True, health_check=check))
    return out


def network_entries(networks: Sequence[NetworkPort]) -> list[NetworkEntry]:
    """The network list ``/api/local/service-update/`` takes: the check the pack renders (packvars).

    ``has_health_check`` is a check type string, as the backend stores it (the port's type when the user
    gave none).
    """
    entries: list[NetworkEntry] = []
    for port in networks:
        entry: NetworkEntry = {
            "port": port.port_number,
            "type": port.port_type or "http",
            "public": port.public,
            "domain": port.domain,
            "has_health_check": has_health_check(port) or "http",
            "health_check": network_entry(port)["health_check"],
        }
        entries.append(entry)
    return entries


def _needs_domain(port: NetworkPort) -> bool:
    return port.public and not port.domain and (port.port_type or "http") in ("http", "https")


async def allocate_domains(
    ctx: TaskContext, params: DeployParamsBase, networks: Sequence[NetworkPort], *, detected: bool = False
) -> list[NetworkPort]:
    """Ask the backend for a domain for each port that needs one, then update the service.

    ``detected``: the networks are the zero-config ones made from detected ports, and every port without
    a domain gets one (tcp ports too). Otherwise only the public web ports of the user's networks do.
    Never raises for a backend problem: a failed ``ask-domain`` leaves that port without a domain and a
    failed ``service-update`` is a warning.
    """
    out = list(networks)
    if not out:
        return out
    if ctx.backend is None:
        ctx.warn("no backend configured (backendUrl/accessToken): domains not allocated, service not updated")
        return out
    for index, port in enumerate(out):
        if port.domain or not (detected or _needs_domain(port)):
            continue
        try:
            domain = await ctx.backend.ask_domain(params.service_id)
        except BackendError as exc:
            ctx.warn(f"no domain for port {port.port_number}: {exc} (deploying without one)")
            continue
        if not domain:
            ctx.warn(f"the backend gave no domain for port {port.port_number} (deploying without one)")
            continue
        out[index] = msgspec.structs.replace(port, domain=domain)
        ctx.say(f"port {port.port_number} gets domain {domain}")
    try:
        await ctx.backend.update_service(
            params.service_id,
            network_entries(out),
            docker_user=params.docker_user,
            cmd=params.command,
            entrypoint=" ".join(params.entrypoint),
        )
    except BackendError as exc:
        ctx.warn(f"service update not recorded by the backend: {exc}")
    return out
