"""The redaction set: every secret a job knows, replaced by ``***`` before text leaves the process.

Secrets shorter than :data:`MIN_SECRET_LEN` characters are not redacted (too many false hits in
ordinary text); ``cs`` itself never logs them. A multi-line secret (a PEM key) is redacted whole
and line by line, since the log stream sees one line at a time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MIN_SECRET_LEN = 4
MASK = "***"


class Redactor:
    """Replaces every known secret in a text with ``***``. Add secrets as they become known."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        """Add secrets (too-short ones are ignored); each line of a multi-line secret counts too."""
        before = len(self._secrets)
        for secret in secrets:
            if not secret:
                continue
            for candidate in (secret, *secret.splitlines()):
                if len(candidate) >= MIN_SECRET_LEN:
                    self._secrets.add(candidate)
        if len(self._secrets) != before:
            # Longest first, so a secret that contains another is masked whole.
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    @property
    def longest(self) -> int:
        """Length of the longest secret (0 when there is none)."""
        return max((len(s) for s in self._secrets), default=0)

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __len__(self) -> int:
        return len(self._secrets)

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def safe_cut(self, text: str, cut: int) -> int:
        """A cut position <= ``cut`` that does not split an occurrence of a secret in ``text``."""
        if self._pattern is None:
            return cut
        start = max(0, cut - self.longest + 1)
        for match in self._pattern.finditer(text, start, min(len(text), cut + self.longest)):
            if match.start() < cut < match.end():
                return match.start()
        return cut

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"
