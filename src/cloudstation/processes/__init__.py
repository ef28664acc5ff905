"""Child processes, in one place: how one is started, fed, drained, signalled and stopped.

- :mod:`.spawn`: start a child in its own process group and hand its output, in reading order, to a
  consumer; cancelling stops the group.
- :mod:`.spool`: the child's pipes drained by threads into a memory-bounded spool (spills to a temp file).
- :mod:`.stopping`: stopping a child's process group (SIGTERM, SIGKILL after 2 s; or SIGKILL at once).
- :mod:`.signals`: SIGTERM/SIGINT during a run: the first cancels the running task once, more are
  ignored until the children are gone; the cancellation it caused ends quietly where the caller says.
- :mod:`.environment`: the environment a child gets (never cs's own secrets, :data:`PRIVATE_ENV`).
- :mod:`.quiet`: a probe whose output is data, not log: bounded in time, its process group killed.

This room imports nothing of ours but :mod:`cloudstation.errors`: it knows nothing of events or logs.
"""
