"""The pipe spool on its own: memory-bounded, spills to a temporary file, keeps reading order, carries EOF."""

from __future__ import annotations

import asyncio
import os

from cloudstation.processes.spool import Chunk, PipeSpool, start_reader


def _chunks(n: int, size: int) -> list[Chunk]:
    return [Chunk("stdout" if i % 2 else "stderr", i, bytes([65 + i % 26]) * size) for i in range(n)]


async def _drain(spool: PipeSpool, count: int, max_bytes: int = 1 << 20) -> list[Chunk]:
    out: list[Chunk] = []
    while len(out) < count:
        out.extend(await spool.take(max_bytes))
    return out


def test_memory_is_bounded_and_the_rest_spills_to_a_temp_file_in_order() -> None:
    async def scenario() -> None:
        spool = PipeSpool(asyncio.get_running_loop(), memory_limit=1000)
        chunks = _chunks(50, 100)  # 5000 bytes for a 1000-byte memory
        for chunk in chunks:
            spool.put(chunk)
        assert 0 < spool.memory_bytes <= 1000
        assert spool.spilled  # the rest went to disk
        got = await _drain(spool, len(chunks), max_bytes=300)  # several takes, memory first, then the file
        assert got == chunks
        assert not spool.spilled  # drained: back to memory only
        spool.close()

    asyncio.run(scenario())


def test_after_a_spill_new_chunks_queue_behind_the_file_not_in_memory() -> None:
    async def scenario() -> None:
        spool = PipeSpool(asyncio.get_running_loop(), memory_limit=250)
        first, later = _chunks(6, 100), _chunks(3, 10)
        for chunk in first:
            spool.put(chunk)
        spool.put(later[0])  # small enough for memory, but it must not overtake the spilled ones
        assert spool.memory_bytes == 200
        got = await _drain(spool, 7)
        assert got == [*first, later[0]]
        for chunk in later[1:]:  # once drained, memory again
            spool.put(chunk)
        assert not spool.spilled
        assert spool.memory_bytes == 20
        assert await _drain(spool, 2) == later[1:]

    asyncio.run(scenario())


def test_eof_is_an_empty_chunk_that_survives_the_file() -> None:
    async def scenario() -> None:
        spool = PipeSpool(asyncio.get_running_loop(), memory_limit=0)
        spool.put(Chunk("stdout", 1, b"last line\n"))
        spool.put(Chunk("stdout", 2, b""))
        spool.put(Chunk("stderr", 3, b""))
        got = await _drain(spool, 3)
        assert [(c.output, c.data) for c in got] == [("stdout", b"last line\n"), ("stdout", b""), ("stderr", b"")]

    asyncio.run(scenario())


def test_take_waits_for_a_chunk_from_a_reader_thread() -> None:
    async def scenario() -> None:
        spool = PipeSpool(asyncio.get_running_loop(), memory_limit=64)
        read_fd, write_fd = os.pipe()
        reader = start_reader(read_fd, "stderr", spool)
        payload = b"x" * 10_000 + b"\n"
        await asyncio.to_thread(os.write, write_fd, payload)
        os.close(write_fd)
        got: list[Chunk] = []
        while not got or got[-1].data:
            got.extend(await spool.take())
        await asyncio.to_thread(reader.join)
        assert b"".join(c.data for c in got) == payload
        assert all(c.output == "stderr" for c in got)
        assert [c.read_ns for c in got] == sorted(c.read_ns for c in got)
        spool.close()

    asyncio.run(scenario())
