"""``http-check``: a ReleaseManager that releases once the deployment answers HTTP as expected.

Owns the release gate: polling an http(s) URL (the block's ``url``, else the deployment's) until it
answers with an expected status (any 2xx unless ``expect_status`` lists codes), within ``timeout``.
"""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar
from urllib.parse import urlsplit

import httpx
import msgspec

from cloudstation.plugins.base import Deployment, Plugin, PluginConfig, PluginContext, PluginError
from cloudstation.redaction import display_url

_REQUEST_TIMEOUT = 5.0
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


class HttpCheckConfig(PluginConfig, frozen=True):
    """``release { use = "http-check" ... }``."""

    url: str = ""
    path: str = "/"
    timeout: float = 30.0
    interval: float = 0.5
    expect_status: list[int] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.interval <= 0:
            raise ValueError("timeout and interval must be > 0")
        if any(not 100 <= code <= 599 for code in self.expect_status):
            raise ValueError("expect_status codes must be between 100 and 599")


class HttpCheck(Plugin):
    """Waits until the deployment answers HTTP (2xx, or the listed codes)."""

    name: ClassVar[str] = "http-check"
    Config: ClassVar[type[PluginConfig]] = HttpCheckConfig
    description: ClassVar[str] = "Releases once the deployment's URL answers HTTP 2xx (or the expected codes)."

    config: HttpCheckConfig

    async def release(self, ctx: PluginContext, deployment: Deployment) -> None:
        cfg = self.config
        url = target_url(cfg.url or deployment.url, cfg.path)
        shown = display_url(url)
        expected = "/".join(str(c) for c in cfg.expect_status) if cfg.expect_status else "2xx"
        ctx.say(f"http-check: waiting for {shown} to answer {expected} (up to {cfg.timeout:g}s)")
        # A redirect is followed unless a 3xx is what the user expects to see.
        follow = not any(300 <= code < 400 for code in cfg.expect_status)
        started = time.monotonic()
        deadline = started + cfg.timeout
        last = "no answer"
        # Proxies from the environment apply, except to this machine (a local deployment is never behind one).
        local = urlsplit(url).hostname in _LOOPBACK
        async with httpx.AsyncClient(follow_redirects=follow, trust_env=not local) as client:
            while True:
                remaining = deadline - time.monotonic()
                try:
                    response = await client.get(url, timeout=max(0.1, min(_REQUEST_TIMEOUT, remaining)))
                except httpx.TimeoutException:
                    last = "timed out"
                except httpx.HTTPError as exc:
                    last = _describe(exc)
                else:
                    if _accepted(response.status_code, cfg.expect_status):
                        took = time.monotonic() - started
                        ctx.say(f"http-check: {shown} answered HTTP {response.status_code} after {took:.1f}s")
                        return
                    last = f"HTTP {response.status_code}"
                if time.monotonic() + cfg.interval > deadline:
                    break
                await asyncio.sleep(cfg.interval)
        raise PluginError(
            f"release check failed: {shown} did not answer {expected} within {cfg.timeout:g}s (last: {last})"
        )


def target_url(base: str, path: str) -> str:
    """The URL to poll: ``base`` with ``path`` appended (``path = "/"`` keeps ``base`` as written)."""
    if not base:
        raise PluginError("http-check needs a url: set url, or deploy with a platform that reports one")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PluginError(f"http-check only checks http(s) URLs (got {display_url(base)!r})")
    if path in ("", "/"):
        return base if parts.path else base + "/"
    return base.rstrip("/") + "/" + path.lstrip("/")


def _accepted(status: int, expect: list[int]) -> bool:
    return status in expect if expect else 200 <= status < 300


def _describe(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError) and ("refused" in text.lower() or "all connection attempts" in text.lower()):
        return "connection refused"
    return f"{type(exc).__name__}: {text.splitlines()[0]}"
