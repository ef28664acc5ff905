"""What the process-stopping tests ask of /proc: is a pid still running?"""

from __future__ import annotations

from pathlib import Path


def alive(pid: int) -> bool:
    """Running: a zombie waiting for its parent to reap it (Z) or a dying one (X) counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")
