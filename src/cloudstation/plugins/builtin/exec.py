"""``exec``: a Builder that runs the user's build command through the shell, in the app directory.

Owns: running ``build_cmd`` (``/bin/sh -c``) with the app's env and the block's ``env`` merged over the
process environment, and turning its ``output`` directory (or the app directory) into a ``directory``
artifact. Env values are passed literally: cs expands nothing; ``$`` in ``build_cmd`` is the shell's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import msgspec

from cloudstation.plugins.base import Artifact, Plugin, PluginConfig, PluginContext, PluginError

SHELL = "/bin/sh"


class ExecConfig(PluginConfig, frozen=True):
    """``build { use = "exec" ... }``."""

    build_cmd: str
    env: dict[str, str] = msgspec.field(default_factory=dict)
    output: str = ""

    def __post_init__(self) -> None:
        if not self.build_cmd.strip():
            raise ValueError("build_cmd must not be empty")


class Exec(Plugin):
    """Runs a shell build command in the app directory; the artifact is a directory."""

    name: ClassVar[str] = "exec"
    Config: ClassVar[type[PluginConfig]] = ExecConfig
    description: ClassVar[str] = "Builds by running a shell command in the app directory (artifact: a directory)."

    config: ExecConfig

    async def build(self, ctx: PluginContext) -> Artifact:
        cfg = self.config
        if not ctx.app_path.is_dir():
            raise PluginError(f"app directory {ctx.app_path} does not exist")
        env = {**os.environ, **ctx.env, **cfg.env}
        ctx.say(f"exec: running build command in {ctx.app_path}")
        await ctx.check([SHELL, "-c", cfg.build_cmd], what="build command", env=env, cwd=ctx.app_path)
        out = output_path(ctx.app_path, cfg.output)
        if not out.exists():
            raise PluginError(f"build output {cfg.output!r} does not exist after the build (expected {out})")
        if not out.is_dir():
            raise PluginError(f"build output {cfg.output!r} is not a directory ({out})")
        ctx.say(f"exec: build finished; artifact {out}")
        return Artifact(kind="directory", ref=str(out))


def output_path(app_path: Path, output: str) -> Path:
    """``output`` resolved against the app directory (the app directory itself when empty)."""
    return (app_path / output).resolve() if output else app_path.resolve()
