"""Render the embedded cloudstation pack for real: the Go harness in ``render/main.go`` (built once per
session with Debian's golang-go and golang-github-masterminds-sprig-dev, no network) runs Go's
text/template with nomad-pack's delimiters, ``var`` lookups and the sprig functions; the job it prints is
parsed with python-hcl2 into plain Python values."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hcl2
import pytest

from cloudstation.config import hclwriter
from cloudstation.config.expressions import Evaluator
from cloudstation.plugins.builtin.packs import embedded_pack_dir
from cloudstation.plugins.builtin.packs.schema import load_variables, read_vars_file, vars_problems

HARNESS = Path(__file__).resolve().parent / "render" / "main.go"
GOPATH = "/usr/share/gocode"  # where Debian's golang-*-dev packages put their sources
APT = "apt-get install -y golang-go golang-github-masterminds-sprig-dev"
_OPTIONS = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, preserve_heredocs=False)
_RAW = _OPTIONS


def build_harness(out_dir: Path) -> Path:
    """The harness binary, built into ``out_dir``; fails (CI) or skips (locally) without Go or sprig."""
    go = shutil.which("go")
    sprig = Path(GOPATH, "src", "github.com", "Masterminds", "sprig")
    if go is None or not sprig.is_dir():
        message = f"the pack render tests need Go and sprig: {APT}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    binary = out_dir / "render"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": GOPATH,
        "GOCACHE": str(out_dir / "gocache"),
        "GOPROXY": "off",
        "GOFLAGS": "",
    }
    result = subprocess.run(
        [go, "build", "-o", str(binary), str(HARNESS)], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    return binary


def pack_defaults(pack_dir: Path) -> dict[str, Any]:
    """Every variable's default, as nomad-pack starts from them (decoded like a vars file)."""
    document: dict[str, Any] = hcl2.loads((pack_dir / "variables.hcl").read_text(), serialization_options=_RAW)
    evaluator = Evaluator({})
    return {
        name.strip('"'): evaluator.evaluate(body["default"])
        for block in document["variable"]
        for name, body in block.items()
    }


def job_value(value: Any) -> Any:
    """A python-hcl2 value of the rendered job as plain Python: strings unquoted and unescaped (``$${``
    and ``%%{`` read as HCL reads them), blocks as dicts, labelled blocks keyed by their label."""
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            return json.loads(value).replace("$${", "${").replace("%%{", "%{")
        return value
    if isinstance(value, list):
        return [job_value(item) for item in value]
    if isinstance(value, dict):
        return {job_value(key): job_value(item) for key, item in value.items() if key != "__is_block__"}
    return value


class PackRenderer:
    """Renders the embedded pack from a vars mapping (written and read back as nomad-pack would)."""

    def __init__(self, binary: Path, work: Path) -> None:
        self.binary = binary
        self.work = work
        self.pack_dir = embedded_pack_dir()
        self.defaults = pack_defaults(self.pack_dir)
        self.variables = load_variables(self.pack_dir)
        self.count = 0

    def text(self, variables: Mapping[str, Any]) -> str:
        """The rendered job text for ``variables`` (checked against the pack's schema first)."""
        assert vars_problems(variables, self.variables) == []
        self.count += 1
        vars_file = self.work / f"vars-{self.count}.hcl"
        vars_file.write_text(hclwriter.dumps(dict(variables)))
        values = read_vars_file(vars_file)
        document = {"vars": {**self.defaults, **values}, "meta": {"pack": {"name": "cloudstation"}}}
        input_file = self.work / f"input-{self.count}.json"
        input_file.write_text(json.dumps(document))
        result = subprocess.run(
            [str(self.binary), str(self.pack_dir), str(input_file)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def job(self, variables: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """The rendered job: its name and its body (python-hcl2, plain values)."""
        text = self.text(variables)
        assert "<no value>" not in text
        parsed = job_value(hcl2.loads(text, serialization_options=_OPTIONS))
        [jobs] = parsed["job"]
        [(name, body)] = jobs.items()
        return name, body
