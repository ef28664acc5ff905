"""``nixpacks``: build an image from source with Nixpacks (no Dockerfile needed).

Runs, in the build context directory ``<app path>/<context>``::

    nixpacks build . --name IMAGE:TAG [--platform P] [--build-cmd CMD] [--start-cmd CMD]
                   [--env K=V ...] [--env NAME ...]

Nixpacks names the image exactly ``--name`` (its ``--tag`` adds *other* image names), so the tag is
part of ``--name``. Attributes: see :mod:`.sourceimage`.
"""

from __future__ import annotations

from typing import ClassVar

from cloudstation.plugins.builtin.sourceimage import SourceImageBuilder


class Nixpacks(SourceImageBuilder):
    """Builds an image from source with ``nixpacks build``."""

    name: ClassVar[str] = "nixpacks"
    description: ClassVar[str] = "Build an image from source with `nixpacks build`, no Dockerfile needed."
    source_first: ClassVar[bool] = True
