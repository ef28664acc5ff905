"""The local builtins for real: ``exec`` builds, ``process`` runs supervised processes on loopback ports,
``http-check`` polls real HTTP servers; the registry finds them through entry points. No mocks."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudstation.config import load_config, parse_config
from cloudstation.errors import ConfigError
from cloudstation.plugins.base import Artifact, Builder, Deployment, PluginError, ReleaseManager, components_of
from cloudstation.plugins.builtin.exec import Exec, ExecConfig
from cloudstation.plugins.builtin.httpcheck import HttpCheck, HttpCheckConfig
from cloudstation.plugins.builtin.process import Process, ProcessConfig
from cloudstation.plugins.registry import PluginRegistry
from cloudstation.vocabulary import Step
from tests.plugins.local_helpers import (
    Harness,
    free_port,
    http_get,
    http_server,
    kill_marked,
    make_harness,
    marked_pids,
    port_open,
    read_text,
    wait_until_gone,
)

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello"
PY = sys.executable


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """A copy of the hello example app."""
    path = tmp_path / "app"
    path.mkdir()
    shutil.copy(HELLO / "server.py", path / "server.py")
    return path


@pytest.fixture
def harness(tmp_path: Path, app_dir: Path) -> Iterator[Harness]:
    """A context over a real log stream; afterwards, kills anything the test left running."""
    h = make_harness(tmp_path, app_dir)
    yield h
    kill_marked(h.marker)


def _hello_process(**overrides: object) -> Process:
    fields: dict[str, object] = {"start_cmd": f"exec {PY} server.py", "ready_timeout": 15.0, "stop_timeout": 5.0}
    fields.update(overrides)
    return Process(ProcessConfig(**fields))  # type: ignore[arg-type]


# -- exec ------------------------------------------------------------------------------------------


async def test_exec_builds_output_directory(harness: Harness, app_dir: Path) -> None:
    plugin = Exec(ExecConfig(build_cmd="mkdir -p build && echo built > build/VERSION && echo done", output="build"))
    artifact = await plugin.build(harness.ctx)
    assert artifact == Artifact(kind="directory", ref=str((app_dir / "build").resolve()))
    assert (app_dir / "build" / "VERSION").read_text() == "built\n"
    assert "done\n" in [line.content for line in harness.lines if line.output == "stdout"]


async def test_exec_without_output_is_the_app_directory(harness: Harness, app_dir: Path) -> None:
    artifact = await Exec(ExecConfig(build_cmd="true")).build(harness.ctx)
    assert artifact.kind == "directory" and Path(artifact.ref) == app_dir


async def test_exec_failure_reports_exit_code(harness: Harness) -> None:
    plugin = Exec(ExecConfig(build_cmd="echo oops >&2; exit 7"))
    with pytest.raises(PluginError, match=r"^build command failed \(exit 7\)$"):
        await plugin.build(harness.ctx)
    assert any(line.output == "stderr" and line.content == "oops\n" for line in harness.lines)


async def test_exec_missing_output_is_named(harness: Harness) -> None:
    with pytest.raises(PluginError, match=r"build output 'dist' does not exist after the build"):
        await Exec(ExecConfig(build_cmd="true", output="dist")).build(harness.ctx)


async def test_exec_env_is_merged_and_literal(tmp_path: Path, app_dir: Path) -> None:
    h = make_harness(tmp_path, app_dir, env={"FROM_APP": "app", "BOTH": "app"})
    try:
        cmd = 'printf "%s|%s|%s|%s" "$FROM_APP" "$BOTH" "$DOLLAR" "$HOME" > out.txt'
        env = {"BOTH": "plugin", "DOLLAR": "a$HOME b${X}c $(echo no)"}
        await Exec(ExecConfig(build_cmd=cmd, env=env)).build(h.ctx)
        assert (app_dir / "out.txt").read_text() == f"app|plugin|a$HOME b${{X}}c $(echo no)|{os.environ['HOME']}"
    finally:
        kill_marked(h.marker)


def test_exec_rejects_empty_command() -> None:
    with pytest.raises(ValueError, match="build_cmd must not be empty"):
        ExecConfig(build_cmd="  ")


# -- process ---------------------------------------------------------------------------------------


async def test_process_lifecycle(harness: Harness, app_dir: Path) -> None:
    plugin = _hello_process()
    artifact = Artifact(kind="directory", ref=str(app_dir))
    deployment = await plugin.deploy(harness.ctx, artifact)
    port = int(deployment.metadata["port"])
    assert deployment.url == f"http://127.0.0.1:{port}"
    assert http_get(deployment.url + "/") == (200, "hello from cs\n")

    pid = int(deployment.metadata["pid"])
    assert os.getsid(pid) == pid  # detached: its own session and process group
    assert os.getpgid(pid) == pid
    status = await plugin.status(harness.ctx)
    assert status.state == "running"
    assert f"pid {pid}, port {port}, up " in status.detail

    await plugin.destroy(harness.ctx)
    assert not port_open(port)
    assert wait_until_gone(harness.marker) == []
    assert (await plugin.status(harness.ctx)).state == "stopped"
    assert "process: stopped" in harness.text

    await plugin.destroy(harness.ctx)  # again: nothing running is fine
    assert "nothing to destroy" in harness.text


async def test_process_fixed_port_and_redeploy_replaces(harness: Harness, app_dir: Path) -> None:
    port = free_port()
    plugin = _hello_process(port=port)
    artifact = Artifact(kind="directory", ref=str(app_dir))
    first = await plugin.deploy(harness.ctx, artifact)
    assert first.url == f"http://127.0.0.1:{port}"
    second = await plugin.deploy(harness.ctx, artifact)
    assert second.id != first.id
    assert "stopping the running instance" in harness.text
    old_pid, new_pid = int(first.metadata["pid"]), int(second.metadata["pid"])
    assert old_pid not in marked_pids(harness.marker)
    assert new_pid in marked_pids(harness.marker)
    assert http_get(second.url)[0] == 200
    await plugin.destroy(harness.ctx)
    assert wait_until_gone(harness.marker) == []


async def test_process_port_in_use_is_refused(harness: Harness, app_dir: Path) -> None:
    with http_server() as url:
        port = int(url.rsplit(":", 1)[1])
        with pytest.raises(PluginError, match=rf"port {port} is already in use"):
            await _hello_process(port=port).deploy(harness.ctx, Artifact(kind="directory", ref=str(app_dir)))
    assert marked_pids(harness.marker) == []


async def test_process_survives_a_crash(harness: Harness, app_dir: Path) -> None:
    plugin = _hello_process()
    deployment = await plugin.deploy(harness.ctx, Artifact(kind="directory", ref=str(app_dir)))
    supervisor = int(deployment.metadata["pid"])
    app_pids = [pid for pid in marked_pids(harness.marker) if pid != supervisor]
    assert len(app_pids) == 1
    os.kill(app_pids[0], signal.SIGKILL)

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        now = [pid for pid in marked_pids(harness.marker) if pid != supervisor]
        if now and now != app_pids and port_open(int(deployment.metadata["port"])):
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the supervisor did not restart the app")
    assert http_get(deployment.url) == (200, "hello from cs\n")
    status = await plugin.status(harness.ctx)
    assert status.state == "running" and "1 restart" in status.detail
    log = read_text(deployment.metadata["log"])
    assert "restart 1/5" in log

    await plugin.destroy(harness.ctx)
    assert wait_until_gone(harness.marker) == []


async def test_process_orphaned_app_is_still_ours(harness: Harness, app_dir: Path) -> None:
    """The supervisor killed outright: status says so, destroy still stops the app it left behind."""
    plugin = _hello_process()
    deployment = await plugin.deploy(harness.ctx, Artifact(kind="directory", ref=str(app_dir)))
    os.kill(int(deployment.metadata["pid"]), signal.SIGKILL)
    deadline = time.monotonic() + 5
    while int(deployment.metadata["pid"]) in marked_pids(harness.marker) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    status = await plugin.status(harness.ctx)
    assert status.state == "running" and "unsupervised" in status.detail
    await plugin.destroy(harness.ctx)
    assert wait_until_gone(harness.marker) == []
    assert not port_open(int(deployment.metadata["port"]))


async def test_process_app_directory_does_not_shadow_the_supervisor(harness: Harness, app_dir: Path) -> None:
    (app_dir / "argparse.py").write_text("raise SystemExit('shadowed stdlib module imported')\n")
    plugin = _hello_process()
    deployment = await plugin.deploy(harness.ctx, Artifact(kind="directory", ref=str(app_dir)))
    assert http_get(deployment.url)[0] == 200
    await plugin.destroy(harness.ctx)


async def test_process_never_listening_fails_within_ready_timeout(harness: Harness, app_dir: Path) -> None:
    plugin = _hello_process(start_cmd="echo starting up; exec sleep 60", ready_timeout=1.0, stop_timeout=2.0)
    with pytest.raises(PluginError, match=r"did not listen on 127\.0\.0\.1:\d+ within 1s"):
        await plugin.deploy(harness.ctx, Artifact(kind="directory", ref=str(app_dir)))
    assert wait_until_gone(harness.marker, timeout=1.0) == []
    assert "  | starting up" in harness.text  # the log tail was shown
    assert (await plugin.status(harness.ctx)).detail == "not deployed"


async def test_process_exiting_at_start_fails_without_waiting_for_the_ready_timeout(
    harness: Harness, app_dir: Path
) -> None:
    # the message names the exit, not the (long) ready timeout: the deploy did not wait for it
    plugin = _hello_process(start_cmd="echo boom >&2; exit 3", ready_timeout=20.0)
    with pytest.raises(PluginError, match=r"the app exited \(exit 3\) before listening"):
        await plugin.deploy(harness.ctx, Artifact(kind="image", ref="ignored:latest"))
    assert "  | boom" in harness.text
    assert wait_until_gone(harness.marker, timeout=1.0) == []


async def test_process_status_ignores_a_reused_pid(harness: Harness, app_dir: Path) -> None:
    plugin = _hello_process()
    deployment = await plugin.deploy(harness.ctx, Artifact(kind="directory", ref=str(app_dir)))
    record = harness.ctx.plugin_state("process") / "process.json"
    real = record.read_text()
    # Pretend the record names a live process that is not ours (this test process).
    record.write_text(real.replace(f'"pid": {deployment.metadata["pid"]}', f'"pid": {os.getpid()}'))
    assert (await plugin.status(harness.ctx)).state == "stopped"
    record.write_text(real)
    await plugin.destroy(harness.ctx)
    assert wait_until_gone(harness.marker) == []


# -- http-check ------------------------------------------------------------------------------------


async def test_http_check_passes_on_2xx(harness: Harness) -> None:
    with http_server(200) as url:
        await HttpCheck(HttpCheckConfig(path="/health")).release(harness.ctx, Deployment(id="d", url=url))
    assert f"{url}/health answered HTTP 200" in harness.text


async def test_http_check_expected_status(harness: Harness) -> None:
    with http_server(404) as url:
        await HttpCheck(HttpCheckConfig(url=url, expect_status=[404])).release(harness.ctx, Deployment(id="d"))


async def test_http_check_fails_on_wrong_status(harness: Harness) -> None:
    with http_server(503) as url:
        plugin = HttpCheck(HttpCheckConfig(timeout=0.6, interval=0.1))
        with pytest.raises(PluginError) as err:
            await plugin.release(harness.ctx, Deployment(id="d", url=url))
    assert str(err.value) == f"release check failed: {url}/ did not answer 2xx within 0.6s (last: HTTP 503)"


async def test_http_check_fails_when_nothing_listens(harness: Harness) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    plugin = HttpCheck(HttpCheckConfig(url=url, path="/ready", timeout=0.5, interval=0.1))
    with pytest.raises(PluginError) as err:
        await plugin.release(harness.ctx, Deployment(id="d"))
    assert (
        str(err.value) == f"release check failed: {url}/ready did not answer 2xx within 0.5s (last: connection refused)"
    )


@pytest.mark.parametrize("url", ["", "ftp://example.com/", "not a url"])
async def test_http_check_rejects_non_http_urls(harness: Harness, url: str) -> None:
    with pytest.raises(PluginError, match=r"http-check (needs a url|only checks http\(s\) URLs)"):
        await HttpCheck(HttpCheckConfig(url=url)).release(harness.ctx, Deployment(id="d"))


async def test_hello_example_end_to_end(tmp_path: Path, app_dir: Path) -> None:
    """The example's own config: build with exec, run with process, release with http-check."""
    shutil.copy(HELLO / "cloudstation.hcl", app_dir / "cloudstation.hcl")
    config = load_config(app_dir / "cloudstation.hcl", {})
    app = config.app("web")
    registry = PluginRegistry()
    h = make_harness(tmp_path, app_dir)
    deploy = registry.create_platform(app.deploy)
    builder = registry.create(app.build)
    assert isinstance(builder, Builder)
    try:
        artifact = await builder.build(h.ctx)
        assert (app_dir / "build" / "VERSION").exists()
        deployment = await deploy.deploy(h.ctx, artifact)
        assert app.release is not None
        release = registry.create(app.release)
        assert isinstance(release, ReleaseManager)
        await release.release(h.ctx, deployment)
        assert http_get(deployment.url)[1] == "hello from cs\n"
        await deploy.destroy(h.ctx)
        assert wait_until_gone(h.marker) == []
    finally:
        kill_marked(h.marker)


# -- registry --------------------------------------------------------------------------------------

HCL = """\
project = "p"
app "web" {
  build {
    use = "exec"
    build_cmd = "make"
    bogus = 1
  }
  deploy {
    use = "process"
    start_cmd = "./serve"
  }
  release { use = "http-check" }
}
"""


def test_registry_finds_the_local_plugins() -> None:
    registry = PluginRegistry()
    assert {"exec", "process", "http-check"} <= set(registry.names)
    assert registry.get("exec") is Exec and components_of(Exec) == [Step.BUILD]
    assert registry.get("process") is Process and components_of(Process) == [Step.DEPLOY]
    assert registry.get("http-check") is HttpCheck and components_of(HttpCheck) == [Step.RELEASE]
    fields = registry.info("process").fields
    assert ("start_cmd", "str", True) in fields and ("port", "int", False) in fields


def test_registry_create_validates_config() -> None:
    app = parse_config(HCL, "cloudstation.hcl", {}).app("web")
    registry = PluginRegistry()
    deploy = registry.create(app.deploy)
    assert isinstance(deploy, Process) and deploy.config == ProcessConfig(start_cmd="./serve")
    assert app.release is not None and isinstance(registry.create(app.release), HttpCheck)
    with pytest.raises(ConfigError) as err:
        registry.create(app.build)
    assert str(err.value) == (
        'cloudstation.hcl:6: app "web": build: attribute "bogus": '
        "not an attribute of plugin 'exec' (it takes: build_cmd, env, output)"
    )
