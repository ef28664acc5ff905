"""Read back what a JetStream stream really holds (the tests' ground truth)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import nats
import nats.errors


@dataclass(frozen=True)
class StoredMsg:
    seq: int
    subject: str
    headers: dict[str, str]
    data: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.data)

    @property
    def msg_id(self) -> str:
        return self.headers.get("Nats-Msg-Id", "")


async def read_stream_async(servers: str, stream: str = "CLOUDSTATION", attempts: int = 20) -> list[StoredMsg]:
    """Every message of ``stream``; retried while a clustered stream or consumer elects its leader."""
    for _ in range(attempts - 1):
        try:
            return await _read(servers, stream)
        except (nats.errors.Error, TimeoutError):
            await asyncio.sleep(0.5)
    return await _read(servers, stream)


async def _read(servers: str, stream: str) -> list[StoredMsg]:
    nc = await nats.connect(servers.split(","), allow_reconnect=False)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        total = info.state.messages
        out: list[StoredMsg] = []
        if total == 0:
            return out
        sub = await js.pull_subscribe("", stream=stream, config=None)
        while len(out) < total:
            for m in await sub.fetch(min(1000, total - len(out)), timeout=10):
                out.append(StoredMsg(m.metadata.sequence.stream, m.subject, dict(m.headers or {}), m.data))
                await m.ack()
        await sub.unsubscribe()
        return out
    finally:
        await nc.close()


def read_stream(servers: str, stream: str = "CLOUDSTATION") -> list[StoredMsg]:
    return asyncio.run(read_stream_async(servers, stream))


def stream_count(servers: str, stream: str = "CLOUDSTATION") -> int:
    """How many messages ``stream`` holds (stream info only: cheap enough to poll)."""

    async def count() -> int:
        nc = await nats.connect(servers.split(","), allow_reconnect=False)
        try:
            info = await nc.jetstream().stream_info(stream)
            return int(info.state.messages)
        finally:
            await nc.close()

    return asyncio.run(count())
