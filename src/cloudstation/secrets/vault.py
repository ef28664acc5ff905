"""Vault secrets for a build: AppRole login, KV v1/v2 reads, and the no-overwrite merge into a build env.

Owns the whole Vault conversation, through ``hvac`` (synchronous: the caller runs ``fetch_secrets`` in a
thread). With ``vaultAddress``, ``roleId``, ``secretId`` and ``secretsPath`` set, it logs in with
``POST /v1/auth/approle/login``, then reads ``GET /v1/<path>`` for the service path, each linked path and
the shared path: a KV v2 answer carries the secret in ``data.data``, a KV v1 answer in ``data``.

Errors are one-line ``VaultError`` messages naming the step, the path and the HTTP status; they never hold
a secret value, the client token, the role id or the secret id (Vault's own error text is not echoed).
Redirects are not followed, so the token is never sent to another host.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlsplit

import hvac
import hvac.adapters
import msgspec

from cloudstation.errors import CsError, UsageError

__all__ = [
    "LinkedSecretPath",
    "VaultConfigError",
    "VaultError",
    "VaultLoginError",
    "VaultReadError",
    "VaultSettings",
    "VaultUnreachableError",
    "fetch_secrets",
    "merge_into_env",
    "secret_to_str",
]

_LOGIN_PATH = "auth/{mount}/login"
_BAD_PATH_CHARS = re.compile(r"[\s?#%\\\x00-\x1f\x7f]")
_MOUNT = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


class VaultError(CsError):
    """Vault secrets could not be fetched (the task fails, exit 1). The message is secret-free."""


class VaultConfigError(VaultError, UsageError):
    """The Vault settings are unusable (bad address or path). Exit 2."""


class VaultUnreachableError(VaultError):
    """No HTTP answer from Vault (refused, DNS, TLS, timeout)."""


class VaultLoginError(VaultError):
    """The AppRole login was refused or its answer carried no token."""


class VaultReadError(VaultError):
    """A secrets path could not be read (HTTP error or an answer without data)."""


@dataclass(frozen=True, slots=True)
class LinkedSecretPath:
    """Another secrets path; its keys enter the env as ``prefix + key``."""

    prefix: str
    path: str


@dataclass(frozen=True, slots=True)
class VaultSettings:
    """Where and how to read a service's secrets. ``role_id`` / ``secret_id`` never appear in ``repr``."""

    address: str
    role_id: str = field(repr=False)
    secret_id: str = field(repr=False)
    secrets_path: str
    shared_secret_path: str = ""
    linked_paths: tuple[LinkedSecretPath, ...] = ()
    timeout: float = 30.0
    approle_mount: str = "approle"

    @property
    def enabled(self) -> bool:
        """True when the four settings Vault needs are all set; otherwise the deployment runs without Vault."""
        return all(v.strip() for v in (self.address, self.role_id, self.secret_id, self.secrets_path))

    def credentials(self) -> frozenset[str]:
        """The credential values held here (role id, secret id), for the redaction set."""
        return frozenset(v for v in (self.role_id, self.secret_id) if v)


def fetch_secrets(settings: VaultSettings) -> dict[str, str]:
    """Log in and read every configured path; the merged secrets, earlier paths winning.

    Order (first wins on a key clash): the service path (``secretsPath``), the linked paths in order
    (keys prefixed), the shared path (``sharedSecretPath``). Blocking: run it in a thread.
    Raises ``VaultConfigError``, ``VaultUnreachableError``, ``VaultLoginError`` or ``VaultReadError``.
    """
    if not settings.enabled:
        raise VaultConfigError("vault: address, role id, secret id and secrets path are all required")
    base_url = _check_address(settings.address)
    mount = settings.approle_mount
    if not _MOUNT.fullmatch(mount) or any(s in (".", "..") for s in mount.split("/")):
        raise VaultConfigError("vault: invalid AppRole mount path")
    reads: list[tuple[str, str, str]] = [("", _check_path(settings.secrets_path, "secretsPath"), "")]
    for index, linked in enumerate(settings.linked_paths):
        where = f"vaultLinkedSecretPaths[{index}]"
        reads.append((linked.prefix, _check_path(linked.path, where), where))
    if settings.shared_secret_path.strip():
        reads.append(("", _check_path(settings.shared_secret_path, "sharedSecretPath"), ""))

    client = hvac.Client(
        url=base_url,
        token="",  # never pick up VAULT_TOKEN / ~/.vault-token: the login provides the token
        timeout=settings.timeout,
        allow_redirects=False,
        adapter=hvac.adapters.RawAdapter,
    )
    try:
        client.token = _login(client, settings)
        found: dict[str, str] = {}
        for prefix, path, _ in reads:
            for key, value in _read(client, path, settings.timeout).items():
                found.setdefault(prefix + key, value)
        return found
    finally:
        client.adapter.close()


def merge_into_env(env: Mapping[str, str], secrets: Mapping[str, str]) -> dict[str, str]:
    """A new env: ``env`` plus every secret whose key ``env`` does not already hold (never overwritten)."""
    merged = dict(env)
    for key, value in secrets.items():
        merged.setdefault(key, value)
    return merged


def secret_to_str(value: object) -> str:
    """A secret value as env text: strings as-is, ``true``/``false``, numbers, JSON for lists and maps."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return msgspec.json.encode(value).decode()


# ------------------------------------------------------------------------------------------ internals


def _check_address(address: str) -> str:
    parts = urlsplit(address.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise VaultConfigError("vault: invalid address (expected http(s)://host[:port])")
    if parts.query or parts.fragment or parts.path.strip("/"):
        raise VaultConfigError("vault: invalid address (expected http(s)://host[:port])")
    return f"{parts.scheme}://{parts.netloc}"


def _check_path(path: str, where: str) -> str:
    """``path`` without surrounding slashes, or ``VaultConfigError`` naming the field (not the value)."""
    clean = path.strip().strip("/")
    segments = clean.split("/")
    if not clean or _BAD_PATH_CHARS.search(clean) or any(s in ("", ".", "..") for s in segments):
        raise VaultConfigError(f"vault: invalid secrets path in {where}")
    return clean


def _describe(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _unreachable(step: str, exc: OSError, timeout: float) -> VaultUnreachableError:
    if "timeout" in type(exc).__name__.lower():
        return VaultUnreachableError(f"vault: {step}: no answer within {timeout:g}s")
    return VaultUnreachableError(f"vault: {step}: cannot reach the server ({type(exc).__name__})")


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        decoded = msgspec.json.decode(content)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    return decoded if isinstance(decoded, dict) else None


def _login(client: Any, settings: VaultSettings) -> str:
    path = _LOGIN_PATH.format(mount=settings.approle_mount)
    step = f"login ({path})"
    try:
        response = client.adapter.request(
            "POST",
            f"/v1/{path}",
            json={"role_id": settings.role_id, "secret_id": settings.secret_id},
            raise_exception=False,
        )
    except OSError as exc:
        raise _unreachable(step, exc, settings.timeout) from None
    status: int = response.status_code
    if status != HTTPStatus.OK:
        raise VaultLoginError(f"vault: {step}: {_describe(status)}")
    body = _json_object(response.content)
    auth = body.get("auth") if body else None
    token = auth.get("client_token") if isinstance(auth, dict) else None
    if not isinstance(token, str) or not token:
        raise VaultLoginError(f"vault: {step}: the answer has no auth.client_token")
    return token


def _read(client: Any, path: str, timeout: float) -> dict[str, str]:
    step = f'read "{path}"'
    try:
        response = client.adapter.request("GET", "/v1/" + quote(path, safe="/-_.~@+=:,!*'()$&;"), raise_exception=False)
    except OSError as exc:
        raise _unreachable(step, exc, timeout) from None
    status: int = response.status_code
    if status != HTTPStatus.OK:
        raise VaultReadError(f"vault: {step}: {_describe(status)}")
    body = _json_object(response.content)
    data = body.get("data") if body else None
    if not isinstance(data, dict):
        raise VaultReadError(f"vault: {step}: the answer has no data object")
    return {str(key): secret_to_str(value) for key, value in _secret_of(data).items()}


def _secret_of(data: dict[str, Any]) -> dict[str, Any]:
    """The key/values of a read's ``data``: KV v2 nests them in ``data.data`` beside ``data.metadata``."""
    if _is_kv2(data.keys(), data.get("data"), data.get("metadata")):
        inner = data.get("data")
        return inner if isinstance(inner, dict) else {}
    return data


def _is_kv2(keys: Iterable[str], inner: object, metadata: object) -> bool:
    key_set = set(keys)
    if "metadata" in key_set and isinstance(metadata, dict | type(None)):
        return key_set <= {"data", "metadata"} and isinstance(inner, dict | type(None))
    # Without metadata (e.g. a policy hiding it), a lone nested "data" object is still KV v2's shape.
    return key_set == {"data"} and isinstance(inner, dict)
