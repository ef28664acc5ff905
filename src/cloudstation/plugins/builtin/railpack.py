"""``railpack``: build an image from source with Railpack (no Dockerfile needed), via BuildKit.

Runs, in the build context directory ``<app path>/<context>``::

    railpack build --name IMAGE:TAG [--platform P] [--build-cmd CMD] [--start-cmd CMD]
                   [--env K=V ...] [--env NAME ...] .

with ``DOCKER_BUILDKIT=1`` in the child's environment (Railpack itself needs ``BUILDKIT_HOST``: it is
inherited from ``cs``'s environment or ``ctx.env``). Attributes: see :mod:`.sourceimage`.
"""

from __future__ import annotations

from typing import ClassVar

from cloudstation.plugins.builtin.sourceimage import SourceImageBuilder


class Railpack(SourceImageBuilder):
    """Builds an image from source with ``railpack build``."""

    name: ClassVar[str] = "railpack"
    description: ClassVar[str] = "Build an image from source with `railpack build` (BuildKit), no Dockerfile needed."
    extra_env: ClassVar[dict[str, str]] = {"DOCKER_BUILDKIT": "1"}
