"""`cs build/up/validate/plugins/init` end to end: real processes, a real nats-server, real entry points."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CsRunner
from tests.natsserver import NatsServer
from tests.streamread import read_stream

SAMPLE_PLUGIN = Path(__file__).parents[1] / "fixtures" / "sample_plugin"


def _project(tmp_path: Path, build_cmd: str, *, secret: str = "") -> Path:
    app = tmp_path / "proj"
    app.mkdir()
    (app / "cloudstation.hcl").write_text(
        f"""
project = "demo"
variable "token" {{
  type = "string"
  sensitive = true
  env = ["DEMO_TOKEN"]
  default = "{secret}"
}}
app "web" {{
  path = "."
  build {{
    use = "exec"
    build_cmd = {json.dumps(build_cmd)}
    env = {{ TOKEN = var.token }}
  }}
  deploy {{
    use = "noop"
  }}
}}
"""
    )
    return app / "cloudstation.hcl"


def _hcl(build: str, deploy: str = 'use = "noop"', extra: str = "") -> str:
    """A one-app project file; ``build``/``deploy`` are the blocks' bodies (one attribute a line, ``;``)."""
    body = "\n    ".join(build.split("; "))
    return f'project = "p"\napp "web" {{\n  build {{\n    {body}\n  }}\n  deploy {{\n    {deploy}\n  }}\n{extra}}}\n'


def _setup(cs: CsRunner, url: str) -> dict[str, str]:
    env = {"NATS_SERVERS": url}
    assert cs("nats", "setup", env=env).returncode == 0
    return env


def test_up_publishes_the_deployment_events_in_contract_order(
    cs: CsRunner, nats_server: NatsServer, tmp_path: Path
) -> None:
    env = _setup(cs, nats_server.url)
    canary = "CANARY-lifecycle-9d1"
    hcl = _project(tmp_path, 'echo "building with $TOKEN"; echo warn >&2', secret=canary)
    res = cs("up", "-f", str(hcl), "--deployment-id", "dep-up", "--job-id", "41", "--json", env=env)
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)[0]
    assert result["ok"] is True
    assert [p["phase"] for p in result["phases"]] == ["build", "deploy"]
    stored = read_stream(nats_server.url)
    subjects = [m.subject for m in stored]
    assert subjects[0] == "deployment.status.changed"
    assert stored[0].json == {"jobId": 41, "status": "IN_PROGRESS"}
    assert subjects[-2:] == ["deployment.succeeded", "build.log.end.dep-up"]
    assert stored[-2].json == {
        "jobId": 41,
        "type": "git_repo",
        "deploymentId": "dep-up",
        "serviceId": "web",
        "teamId": "",
        "userId": "",
        "ownerId": "",
    }
    logs = [m.json for m in stored[1:-2]]
    assert all(m.subject == "build.log.dep-up" for m in stored[1:-2])
    contents = [str(p["content"]) for p in logs]
    assert "building with ***\n" in contents
    assert "warn\n" in contents
    assert {p["phase"] for p in logs} == {"build", "deploy"}
    assert [p["sequence"] for p in logs] == list(range(1, len(logs) + 1))
    assert all(canary not in m.data.decode() for m in stored)
    assert canary not in res.stdout + res.stderr


def test_failing_build_exits_1_and_publishes_failed_then_end_after_the_logs(
    cs: CsRunner, nats_server: NatsServer, tmp_path: Path
) -> None:
    env = _setup(cs, nats_server.url)
    hcl = _project(tmp_path, "echo compiling; exit 3")
    res = cs("up", "-f", str(hcl), "--deployment-id", "dep-bad", "--job-id", "42", env=env)
    assert res.returncode == 1
    assert "web [dep-bad]: failed: build command failed (exit 3)" in res.stderr
    stored = read_stream(nats_server.url)
    subjects = [m.subject for m in stored]
    assert subjects[0] == "deployment.status.changed"
    assert subjects[-2:] == ["deployment.failed", "build.log.end.dep-bad"]
    assert stored[-1].json == {"deploymentId": "dep-bad", "jobId": 42, "status": "failed"}
    assert set(subjects[1:-2]) == {"build.log.dep-bad"}
    contents = [m.json["content"] for m in stored[1:-2]]
    assert "compiling\n" in contents
    assert "error: build failed: build command failed (exit 3)\n" in contents


def test_sigterm_during_a_long_build_stops_the_child_and_publishes_the_failure(
    cs: CsRunner, nats_server: NatsServer, tmp_path: Path
) -> None:
    env = _setup(cs, nats_server.url)
    pid_file = tmp_path / "child.pid"
    hcl = _project(tmp_path, f"echo $$ > {pid_file}; echo started; sleep 60")
    proc = cs.popen("up", "-f", str(hcl), "--deployment-id", "dep-term", "--job-id", "43", "--quiet", env=env)
    deadline = time.monotonic() + 30
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    child = int(pid_file.read_text())
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=50)  # a liveness bound only (no timing is asserted): the child alone sleeps 60 s
    assert proc.returncode == 128 + signal.SIGTERM
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    stored = read_stream(nats_server.url)
    assert [m.subject for m in stored][-2:] == ["deployment.failed", "build.log.end.dep-term"]
    assert stored[-1].json["status"] == "failed"


def test_build_then_deploy_uses_the_remembered_artifact(cs: CsRunner, tmp_path: Path) -> None:
    hcl = _project(tmp_path, "mkdir -p out && echo v1 > out/VERSION")
    res = cs("deploy", "-f", str(hcl), "--json")
    assert res.returncode == 2
    assert "has no build artifact yet: run `cs build` first" in res.stderr
    assert cs("build", "-f", str(hcl), "--quiet").returncode == 0
    res = cs("deploy", "-f", str(hcl), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)[0]["phases"] == [
        {
            "phase": "deploy",
            "plugin": "noop",
            "seconds": json.loads(res.stdout)[0]["phases"][0]["seconds"],
            "ok": True,
            "error": "",
        }
    ]


def test_validate_reports_plugin_config_errors_with_location(cs: CsRunner, tmp_path: Path) -> None:
    hcl = tmp_path / "cloudstation.hcl"
    hcl.write_text(_hcl('use = "exec"; build_cmd = "make"; colour = "blue"'))
    res = cs("validate", "-f", str(hcl))
    assert res.returncode == 2
    assert res.stderr.strip() == (
        f'cs: error: {hcl}:6: app "web": build: attribute "colour": '
        "not an attribute of plugin 'exec' (it takes: build_cmd, env, output)"
    )
    hcl.write_text(_hcl('use = "exec"; build_cmd = "make"', 'use = "nosuch"'))
    res = cs("validate", "-f", str(hcl))
    assert res.returncode == 2
    assert f'{hcl}:8: app "web": deploy: attribute "use": unknown plugin \'nosuch\' (known: ' in res.stderr
    hcl.write_text(_hcl('use = "exec"; build_cmd = "make"', extra='  registry {\n    use = "exec"\n  }\n'))
    res = cs("validate", "-f", str(hcl))
    assert res.returncode == 2
    assert "registry: attribute \"use\": plugin 'exec' cannot be used as registry (it provides: build)" in res.stderr
    hcl.write_text(_hcl('use = "noop"'))
    res = cs("validate", "-f", str(hcl), "--json")
    assert res.returncode == 0
    assert json.loads(res.stdout)["apps"] == {"web": {"build": "noop", "deploy": "noop"}}


def test_third_party_plugin_registered_by_entry_point_is_listed_and_runs(cs: CsRunner, tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(SAMPLE_PLUGIN)}
    listed = cs("plugins", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    greet = next(p for p in json.loads(listed.stdout) if p["name"] == "greet")
    assert greet["components"] == ["build"]
    assert greet["config"] == [{"name": "greeting", "type": "str", "required": False}]
    assert greet["distribution"] == "cs-sample-plugin"
    hcl = tmp_path / "cloudstation.hcl"
    hcl.write_text(_hcl('use = "greet"; greeting = "howdy"'))
    res = cs("build", "-f", str(hcl), env=env)
    assert res.returncode == 0, res.stderr
    assert "howdy from a third-party plugin" in res.stdout
    assert "greet" not in {p["name"] for p in json.loads(cs("plugins", "--json").stdout)}


def test_init_detects_the_builder_and_refuses_to_overwrite(cs: CsRunner, tmp_path: Path) -> None:
    proj = tmp_path / "My Shop!"
    proj.mkdir()
    (proj / "Dockerfile").write_text("FROM scratch\n")
    res = cs("init", "--dir", str(proj), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"file": str(proj / "cloudstation.hcl")}
    text = (proj / "cloudstation.hcl").read_text()
    assert 'project = "My-Shop"' in text
    assert 'use   = "csdocker"' in text
    assert cs("init", "--dir", str(proj)).returncode == 2
    assert cs("init", "--dir", str(proj), "--force").returncode == 0
    (proj / "Dockerfile").unlink()
    subprocess.run(["git", "init", "-q", str(proj)], check=True)
    subprocess.run(
        ["git", "-C", str(proj), "remote", "add", "origin", "git@github.com:acme/storefront.git"], check=True
    )
    assert cs("init", "--dir", str(proj), "--force").returncode == 0
    text = (proj / "cloudstation.hcl").read_text()
    assert 'project = "storefront"' in text and 'use   = "railpack"' in text


def test_unknown_app_is_a_usage_error(cs: CsRunner, tmp_path: Path) -> None:
    hcl = _project(tmp_path, "true")
    res = cs("build", "-f", str(hcl), "--app", "api")
    assert res.returncode == 2
    assert "no app 'api'" in res.stderr and "(apps: web)" in res.stderr
