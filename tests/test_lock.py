"""The committed lock is the only source of what gets installed, and CI notices when it is stale.

``.ci/lock-check`` runs first in ``.ci/run``. These tests run it on a copy of the project's own
``pyproject.toml`` and ``uv.lock`` (with the pinned uv that ``make test`` bootstrapped into ``.tools/``):
unchanged it passes silently; with a dependency edited and no ``make lock`` it fails with one line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
UV = ROOT / ".tools" / "bin" / "uv"


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    if not UV.exists():
        pytest.fail(f"{UV} is missing: run the suite through `make test`, which bootstraps it")
    copy = tmp_path / "project"
    (copy / ".ci").mkdir(parents=True)
    for name in ("pyproject.toml", "uv.lock", "Makefile", "README.md"):
        shutil.copy2(ROOT / name, copy / name)
    for name in ("lock-check", "uv-requirements.txt"):
        shutil.copy2(ROOT / ".ci" / name, copy / ".ci" / name)
    (copy / ".tools").symlink_to(ROOT / ".tools")
    # make must see the bootstrapped uv as up to date, as it is in the real tree.
    os.utime(copy / ".ci" / "uv-requirements.txt", (0, 0))
    return copy


def lock_check(project: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
    env["PYTHON"] = sys.executable
    return subprocess.run(
        ["bash", str(project / ".ci" / "lock-check")], capture_output=True, text=True, env=env, timeout=120
    )


def test_the_committed_lock_matches_pyproject(project_copy: Path) -> None:
    result = lock_check(project_copy)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_a_dependency_changed_without_a_new_lock_fails_in_one_line(project_copy: Path) -> None:
    pyproject = project_copy / "pyproject.toml"
    text = pyproject.read_text()
    assert '"click>=8.1,<9"' in text
    pyproject.write_text(text.replace('"click>=8.1,<9"', '"click>=8.1,<8.9"'))
    result = lock_check(project_copy)
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["uv.lock does not match pyproject.toml: run 'make lock' and commit uv.lock"]


def test_every_runtime_dependency_has_an_upper_bound() -> None:
    """People who install without the lock get ranges we can stand behind (0.x: below the next minor)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"]) + list(project["optional-dependencies"]["server"])
    for requirement in requirements:
        assert "<" in requirement, f"{requirement}: no upper bound"
        lower = requirement.split(">=")[1].split(",")[0]
        upper = requirement.split("<")[1]
        if lower.startswith("0."):
            assert upper.count(".") == 1 and upper.startswith("0."), f"{requirement}: 0.x needs '<0.N' bound"
