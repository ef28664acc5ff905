"""JetStream stream admin (``cs nats setup``, ``cs nats check``): create or update the stream that holds the
events, and check that it serves the contract. The commands connect with
:func:`cloudstation.events.connection.connect_plain`.

Defaults: name ``CLOUDSTATION`` (``<PREFIX>_cloudstation`` with a prefix), subjects ``<prefix>.>`` (the
contract's subjects without a prefix), file storage, limits retention, 7 days max age, and a 24 h
duplicate window so that retries after long outages are still de-duplicated, and ``allow_batched`` on
servers that have it (nats-server 2.14+), so that log lines can go out as fast-ingest batches.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from cloudstation.errors import ConfigError, DeliveryError
from cloudstation.events.contract import EventKind, sample_subjects, stream_subjects
from cloudstation.events.fastbatch import server_supports, server_version, which_path

DEFAULT_MAX_AGE = 7 * 24 * 3600.0
DEFAULT_DUPLICATE_WINDOW = 24 * 3600.0


def default_stream_name(prefix: str) -> str:
    if not prefix:
        return "CLOUDSTATION"
    return re.sub(r"[^A-Za-z0-9_-]", "_", prefix) + "_cloudstation"


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: list[str]
    replicas: int = 1
    max_age: float = DEFAULT_MAX_AGE
    duplicate_window: float = DEFAULT_DUPLICATE_WINDOW
    allow_batched: bool | None = None  # None: on where the server supports it

    def config(self, allow_batched: bool = False) -> Any:
        from nats.js.api import RetentionPolicy, StorageType, StreamConfig

        return StreamConfig(
            name=self.name,
            subjects=self.subjects,
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=self.replicas,
            max_age=self.max_age,
            duplicate_window=self.duplicate_window,
            allow_batched=True if allow_batched else None,  # never sent to servers that lack it
        )


@dataclass
class SetupResult:
    name: str
    created: bool
    changed: list[str]
    subjects: list[str]
    replicas: int
    max_age: float
    duplicate_window: float
    allow_batched: bool = False


async def setup_stream(js: Any, spec: StreamSpec) -> SetupResult:
    """Create the stream, or update it to ``spec``; idempotent."""
    import nats.js.errors

    batched = spec.allow_batched
    if batched is None:
        batched = server_supports(server_version(getattr(js, "_nc", None)))

    try:
        info = await js.stream_info(spec.name)
    except nats.js.errors.NotFoundError:
        info = None
    except nats.js.errors.ServiceUnavailableError:
        raise DeliveryError("JetStream is not enabled on this server (start it with -js)") from None
    if info is None:
        await js.add_stream(spec.config(batched))
        return SetupResult(
            spec.name, True, [], spec.subjects, spec.replicas, spec.max_age, spec.duplicate_window, batched
        )
    cur = info.config
    changed = []
    if sorted(cur.subjects or []) != sorted(spec.subjects):
        changed.append("subjects")
    if (cur.num_replicas or 1) != spec.replicas:
        changed.append("replicas")
    if abs((cur.max_age or 0) - spec.max_age) > 0.001:
        changed.append("max_age")
    if abs((cur.duplicate_window or 0) - spec.duplicate_window) > 0.001:
        changed.append("duplicate_window")
    if bool(cur.allow_batched) != batched:
        changed.append("allow_batched")
    if changed:
        try:
            await js.update_stream(spec.config(batched))
        except nats.js.errors.APIError as exc:
            raise ConfigError(f"cannot update stream {spec.name}: {exc.description}") from None
    return SetupResult(
        spec.name, False, changed, spec.subjects, spec.replicas, spec.max_age, spec.duplicate_window, batched
    )


@dataclass
class CheckResult:
    ok: bool
    rtt_ms: float = 0.0
    lines: list[tuple[bool, str]] = field(default_factory=list)

    def add(self, ok: bool, text: str) -> None:
        self.lines.append((ok, text))
        self.ok = self.ok and ok


async def check(nc: Any, prefix: str, *, fast_ingest: bool = True) -> CheckResult:
    """Diagnose JetStream and the stream coverage of every contract subject, and say which path log
    lines will take (fast-ingest batches or pipelined publishes) and why."""
    import nats.js.errors

    result = CheckResult(ok=True)
    start = time.perf_counter()
    await nc.flush(timeout=5)
    result.rtt_ms = (time.perf_counter() - start) * 1000
    result.add(
        True,
        f"connected to {nc.connected_url.hostname}:{nc.connected_url.port}, round trip {result.rtt_ms:.1f} ms",
    )
    js = nc.jetstream()
    try:
        await js.account_info()
    except Exception as exc:
        result.add(False, f"JetStream is not available for this account: {exc or type(exc).__name__}")
        return result
    result.add(True, "JetStream enabled")
    streams: dict[str, Any] = {}
    log_stream: str | None = None
    for kind, subject in zip(EventKind, sample_subjects(prefix), strict=True):
        try:
            name = await js.find_stream_name_by_subject(subject)
        except nats.js.errors.NotFoundError:
            shown = subject[: -len(".x")] + ".<deploymentId>" if kind.per_deployment_subject else subject
            result.add(False, f"no stream covers {shown}: run `cs nats setup`")
            continue
        streams.setdefault(name, None)
        if kind is EventKind.BUILD_LOG:
            log_stream = name
    batched: bool | None = None
    for name in streams:
        info = await js.stream_info(name)
        if name == log_stream:
            batched = bool(info.config.allow_batched)
        window = info.config.duplicate_window or 0
        ok = window >= 3600
        note = "" if ok else " (too short: retries after a long outage could duplicate; `cs nats setup` sets 24h)"
        result.add(ok, f"stream {name}: {info.state.messages} messages, duplicate window {window:g}s{note}")
    if streams and result.ok:
        result.add(True, f"every contract subject is stored ({', '.join(stream_subjects(prefix))})")
    _, path = which_path(
        enabled=fast_ingest, server_version=server_version(nc), stream=log_stream, allow_batched=batched
    )
    result.add(True, f"log lines: {path}")
    return result
