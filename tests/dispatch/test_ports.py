"""Port detection (cloudstation.dispatch.ports): the inspect JSON contract, the order of the sources, and a
real child process standing in for docker (a recording fake on PATH)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloudstation.dispatch.ports import DEFAULT_PORT, detect_ports, framework_default_port, ports_from_inspect
from tests.fakes import fakebin
from tests.fakes.fakebin import FakeBin, Rule, image_inspect_json

fake_bin = fakebin.fake_bin


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (image_inspect_json(exposed=("8080/tcp", "443/tcp", "8080/udp")), ([443, 8080], [])),
        (image_inspect_json(env=("PORT=5000", "PORT_X=1")), ([], [5000])),
        (image_inspect_json(exposed=("0/tcp", "70000/tcp", "http/tcp"), env=("PORT=abc",)), ([], [])),
        ("[]", ([], [])),
        ("not json", ([], [])),
        (json.dumps({"8080/tcp": {}}), ([], [])),  # the old --format answer is not the contract
        (json.dumps([{"Config": None}]), ([], [])),
    ],
)
def test_ports_from_inspect(text: str, expected: tuple[list[int], list[int]]) -> None:
    assert ports_from_inspect(text) == expected


def test_framework_defaults_only_for_zero_config_builders(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"dependencies": {"next": "15"}}))
    assert framework_default_port("railpack", tmp_path) == (3000, "Next.js")
    assert framework_default_port("csdocker", tmp_path) == (0, "")
    (tmp_path / "package.json").write_text("{not json")
    assert framework_default_port("nixpacks", tmp_path) == (0, "")
    (tmp_path / "manage.py").write_text("")
    assert framework_default_port("nixpacks", tmp_path) == (8000, "Django")


@pytest.mark.parametrize(
    ("rule", "ports", "source"),
    [
        (
            Rule(("image", "inspect"), stdout=image_inspect_json(exposed=("9000/tcp",), env=("PORT=1",))),
            (9000,),
            "expose",
        ),
        (Rule(("image", "inspect"), stdout=image_inspect_json(env=("PORT=8081",))), (8081,), "env"),
        (Rule(("image", "inspect"), stderr="Error: No such image\n", exit_code=1), (DEFAULT_PORT,), "default"),
    ],
)
async def test_detect_ports_runs_docker_image_inspect(
    fake_bin: FakeBin, rule: Rule, ports: tuple[int, ...], source: str
) -> None:
    fake_bin.add("docker", rule)
    said: list[str] = []
    env = {**fake_bin.env, "NOMAD_META_PARAMS": "CANARY-params"}
    detected = await detect_ports("web:v1", env, said.append)
    assert (detected.ports, detected.source) == (ports, source)
    (call,) = fake_bin.calls("docker")
    assert call.args == ["image", "inspect", "web:v1"]
    assert "NOMAD_META_PARAMS" not in call.env
    assert said[0] == "detect: docker image inspect web:v1" and len(said) == 2


async def test_without_docker_the_default_port(tmp_path: Path) -> None:
    said: list[str] = []
    detected = await detect_ports("web:v1", {"PATH": str(tmp_path)}, said.append)
    assert detected.ports == (DEFAULT_PORT,)
    assert "docker is not available" in said[-1]
