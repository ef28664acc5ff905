"""The nomad-pack packs shipped inside cs, and the schema of their variables.

Each pack is a directory here (``cloudstation/``: ``metadata.hcl``, ``variables.hcl``,
``templates/*.nomad.tpl``), passed to ``nomad-pack run`` by path. They are package data: they must be
listed in ``[tool.setuptools.package-data]`` to ship in the wheel.
"""

from __future__ import annotations

from pathlib import Path

from cloudstation.plugins.base import PluginError

PACKS_DIR = Path(__file__).resolve().parent
DEFAULT_PACK = "cloudstation"


def embedded_packs() -> list[str]:
    """Names of the packs shipped inside cs."""
    return sorted(p.name for p in PACKS_DIR.iterdir() if (p / "metadata.hcl").is_file())


def embedded_pack_dir(name: str = DEFAULT_PACK) -> Path:
    """The directory of embedded pack ``name``; PluginError when cs ships no such pack."""
    if name not in embedded_packs():
        raise PluginError(f"no embedded pack {name!r} (available: {', '.join(embedded_packs())})")
    return PACKS_DIR / name
