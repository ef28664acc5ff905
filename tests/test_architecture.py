"""Imports flow one way: cli → dispatch → lifecycle → plugins; everything → events; events → nothing of ours.

Each room may import only the rooms listed for it (module-level and function-level imports alike).
A new room must be added here, which is the point: the map of the house stays true.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "cloudstation"

# room -> rooms it may import (besides itself). "errors" is the root every room may use.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "natsconn": {"errors"},
    "events": {"errors", "natsconn"},
    "config": {"errors"},
    "processes": {"errors"},
    "sources": {"errors", "processes"},
    "backend": {"errors"},
    "secrets": {"errors"},
    "plugins": {"errors", "config", "events", "processes"},
    "plugin": {"errors", "plugins"},  # the public face for third-party plugins
    "lifecycle": {"errors", "config", "events", "plugins", "processes"},
    "dispatch": {
        "errors",
        "config",
        "events",
        "plugins",
        "lifecycle",
        "sources",
        "secrets",
        "backend",
        "natsconn",
        "processes",
    },
    "cli": {
        "errors",
        "config",
        "events",
        "plugins",
        "lifecycle",
        "dispatch",
        "natsconn",
        "sources",
        "secrets",
        "backend",
        "processes",
    },
    "__init__": set(),
    "__main__": {"cli"},
    "vocabulary": set(),
    "redaction": set(),
}
# Base modules that import nothing of ours: like errors, every room may use them.
BASE = {"errors", "vocabulary", "redaction"}


def _room(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imported_rooms(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    rooms: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "cloudstation" and len(parts) > 1:
                rooms.add(parts[1])
            elif parts[0] == "cloudstation":
                rooms.add("__init__")
    return rooms


MODULES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_flow_one_way(path: Path) -> None:
    room = _room(path)
    assert room in ALLOWED, f"new room {room!r}: add it to ALLOWED with the rooms it may import"
    bad = _imported_rooms(path) - ALLOWED[room] - {room, "__init__"} - (BASE if ALLOWED[room] else set())
    assert not bad, f"{path.relative_to(SRC)} ({room}) imports {sorted(bad)}"


def test_every_module_says_what_it_owns() -> None:
    missing = [str(p.relative_to(SRC)) for p in MODULES if ast.get_docstring(ast.parse(p.read_text())) is None]
    assert missing == []


def test_the_map_catches_a_backward_import(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("from cloudstation.lifecycle.engine import Lifecycle\n")
    assert _imported_rooms(bad) == {"lifecycle"}
    assert "lifecycle" not in ALLOWED["events"]
