"""Cloning a deployment's repository (``owner/repo`` at a branch) with the real ``git``.

Owns the provider table (base URL and token username per provider), the ``CS_GIT_BASE_URL`` override
(GitHub Enterprise, self-hosted GitLab/Gitea, ``file://`` for tests), the clone command, and the
translation of a failed clone into one clear :class:`~cloudstation.sources.errors.SourceError`.

The token never appears in argv, a URL, output or a message: git receives it through the ``GIT_ASKPASS``
helper (see :mod:`cloudstation.sources.askpass`) from its own environment, every credential helper is
disabled for the command, and every message is redacted of it anyway.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cloudstation.sources.askpass import AskpassHelper, askpass_helper
from cloudstation.sources.commands import CollectingRunner, CommandRunner
from cloudstation.sources.errors import (
    BranchNotFoundError,
    GitNotInstalledError,
    InvalidSourceError,
    SourceAuthError,
    SourceError,
    redact,
)

BASE_URL_VAR = "CS_GIT_BASE_URL"


@dataclass(frozen=True)
class GitProvider:
    """Where a provider's repositories live and which username goes with a token."""

    base_url: str
    username: str


PROVIDERS: Mapping[str, GitProvider] = {
    "github": GitProvider("https://github.com", "x-access-token"),
    # GitLab accepts any username with a token, so GitHub's token username serves both.
    "gitlab": GitProvider("https://gitlab.com", "x-access-token"),
    "bitbucket": GitProvider("https://bitbucket.org", "x-token-auth"),
}
DEFAULT_PROVIDER = "github"

# Variables a git child may inherit from the caller's environment; everything else (other secrets of the
# dispatch, NOMAD_META_PARAMS with its gitPass...) stays out of the child.
_INHERITED = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "XDG_CONFIG_HOME",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy",
        "all_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH",
        "GIT_SSL_NO_VERIFY", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM", "GIT_EXEC_PATH",
    }
)  # fmt: skip
_SEGMENT = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]*")
_BRANCH_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")
_LS_REMOTE_NO_MATCH = 2


def provider_for(name: str | None) -> GitProvider:
    """The provider called ``name`` (case-insensitive). Empty or unknown means GitHub's host and token
    username: an unknown provider name is not an error, the clone is tried on GitHub."""
    key = (name or DEFAULT_PROVIDER).strip().lower()
    return PROVIDERS.get(key, PROVIDERS[DEFAULT_PROVIDER])


def is_known_provider(name: str | None) -> bool:
    return (name or DEFAULT_PROVIDER).strip().lower() in PROVIDERS


def remote_url(repository: str, provider: str | None = None, base_url: str | None = None) -> str:
    """The credential-free clone URL of ``owner/repo``: ``<base>/<owner>/<repo>.git``."""
    base = (base_url or provider_for(provider).base_url).rstrip("/")
    _check_base_url(base)
    return f"{base}/{_normalise_repository(repository)}.git"


async def clone_repository(
    repository: str,
    branch: str,
    dest: Path,
    *,
    token: str = "",
    provider: str | None = None,
    base_url: str | None = None,
    env: Mapping[str, str] | None = None,
    runner: CommandRunner | None = None,
    depth: int | None = None,
) -> Path:
    """Clone ``repository`` (``owner/repo``) at ``branch`` into ``dest`` (absent or an empty directory).

    ``base_url`` overrides the provider's base URL; when None, ``env[CS_GIT_BASE_URL]`` does. ``env`` is the
    caller's environment (default: this process's), from which the child inherits only what git needs.
    ``runner`` runs every git command (default: a :class:`CollectingRunner`). Returns ``dest``.
    The clone keeps the branch's history (builds run ``git describe``, stamp versions) but fetches file
    contents lazily: a partial clone (``--filter=blob:none``) costs little more than ``--depth 1``. A
    ``depth`` makes it shallow instead.

    Raises :class:`InvalidSourceError` for malformed parameters, :class:`GitNotInstalledError`,
    :class:`BranchNotFoundError`, :class:`SourceAuthError`, or :class:`SourceError`. On failure or
    cancellation a ``dest`` created here is removed.
    """
    environment = os.environ if env is None else env
    try:
        provider_info = provider_for(provider)
        repo = _normalise_repository(repository)
        _check_branch(branch)
        base = (base_url or environment.get(BASE_URL_VAR) or provider_info.base_url).rstrip("/")
        url = remote_url(repo, base_url=base)
    except InvalidSourceError as exc:
        raise InvalidSourceError(redact(str(exc), [token])) from None
    created = _check_destination(dest)
    git = shutil.which("git", path=environment.get("PATH", os.defpath))
    if git is None:
        raise GitNotInstalledError("git is not installed (no 'git' executable on PATH)")
    command = [git, "-c", "credential.helper=", "clone", "--branch", branch, "--single-branch"]
    command += ["--filter=blob:none"] if depth is None else ["--depth", str(depth)]
    command += ["--", url, str(dest)]
    succeeded = False
    try:
        with askpass_helper() as askpass:
            job = _GitJob(
                runner=runner if runner is not None else CollectingRunner(),
                git=git,
                env=_git_env(environment, askpass, provider_info.username, token),
                repo=repo,
                branch=branch,
                token=token,
            )
            code = await job.run(command)
            if code != 0:
                raise await job.diagnose(url=url, base=base, askpass=askpass, clone_exit=code)
        succeeded = True
        return dest
    finally:
        if not succeeded and created:
            _remove_tree(dest)


@dataclass(frozen=True)
class _GitJob:
    """One clone's git invocations: same runner, environment and redaction for each command."""

    runner: CommandRunner
    git: str
    env: Mapping[str, str]
    repo: str
    branch: str
    token: str = field(repr=False)

    async def run(self, argv: list[str]) -> int:
        try:
            return await self.runner(argv, env=self.env)
        except FileNotFoundError:
            raise GitNotInstalledError("git is not installed (no 'git' executable on PATH)") from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            message = f"could not run git for {self.repo} (branch {self.branch!r}): {reason}"
            raise SourceError(redact(message, [self.token])) from None

    async def diagnose(self, *, url: str, base: str, askpass: AskpassHelper, clone_exit: int) -> SourceError:
        """Why the clone failed, found by asking the remote for the branch (``ls-remote --exit-code``)."""
        askpass.reset()
        branch, repo = self.branch, self.repo
        probe = [self.git, "-c", "credential.helper=", "ls-remote", "--exit-code", "--", url]
        code = await self.run([*probe, f"refs/heads/{branch}", f"refs/tags/{branch}"])
        error_type: type[SourceError]
        if code == 0:
            error_type = SourceError
            message = f"git clone of {repo} (branch {branch!r}) failed with exit code {clone_exit}"
        elif code == _LS_REMOTE_NO_MATCH:
            error_type, message = BranchNotFoundError, f"branch {branch!r} not found in {repo}"
        elif askpass.was_asked():
            hint = "no token was given" if not self.token else "check the token and that the repository exists"
            error_type, message = SourceAuthError, f"authentication failed for {repo} ({hint})"
        else:
            error_type, message = SourceError, f"repository {repo} not found or unreachable at {base}"
        return error_type(redact(message, [self.token]))


def _git_env(environment: Mapping[str, str], askpass: AskpassHelper, username: str, token: str) -> dict[str, str]:
    child = {key: value for key, value in environment.items() if key in _INHERITED or key.startswith("LC_")}
    child.setdefault("PATH", os.defpath)
    child.update(askpass.askpass_env(username, token))
    return child


def _normalise_repository(repository: str) -> str:
    repo = repository.strip().strip("/").removesuffix(".git")
    segments = repo.split("/")
    if len(segments) < 2 or not all(_SEGMENT.fullmatch(part) and part not in {".", ".."} for part in segments):
        raise InvalidSourceError(
            f"invalid repository {_shown(repository)}: expected 'owner/repo' (letters, digits, '.', '_', '-')"
        )
    return repo


def _check_branch(branch: str) -> None:
    if (
        not branch
        or branch.startswith(("-", "/", "."))
        or branch.endswith(("/", ".", ".lock"))
        or _BRANCH_FORBIDDEN.search(branch)
    ):
        raise InvalidSourceError(f"invalid branch name {_shown(branch)}")


def _check_base_url(base: str) -> None:
    parts = urlsplit(base)
    if parts.scheme not in {"https", "http", "file"}:
        raise InvalidSourceError(
            f"{BASE_URL_VAR} must be an https://, http:// or file:// URL (got scheme {parts.scheme!r})"
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidSourceError(f"{BASE_URL_VAR} must not contain credentials; the token is passed apart")
    if parts.query or parts.fragment:
        raise InvalidSourceError(f"{BASE_URL_VAR} must not contain a query or a fragment")


def _check_destination(dest: Path) -> bool:
    """Refuse a non-empty destination; True when it does not exist yet (so the clone creates it)."""
    if not dest.exists():
        return True
    if not dest.is_dir() or any(dest.iterdir()):
        raise SourceError(f"clone destination {dest} exists and is not an empty directory")
    return False


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _shown(value: str) -> str:
    return repr(value[:100] + ("..." if len(value) > 100 else ""))
