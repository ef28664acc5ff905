"""What the shell-out builtins share: a tool's environment, argv flags, image references, captured output.

Used by ``docker``/``csdocker``, ``railpack``/``nixpacks`` (:mod:`.sourceimage`) and ``nomad-pack``.
Nothing here runs a process itself but through :meth:`PluginContext.run` (the deployment's log).

- :func:`tool_env`: the environment a tool runs with (cs's own, the app's ``env`` over it, the plugin's
  extra variables over both; cs's private variables are removed by ``ctx.run``);
- :func:`option`, :func:`pair_flags` (``K=V`` visible in argv) and :func:`name_flags` (``NAME`` only: the
  tool reads a possibly secret value from its environment);
- :func:`image_ref` / :func:`split_ref`: ``repository:tag``, checked so that nothing reads as an option;
- :func:`build_context`, :func:`run_capturing`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from cloudstation.plugins.base import PluginContext, PluginError

DEFAULT_TAG = "latest"

REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED_ENV = frozenset({"PATH", "HOME", "USER", "SHELL", "TMPDIR", "PWD", "LANG"})
_RESERVED_ENV_PREFIXES = (
    "DOCKER_", "BUILDKIT_", "NOMAD_", "LD_", "LC_", "XDG_", "GIT_", "SSL_CERT_", "CONTAINER", "REGISTRY_AUTH",
)  # fmt: skip


def tool_env(ctx: PluginContext, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A tool's environment: this process's, then ``ctx.env`` over it, then ``extra`` over both."""
    return {**os.environ, **ctx.env, **(extra or {})}


def build_context(ctx: PluginContext, context: str) -> Path:
    """``<app path>/<context>``, which must be a directory (checked before anything runs)."""
    path = ctx.app_path / context
    if not path.is_dir():
        raise PluginError(f"build context {context!r} is not a directory under the app path")
    return path


def image_ref(repository: str, tag: str) -> str:
    """``repository:tag``, both checked (a leading ``-`` would read as an option)."""
    tag = tag or DEFAULT_TAG
    if not REF.fullmatch(repository):
        raise PluginError(f"invalid image name {repository!r}")
    if not _TAG.fullmatch(tag):
        raise PluginError(f"invalid image tag {tag!r}")
    return f"{repository}:{tag}"


def split_ref(ref: str) -> tuple[str, str, str]:
    """``(repository, ":", tag)``; ``tag`` is ``""`` when the ref has none (a port is not a tag)."""
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "", ""
    return repo, sep, tag


def option(flag: str, value: str) -> list[str]:
    """``[flag, value]`` when ``value`` is set, else nothing."""
    return [flag, value] if value else []


def pair_flags(flag: str, values: Mapping[str, str]) -> list[str]:
    """``flag K=V`` for each item (the values are visible in argv: never use it for secrets)."""
    out: list[str] = []
    for key, value in values.items():
        if not key or "=" in key:
            raise PluginError(f"invalid {flag} name {key!r}")
        out += [flag, f"{key}={value}"]
    return out


def name_flags(flag: str, values: Mapping[str, str], *, tool: str) -> list[str]:
    """``flag NAME`` for each item: the tool reads the value from its environment (see :func:`tool_env`)."""
    out: list[str] = []
    for key in values:
        if not _ENV_NAME.fullmatch(key):
            raise PluginError(f"invalid build env name {key!r} (letters, digits and _ only)")
        if key in _RESERVED_ENV or key.startswith(_RESERVED_ENV_PREFIXES):
            raise PluginError(f"build env name {key!r} would change the {tool} client's own environment")
        out += [flag, key]
    return out


async def run_capturing(
    ctx: PluginContext,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    stdin: bytes | None = None,
) -> tuple[int, list[str]]:
    """:meth:`PluginContext.run`, also returning the (redacted) lines the command printed."""
    lines: list[str] = []
    rc = await ctx.run(argv, env=env, cwd=cwd, stdin=stdin, capture=lines)
    return rc, lines
