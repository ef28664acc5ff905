"""The environment a child process gets: the caller's (or cs's own), without cs's private variables.

cs holds secrets of its own in its environment (the NATS seed and creds, the dispatch params, the
backend's access token). A child process never inherits them: every spawn goes through
:func:`without_private_env`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: Variables of cs's own that a child process never inherits (seeds, tokens, the dispatch params).
PRIVATE_ENV = frozenset({"NATS_CLIENT_PRIVATE_KEY", "NATS_CREDS", "NOMAD_META_PARAMS", "ACCESS_TOKEN"})


def without_private_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """``env`` (default: this process's environment) without :data:`PRIVATE_ENV`."""
    source = os.environ if env is None else env
    return {k: v for k, v in source.items() if k not in PRIVATE_ENV}
