"""Draining a child's stdout and stderr at the child's own speed, whatever the consumer is doing.

One thread per pipe reads large chunks (the pipes are enlarged to 1 MiB where Linux allows) and
appends them, tagged with the output and the read time, to one :class:`PipeSpool` in reading order.
The spool keeps up to ``memory_limit`` bytes in memory and spills the rest to an anonymous temporary
file, so the child never blocks on a full pipe and memory stays bounded; the consumer (a deployment's
build log, through :func:`~cloudstation.processes.spawn.run_child`) takes the records on the event loop
at its own pace.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import IO, Literal

Output = Literal["stdout", "stderr"]

READ_SIZE = 1 << 20
PIPE_SIZE = 1 << 20
_HEADER = struct.Struct("<BqI")  # output (0 stdout, 1 stderr), read time (ns), length
_OUTPUTS: tuple[Output, Output] = ("stdout", "stderr")


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes read from one pipe at one moment (``data`` empty: that pipe reached EOF)."""

    output: Output
    read_ns: int
    data: bytes


class PipeSpool:
    """Chunks from several reader threads, in reading order; memory-bounded, spills to disk."""

    def __init__(self, loop: asyncio.AbstractEventLoop, memory_limit: int = 4 << 20) -> None:
        self._loop = loop
        self._limit = memory_limit
        self._lock = threading.Lock()
        self._memory: deque[Chunk] = deque()
        self._memory_bytes = 0
        self._file: IO[bytes] | None = None
        self._write_pos = 0
        self._read_pos = 0
        self._ready = asyncio.Event()

    @property
    def memory_bytes(self) -> int:
        """Bytes of chunks held in memory now (at most ``memory_limit``)."""
        with self._lock:
            return self._memory_bytes

    @property
    def spilled(self) -> bool:
        """Whether chunks wait in the temporary file now (new ones queue there until it is drained)."""
        with self._lock:
            return self._file is not None

    # -- producers (reader threads) ----------------------------------------------------------------

    def put(self, chunk: Chunk) -> None:
        with self._lock:
            if self._file is None and self._memory_bytes + len(chunk.data) <= self._limit:
                self._memory.append(chunk)
                self._memory_bytes += len(chunk.data)
            else:
                if self._file is None:
                    self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed when drained
                    self._write_pos = self._read_pos = 0
                self._file.seek(self._write_pos)
                self._file.write(_HEADER.pack(_OUTPUTS.index(chunk.output), chunk.read_ns, len(chunk.data)))
                self._file.write(chunk.data)
                self._write_pos = self._file.tell()
        with contextlib.suppress(RuntimeError):  # the loop is gone: the run was cancelled, nobody reads
            self._loop.call_soon_threadsafe(self._ready.set)

    # -- the consumer (event loop) -----------------------------------------------------------------

    async def take(self, max_bytes: int = 1 << 20) -> list[Chunk]:
        """The next chunks in reading order (waits until there is at least one)."""
        while True:
            self._ready.clear()
            chunks = self._take_now(max_bytes)
            if chunks:
                return chunks
            await self._ready.wait()

    def _take_now(self, max_bytes: int) -> list[Chunk]:
        out: list[Chunk] = []
        size = 0
        with self._lock:
            while self._memory and size < max_bytes:
                chunk = self._memory.popleft()
                self._memory_bytes -= len(chunk.data)
                out.append(chunk)
                size += len(chunk.data)
            if out or self._file is None:
                return out
            self._file.seek(self._read_pos)
            while self._read_pos < self._write_pos and size < max_bytes:
                which, read_ns, length = _HEADER.unpack(self._file.read(_HEADER.size))
                data = self._file.read(length)
                self._read_pos += _HEADER.size + length
                out.append(Chunk(_OUTPUTS[which], read_ns, data))
                size += length
            if self._read_pos >= self._write_pos:  # drained: back to memory
                self._file.close()
                self._file = None
        return out

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def enlarge_pipe(fd: int) -> None:
    """Ask for a 1 MiB pipe buffer (Linux); harmless where not supported."""
    setpipe = getattr(__import__("fcntl"), "F_SETPIPE_SZ", None)
    if setpipe is not None:
        import fcntl

        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, setpipe, PIPE_SIZE)


def start_reader(fd: int, output: Output, spool: PipeSpool) -> threading.Thread:
    """A daemon thread copying ``fd`` into ``spool`` until EOF (then an empty chunk); closes ``fd``."""

    def pump() -> None:
        try:
            while True:
                try:
                    data = os.read(fd, READ_SIZE)
                except OSError:
                    data = b""
                spool.put(Chunk(output, time.time_ns(), data))
                if not data:
                    return
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)

    thread = threading.Thread(target=pump, name=f"cs-pipe-{output}", daemon=True)
    thread.start()
    return thread
