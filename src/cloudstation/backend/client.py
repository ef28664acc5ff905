"""The CloudStation backend HTTP client: deployment step updates, domain allocation, service updates.

Every request carries the access token as the ``accessToken`` query parameter (the backend's contract); it
never appears in a log record or an error message. Connection errors and 5xx answers are retried
``retries`` times with exponential backoff. Step updates are best-effort (a failure is a logged warning
and ``False``); :meth:`BackendClient.ask_domain` and :meth:`BackendClient.update_service` raise
:class:`BackendError` and let the caller decide.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, NotRequired, Self, TypedDict, get_args
from urllib.parse import urlsplit

import httpx

from cloudstation.backend.redaction import install_log_redaction, redact_secret
from cloudstation.errors import ConfigError, CsError

log = logging.getLogger("cloudstation.backend")

Step = Literal["clone", "build", "registry", "deploy", "release"]
StepStatus = Literal["in_progress", "completed", "failed"]
STEPS: frozenset[str] = frozenset(get_args(Step))
STEP_STATUSES: frozenset[str] = frozenset(get_args(StepStatus))

STEP_UPDATE_PATH = "/api/local/deployment-step/update"
ASK_DOMAIN_PATH = "/api/local/ask-domain"
SERVICE_UPDATE_PATH = "/api/local/service-update/"

_MAX_ERROR_CHARS = 2000
_MAX_BODY_EXCERPT = 200


class BackendError(CsError):
    """A backend request failed (after retries); the message names the request, never the token."""


class HealthCheck(TypedDict, total=False):
    type: str  # "http" | "tcp"
    path: str
    interval: str  # e.g. "30s"
    timeout: str
    port: int


class NetworkEntry(TypedDict):
    """One port of a service, as ``/api/local/service-update/`` expects it (the original's shape)."""

    port: int
    type: str  # "http" | "tcp" | "none"
    public: bool
    domain: str
    has_health_check: str  # the check type: "http" | "tcp" | "grpc" | "script" (the original's)
    health_check: NotRequired[HealthCheck]


class BackendClient:
    """Async client of the backend's ``/api/local`` endpoints. Use as ``async with`` or call :meth:`aclose`."""

    def __init__(
        self,
        backend_url: str,
        access_token: str,
        *,
        cluster_domain: str = "",
        request_timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 5.0,
    ) -> None:
        parts = urlsplit(backend_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ConfigError(f"backendUrl must be an http(s) URL (got scheme {parts.scheme!r})")
        if not access_token:
            raise ConfigError("the backend access token (accessToken / ACCESS_TOKEN) is empty")
        install_log_redaction()
        self._token = access_token
        self._cluster_domain = cluster_domain.strip().strip(".")
        self._retries = max(0, retries)
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._http = httpx.AsyncClient(base_url=backend_url.rstrip("/"), timeout=httpx.Timeout(request_timeout))

    @classmethod
    def from_params(
        cls,
        backend_url: str | None,
        access_token: str | None,
        env: Mapping[str, str],
        *,
        cluster_domain: str = "",
    ) -> Self | None:
        """The client for the params' ``backendUrl``/``accessToken`` (falling back to ``BACKEND_URL`` /
        ``ACCESS_TOKEN`` in ``env``), or None when either is missing: the backend is then not told."""
        url = backend_url or env.get("BACKEND_URL", "")
        token = access_token or env.get("ACCESS_TOKEN", "")
        if not url or not token:
            return None
        return cls(url, token, cluster_domain=cluster_domain)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def update_step(
        self,
        deployment_id: str,
        deployment_type: str,
        step: Step,
        status: StepStatus,
        error: str | None = None,
    ) -> bool:
        """Best-effort ``PUT /api/local/deployment-step/update``: True when the backend accepted it.

        Never raises (but for cancellation): any failure is logged as a warning and returns False.
        """
        if step not in STEPS or status not in STEP_STATUSES:
            log.warning("backend step update skipped: invalid step %r or status %r", step, status)
            return False
        body: dict[str, Any] = {
            "deploymentId": deployment_id,
            "deployment_type": deployment_type,
            "step": step,
            "status": status,
        }
        if error:
            body["error"] = redact_secret(error, self._token)[:_MAX_ERROR_CHARS]
        try:
            await self._request("PUT", STEP_UPDATE_PATH, json=body)
        except Exception as exc:  # best-effort: never fail a deployment over a progress report
            reason = exc if isinstance(exc, BackendError) else self._redact(f"{type(exc).__name__}: {exc}")
            message = "backend step update %s/%s of deployment %s not recorded: %s"
            log.warning(message, step, status, deployment_id, reason)
            return False
        log.debug("backend step update %s/%s of deployment %s recorded", step, status, deployment_id)
        return True

    async def ask_domain(self, service_id: str) -> str:
        """``GET /api/local/ask-domain``: a domain for the service, ending in ``.<cluster_domain>``."""
        if not service_id:
            raise BackendError("cannot ask the backend for a domain: serviceId is empty")
        response = await self._request("GET", ASK_DOMAIN_PATH, params={"serviceId": service_id})
        try:
            domain = response.json().get("domain")
        except (ValueError, AttributeError):
            domain = None
        if not isinstance(domain, str) or not domain.strip().strip("."):
            raise BackendError(f"GET {ASK_DOMAIN_PATH} for service {service_id}: no domain in the answer")
        return self.qualify_domain(domain)

    def qualify_domain(self, domain: str) -> str:
        """``domain`` with ``.<cluster_domain>`` appended unless it already ends with it."""
        domain = domain.strip().strip(".")
        suffix = self._cluster_domain
        if not suffix or domain == suffix or domain.endswith(f".{suffix}"):
            return domain
        return f"{domain}.{suffix}"

    async def update_service(
        self,
        service_id: str,
        networks: Sequence[NetworkEntry],
        *,
        docker_user: str = "",
        cmd: str = "",
        entrypoint: str = "",
    ) -> None:
        """``PUT /api/local/service-update/`` with ``{serviceId, network: [...]}`` (plus the optional
        ``docker_user``, ``cmd``, ``entrypoint`` when non-empty)."""
        if not service_id:
            raise BackendError("cannot update the service on the backend: serviceId is empty")
        body: dict[str, Any] = {"serviceId": service_id, "network": [dict(entry) for entry in networks]}
        for key, value in (("docker_user", docker_user), ("cmd", cmd), ("entrypoint", entrypoint)):
            if value:
                body[key] = value
        await self._request("PUT", SERVICE_UPDATE_PATH, json=body)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """One request, retried on connection errors and 5xx; a 2xx response or :class:`BackendError`."""
        query = {**(params or {}), "accessToken": self._token}
        attempts = self._retries + 1
        reason = ""
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                await asyncio.sleep(min(self._max_backoff, self._backoff * 2 ** (attempt - 2)))
            try:
                response = await self._http.request(method, path, params=query, json=json)
            except httpx.TransportError as exc:
                reason = self._redact(f"{type(exc).__name__}: {exc}".rstrip(": "))
                log.debug("%s %s attempt %d/%d failed: %s", method, path, attempt, attempts, reason)
                continue
            except httpx.HTTPError as exc:  # not a connection problem: retrying would not help
                reason = self._redact(f"{type(exc).__name__}: {exc}".rstrip(": "))
                raise BackendError(f"{method} {path} failed: {reason}") from None
            if response.is_success:
                return response
            reason = f"HTTP {response.status_code}{self._excerpt(response)}"
            if response.status_code < 500:
                raise BackendError(f"{method} {path} failed: {reason}")
            log.debug("%s %s attempt %d/%d failed: %s", method, path, attempt, attempts, reason)
        raise BackendError(f"{method} {path} failed after {attempts} attempts: {reason}")

    def _excerpt(self, response: httpx.Response) -> str:
        text = " ".join(response.text.split())[:_MAX_BODY_EXCERPT]
        return f" ({self._redact(text)})" if text else ""

    def _redact(self, text: str) -> str:
        return redact_secret(text, self._token)
