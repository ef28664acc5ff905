"""The ``GIT_ASKPASS`` helper: how git gets credentials without them ever touching argv or a URL.

:func:`askpass_helper` writes a tiny shell script into a fresh private directory (mode 0700). The script
holds no secret: it prints the username or the password from the *child's* environment
(``CS_GIT_USERNAME`` / ``CS_GIT_PASSWORD``), and it leaves an ``asked`` marker beside itself so the caller
can tell afterwards whether the server asked for credentials at all.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

USERNAME_VAR = "CS_GIT_USERNAME"
PASSWORD_VAR = "CS_GIT_PASSWORD"

_SCRIPT = f"""#!/bin/sh
# cs askpass helper: answers git's credential prompts from the environment; holds no secret itself.
: > "$(dirname "$0")/asked"
case "$1" in
  [Uu]sername*) printf '%s\\n' "${USERNAME_VAR}" ;;
  *) printf '%s\\n' "${PASSWORD_VAR}" ;;
esac
"""


@dataclass(frozen=True)
class AskpassHelper:
    """The script to put in ``GIT_ASKPASS`` and the marker it touches when git asks for credentials."""

    script: Path

    @property
    def marker(self) -> Path:
        return self.script.parent / "asked"

    def was_asked(self) -> bool:
        return self.marker.exists()

    def reset(self) -> None:
        self.marker.unlink(missing_ok=True)

    def askpass_env(self, username: str, password: str) -> dict[str, str]:
        """The variables a git child needs so the helper answers, and git never prompts a terminal."""
        return {
            "GIT_ASKPASS": str(self.script),
            "GIT_TERMINAL_PROMPT": "0",
            "GCM_INTERACTIVE": "never",
            USERNAME_VAR: username,
            PASSWORD_VAR: password,
        }


@contextmanager
def askpass_helper() -> Iterator[AskpassHelper]:
    """A private directory (0700) holding the helper script (0700); removed on exit."""
    directory = Path(tempfile.mkdtemp(prefix="cs-askpass-"))
    try:
        directory.chmod(0o700)
        script = directory / "askpass.sh"
        script.write_text(_SCRIPT, encoding="utf-8")
        script.chmod(0o700)
        yield AskpassHelper(script)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
