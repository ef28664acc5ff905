"""Cloning with the real git: local bare repositories over file://, and a basic-auth smart-HTTP server
for the askpass path. A canary token must never show up in argv, URLs, output or messages."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from cloudstation.sources import (
    BranchNotFoundError,
    CollectingRunner,
    GitNotInstalledError,
    InvalidSourceError,
    SourceAuthError,
    SourceError,
    clone_repository,
    remote_url,
)
from cloudstation.sources.askpass import askpass_helper
from cloudstation.sources.git import provider_for

from .sources_testkit import RecordingRunner, git, git_http_server, make_bare_repo

CANARY = "ghp_CANARY0123456789abcdefTOKEN"


@pytest.fixture
def git_root(tmp_path: Path) -> Path:
    root = tmp_path / "remote"
    make_bare_repo(
        root,
        "acme/web",
        {"main": {"README.md": "main branch\n"}, "feature/x": {"app.py": "print('x')\n"}},
    )
    return root


def assert_no_canary(runner: RecordingRunner, *texts: str) -> None:
    for argv, _env in runner.calls:
        assert all(CANARY not in arg for arg in argv), argv
    assert CANARY not in runner.inner.text()
    for text in texts:
        assert CANARY not in text


def test_unknown_provider_gets_githubs_auth_form() -> None:
    assert remote_url("acme/web", "sourceforge") == "https://github.com/acme/web.git"
    assert provider_for("sourceforge") == provider_for("github") == provider_for(None)
    assert provider_for("sourceforge").username == "x-access-token"


async def test_clone_keeps_history_for_git_describe(git_root: Path, tmp_path: Path) -> None:
    work = tmp_path / "history"
    git("clone", "-q", "--branch", "main", str(git_root / "acme" / "web.git"), str(work))
    for command in (
        ["tag", "v1.0.0"],
        ["commit", "-q", "--allow-empty", "-m", "2"],
        ["push", "-q", "origin", "main", "--tags"],
    ):
        git(*command, cwd=work)
    env = {"PATH": os.environ["PATH"], "CS_GIT_BASE_URL": f"file://{git_root}"}
    dest = await clone_repository("acme/web", "main", tmp_path / "src", env=env)
    describe = await asyncio.to_thread(_git_output, dest, "describe", "--tags")
    assert describe.startswith("v1.0.0-1-g"), describe
    assert int(await asyncio.to_thread(_git_output, dest, "rev-list", "--count", "HEAD")) == 2
    assert await asyncio.to_thread(_git_output, dest, "rev-parse", "--is-shallow-repository") == "false\n"


def _git_output(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def test_remote_url_per_provider() -> None:
    assert remote_url("acme/web") == "https://github.com/acme/web.git"
    assert remote_url("acme/web", "gitlab") == "https://gitlab.com/acme/web.git"
    assert remote_url("acme/web", "Bitbucket") == "https://bitbucket.org/acme/web.git"
    assert remote_url("acme/web.git", "", "https://ghe.example/") == "https://ghe.example/acme/web.git"
    assert remote_url("group/sub/proj", "gitlab") == "https://gitlab.com/group/sub/proj.git"


@pytest.mark.parametrize(
    ("repository", "branch", "provider", "base_url"),
    [
        ("acme", "main", None, None),
        ("../etc/passwd", "main", None, None),
        ("acme/-upload-pack=x", "main", None, None),
        ("acme/web", "--upload-pack=touch x", None, None),
        ("acme/web", "a..b", None, None),
        ("acme/web", "", None, None),
        ("acme/web", "main", None, "ssh://git@example"),
        ("acme/web", "main", None, f"https://user:{CANARY}@ghe.example"),
    ],
)
async def test_invalid_parameters_are_refused(
    tmp_path: Path, repository: str, branch: str, provider: str | None, base_url: str | None
) -> None:
    runner = RecordingRunner()
    with pytest.raises(InvalidSourceError) as caught:
        await clone_repository(
            repository, branch, tmp_path / "src", token=CANARY, provider=provider, base_url=base_url,
            runner=runner,
        )  # fmt: skip
    assert runner.calls == []
    assert CANARY not in str(caught.value)
    assert "\n" not in str(caught.value)


async def test_clones_branch_from_file_base_url_given_in_env(git_root: Path, tmp_path: Path) -> None:
    runner = RecordingRunner()
    env = {"PATH": os.environ["PATH"], "CS_GIT_BASE_URL": f"file://{git_root}", "SECRET_OTHER": "s3cr3t"}
    dest = await clone_repository("acme/web", "feature/x", tmp_path / "src", token=CANARY, env=env, runner=runner)
    assert (dest / "app.py").read_text() == "print('x')\n"
    assert not (dest / "README.md").exists()
    argv, git_env = runner.calls[0]
    assert argv[-2:] == [f"file://{git_root}/acme/web.git", str(tmp_path / "src")]
    assert "clone" in argv and "--filter=blob:none" in argv and "--depth" not in argv
    assert git_env["GIT_TERMINAL_PROMPT"] == "0"
    assert git_env["CS_GIT_PASSWORD"] == CANARY  # only in the child's environment
    assert "SECRET_OTHER" not in git_env
    assert not await asyncio.to_thread(os.path.exists, git_env["GIT_ASKPASS"])  # helper removed
    assert_no_canary(runner)


async def test_default_runner_collects_output(git_root: Path, tmp_path: Path) -> None:
    runner = CollectingRunner()
    await clone_repository("acme/web", "main", tmp_path / "src", base_url=f"file://{git_root}", runner=runner)
    assert "Cloning into" in runner.text("stderr")
    assert (tmp_path / "src" / "README.md").exists()


async def test_clone_into_existing_empty_directory(git_root: Path, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    await clone_repository("acme/web", "main", tmp_path / "src", base_url=f"file://{git_root}")
    assert (tmp_path / "src" / "README.md").exists()


async def test_non_empty_destination_is_refused(git_root: Path, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "keep").write_text("x")
    with pytest.raises(SourceError, match="not an empty directory"):
        await clone_repository("acme/web", "main", tmp_path / "src", base_url=f"file://{git_root}")
    assert (tmp_path / "src" / "keep").exists()


async def test_missing_branch_is_named(git_root: Path, tmp_path: Path) -> None:
    runner = RecordingRunner()
    with pytest.raises(BranchNotFoundError) as caught:
        await clone_repository(
            "acme/web", "nope", tmp_path / "src", token=CANARY, base_url=f"file://{git_root}", runner=runner
        )
    assert str(caught.value) == "branch 'nope' not found in acme/web"
    assert not (tmp_path / "src").exists()
    assert_no_canary(runner, str(caught.value))


async def test_missing_repository_is_named(git_root: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError) as caught:
        await clone_repository("acme/ghost", "main", tmp_path / "src", token=CANARY, base_url=f"file://{git_root}")
    assert str(caught.value) == f"repository acme/ghost not found or unreachable at file://{git_root}"
    assert type(caught.value) is SourceError


async def test_git_not_installed(tmp_path: Path) -> None:
    with pytest.raises(GitNotInstalledError, match="git is not installed"):
        await clone_repository("acme/web", "main", tmp_path / "src", env={"PATH": str(tmp_path)})


def test_askpass_script_answers_from_the_child_environment() -> None:
    with askpass_helper() as helper:
        assert stat.S_IMODE(helper.script.stat().st_mode) == 0o700
        assert stat.S_IMODE(helper.script.parent.stat().st_mode) == 0o700
        assert CANARY not in helper.script.read_text()
        env = {"PATH": os.environ["PATH"], **helper.askpass_env("x-token-auth", CANARY)}
        script = str(helper.script)

        def ask(prompt: str) -> bytes:
            return subprocess.run([script, prompt], env=env, capture_output=True, check=True).stdout

        user, password = ask("Username for 'https://b.org': "), ask("Password for 'https://b.org': ")
        assert user == b"x-token-auth\n"
        assert password == f"{CANARY}\n".encode()
        assert helper.was_asked()
        directory = helper.script.parent
    assert not directory.exists()


async def test_token_reaches_the_server_only_through_askpass(git_root: Path, tmp_path: Path) -> None:
    runner = RecordingRunner()
    with git_http_server(git_root, "x-access-token", CANARY) as server:
        dest = await clone_repository(
            "acme/web", "main", tmp_path / "src", token=CANARY, base_url=server.base_url, runner=runner
        )
    assert (dest / "README.md").read_text() == "main branch\n"
    assert any(auth is not None for _path, auth in server.requests)  # it did authenticate
    assert_no_canary(runner)
    assert CANARY not in (dest / ".git" / "config").read_text()


async def test_bitbucket_username_is_used(git_root: Path, tmp_path: Path) -> None:
    with git_http_server(git_root, "x-token-auth", CANARY) as server:
        await clone_repository(
            "acme/web", "main", tmp_path / "src", token=CANARY, provider="bitbucket", base_url=server.base_url
        )
    assert (tmp_path / "src" / "README.md").exists()


async def test_wrong_token_is_an_authentication_error(git_root: Path, tmp_path: Path) -> None:
    runner = RecordingRunner()
    wrong = CANARY + "-wrong"
    with (
        git_http_server(git_root, "x-access-token", CANARY) as server,
        pytest.raises(SourceAuthError) as caught,
    ):
        await clone_repository(
            "acme/web", "main", tmp_path / "src", token=wrong, base_url=server.base_url, runner=runner
        )
    message = str(caught.value)
    assert message.startswith("authentication failed for acme/web")
    assert wrong not in message and CANARY not in message
    assert_no_canary(runner, message)
    assert all(wrong not in arg for argv, _env in runner.calls for arg in argv)
    assert not (tmp_path / "src").exists()


async def test_no_token_against_protected_server(git_root: Path, tmp_path: Path) -> None:
    with (
        git_http_server(git_root, "x-access-token", CANARY) as server,
        pytest.raises(SourceAuthError) as caught,
    ):
        await clone_repository("acme/web", "main", tmp_path / "src", base_url=server.base_url)
    assert "no token was given" in str(caught.value)


async def test_cancellation_kills_the_child(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    runner = CollectingRunner()
    script = f"echo $$ > {marker}; exec sleep 30"
    task = asyncio.create_task(runner(["sh", "-c", script], env={"PATH": os.environ["PATH"]}))
    for _ in range(100):
        if marker.exists() and marker.read_text().strip():
            break
        await asyncio.sleep(0.05)
    pid = int(marker.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def start_partial_clone(dest: Path) -> None:
    dest.mkdir()
    (dest / "partial").write_text("x")


async def test_cancelled_clone_leaves_no_destination(git_root: Path, tmp_path: Path) -> None:
    started = asyncio.Event()

    async def slow_runner(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None) -> int:
        await asyncio.to_thread(start_partial_clone, Path(argv[-1]))
        started.set()
        await asyncio.sleep(60)
        return 0

    dest = tmp_path / "src"
    task = asyncio.create_task(
        clone_repository("acme/web", "main", dest, base_url=f"file://{git_root}", runner=slow_runner)
    )
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not await asyncio.to_thread(dest.exists)


async def test_runner_reports_exit_code_and_both_streams() -> None:
    runner = CollectingRunner()
    code = await runner(["sh", "-c", "echo out; echo err >&2; printf tail; exit 3"], env={"PATH": os.defpath})
    assert code == 3
    assert runner.text("stdout") == "out\ntail"
    assert runner.text("stderr") == "err"
