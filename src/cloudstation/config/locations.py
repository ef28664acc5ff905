"""Source locations in a config file and the one way to format a located ``ConfigError``.

Every config problem, whether found here or by a higher layer (plugins validating their raw config), is
reported as ``<file>:<line>[:<column>]: <context>: <problem>`` on one line. Callers must never put a
secret value in ``problem``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudstation.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Location:
    """A position in a config file; ``line`` and ``column`` are 1-based, ``None`` when unknown."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


def config_error(location: Location, message: str, *context: str) -> ConfigError:
    """Build ``ConfigError("<location>: <context>: ...: <message>")`` on a single line.

    ``context`` segments go from outer to inner, e.g. ``('app "web"', "build", 'attribute "tag"')``.
    """
    parts = [str(location), *context, message]
    text = ": ".join(parts)
    return ConfigError(" ".join(text.splitlines()))
