"""The CloudStation backend HTTP client: deployment step updates, domain allocation, service updates.

Every request carries the access token as the ``accessToken`` query parameter (the backend's contract); it
never appears in a log record or an error message. Retries follow go-retryablehttp's default policy: a
request gets 30 s, connection errors, 429 and 5xx answers (but 501) are retried 3 times with a backoff from
1 s doubling up to 5 s (a ``Retry-After`` of a 429/503 is honoured, within the same cap). The accepted
answers are the ones the backend gives on success: 200 for ``ask-domain``, 200 or 201 for the two updates.
``CS_BACKEND_RETRY_WAIT_MIN`` / ``CS_BACKEND_RETRY_WAIT_MAX`` / ``CS_BACKEND_TIMEOUT`` (seconds) change the
waits, for tests.

Step updates are best-effort (a failure is a logged warning and ``False``); :meth:`BackendClient.ask_domain`
and :meth:`BackendClient.update_service` raise :class:`BackendError` and let the caller decide. An
``ask-domain`` answer without a domain is ``""``, not an error: that port is deployed without a domain.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, NotRequired, Self, TypedDict, get_args
from urllib.parse import urlsplit

import httpx

from cloudstation.errors import ConfigError, CsError
from cloudstation.redaction import Redactor, install_log_redaction, redact_query_token
from cloudstation.vocabulary import Step

log = logging.getLogger("cloudstation.backend")

StepStatus = Literal["in_progress", "completed", "failed"]
STEPS: frozenset[str] = frozenset(Step)
STEP_STATUSES: frozenset[str] = frozenset(get_args(StepStatus))

STEP_UPDATE_PATH = "/api/local/deployment-step/update"
ASK_DOMAIN_PATH = "/api/local/ask-domain"
SERVICE_UPDATE_PATH = "/api/local/service-update/"

_MAX_ERROR_CHARS = 2000
_MAX_BODY_EXCERPT = 200

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
DEFAULT_RETRY_WAIT_MIN = 1.0
DEFAULT_RETRY_WAIT_MAX = 5.0
TIMING_VARIABLES = ("CS_BACKEND_RETRY_WAIT_MIN", "CS_BACKEND_RETRY_WAIT_MAX", "CS_BACKEND_TIMEOUT")
_OK = frozenset({200})
_OK_OR_CREATED = frozenset({200, 201})


class BackendError(CsError):
    """A backend request failed (after retries); the message names the request, never the token."""


class HealthCheck(TypedDict, total=False):
    type: str  # "http" | "tcp"
    path: str
    interval: str  # e.g. "30s"
    timeout: str
    port: int


class NetworkEntry(TypedDict):
    """One port of a service, as ``/api/local/service-update/`` expects it."""

    port: int
    type: str  # "http" | "tcp" | "none"
    public: bool
    domain: str
    has_health_check: str  # despite the name, the check type: "http" | "tcp" | "grpc" | "script"
    health_check: NotRequired[HealthCheck]


class BackendClient:
    """Async client of the backend's ``/api/local`` endpoints. Use as ``async with`` or call :meth:`aclose`."""

    def __init__(
        self,
        backend_url: str,
        access_token: str,
        *,
        cluster_domain: str = "",
        request_timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_RETRY_WAIT_MIN,
        max_backoff: float = DEFAULT_RETRY_WAIT_MAX,
    ) -> None:
        parts = urlsplit(backend_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ConfigError(f"backendUrl must be an http(s) URL (got scheme {parts.scheme!r})")
        if not access_token:
            raise ConfigError("the backend access token (accessToken / ACCESS_TOKEN) is empty")
        install_log_redaction()
        self._token = access_token
        self._redactor = Redactor([access_token], min_length=1)
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
        wait_min, wait_max, timeout = (
            _seconds(env, name, default)
            for name, default in zip(
                TIMING_VARIABLES, (DEFAULT_RETRY_WAIT_MIN, DEFAULT_RETRY_WAIT_MAX, DEFAULT_TIMEOUT), strict=True
            )
        )
        return cls(
            url,
            token,
            cluster_domain=cluster_domain,
            request_timeout=timeout,
            backoff=wait_min,
            max_backoff=max(wait_min, wait_max),
        )

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
            body["error"] = self._redact(error)[:_MAX_ERROR_CHARS]
        try:
            await self._request("PUT", STEP_UPDATE_PATH, json=body, accepted=_OK_OR_CREATED)
        except Exception as exc:  # best-effort: never fail a deployment over a progress report
            reason = exc if isinstance(exc, BackendError) else self._redact(f"{type(exc).__name__}: {exc}")
            message = "backend step update %s/%s of deployment %s not recorded: %s"
            log.warning(message, step, status, deployment_id, reason)
            return False
        log.debug("backend step update %s/%s of deployment %s recorded", step, status, deployment_id)
        return True

    async def ask_domain(self, service_id: str) -> str:
        """``GET /api/local/ask-domain``: a domain for the service, ending in ``.<cluster_domain>``.

        A JSON object without a ``domain`` (or with ``""``) gives ``""``: the backend has none to give,
        and the caller deploys the port without a domain. An answer that is not such an object is a
        :class:`BackendError`.
        """
        if not service_id:
            raise BackendError("cannot ask the backend for a domain: serviceId is empty")
        response = await self._request("GET", ASK_DOMAIN_PATH, params={"serviceId": service_id}, accepted=_OK)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        domain = answer.get("domain", "") if isinstance(answer, dict) else None
        if domain is None:
            domain = ""
        if not isinstance(domain, str) or not isinstance(answer, dict):
            raise BackendError(f"GET {ASK_DOMAIN_PATH} for service {service_id}: the answer is not a domain object")
        return self.qualify_domain(domain)

    def qualify_domain(self, domain: str) -> str:
        """``domain`` with ``.<cluster_domain>`` appended unless it already ends with it (``""`` stays ``""``)."""
        domain = domain.strip().strip(".")
        suffix = self._cluster_domain
        if not domain or not suffix or domain == suffix or domain.endswith(f".{suffix}"):
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
        await self._request("PUT", SERVICE_UPDATE_PATH, json=body, accepted=_OK_OR_CREATED)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        accepted: frozenset[int],
        params: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """One request under the retry policy; a response whose status is in ``accepted``, or :class:`BackendError`."""
        query = {**(params or {}), "accessToken": self._token}
        attempts = self._retries + 1
        reason = ""
        wait = 0.0
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                await asyncio.sleep(wait)
            wait = min(self._max_backoff, self._backoff * 2 ** (attempt - 1))
            try:
                response = await self._http.request(method, path, params=query, json=json)
            except httpx.TransportError as exc:
                reason = self._redact(f"{type(exc).__name__}: {exc}".rstrip(": "))
                log.debug("%s %s attempt %d/%d failed: %s", method, path, attempt, attempts, reason)
                continue
            except httpx.HTTPError as exc:  # not a connection problem: retrying would not help
                reason = self._redact(f"{type(exc).__name__}: {exc}".rstrip(": "))
                raise BackendError(f"{method} {path} failed: {reason}") from None
            status = response.status_code
            if status in accepted:
                return response
            reason = f"HTTP {status}{self._excerpt(response)}"
            if not _retryable(status):
                raise BackendError(f"{method} {path} failed: {reason}")
            wait = min(self._max_backoff, _retry_after(response) or wait)
            log.debug("%s %s attempt %d/%d failed: %s", method, path, attempt, attempts, reason)
        raise BackendError(f"{method} {path} failed after {attempts} attempts: {reason}")

    def _excerpt(self, response: httpx.Response) -> str:
        text = " ".join(response.text.split())[:_MAX_BODY_EXCERPT]
        return f" ({self._redact(text)})" if text else ""

    def _redact(self, text: str) -> str:
        """``text`` without the access token, whole or as an ``accessToken=`` query value."""
        return redact_query_token(self._redactor.redact(text))


def _retryable(status: int) -> bool:
    """429 and 5xx but 501 (go-retryablehttp's default policy)."""
    return status == 429 or (status >= 500 and status != 501)


def _retry_after(response: httpx.Response) -> float:
    """A 429/503's ``Retry-After`` in seconds (0 when absent or not a number of seconds)."""
    if response.status_code not in (429, 503):
        return 0.0
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else 0.0


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:
        raise ConfigError(f"{name} must be a number of seconds between 0 and 3600 (got {raw[:20]!r})")
    return value
