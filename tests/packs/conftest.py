"""Fixtures of the pack render tests: the Go harness, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.packs.packrender import PackRenderer, build_harness


@pytest.fixture(scope="session")
def render_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_harness(tmp_path_factory.mktemp("pack-render"))


@pytest.fixture
def pack(render_binary: Path, tmp_path: Path) -> PackRenderer:
    return PackRenderer(render_binary, tmp_path)
