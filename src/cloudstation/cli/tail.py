"""``cs events tail``: read the event stream (history and/or live) and print it readably or as JSON."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import click

from cloudstation.errors import DeliveryError
from cloudstation.events.contract import HEADER_DEPLOYMENT, EventKind, kind_of_subject, sample_subjects
from cloudstation.natsconn import NatsSettings

_COLORS = {
    EventKind.STATUS_CHANGED: "cyan",
    EventKind.SUCCEEDED: "green",
    EventKind.FAILED: "red",
    EventKind.JOB_DESTROYED: "magenta",
    EventKind.BUILD_LOG_END: "blue",
}


async def run_tail(
    settings: NatsSettings, deployment_id: str | None, *, follow: bool, as_json: bool, color: bool
) -> int:
    """Print matching events; returns the exit code."""
    from nats.js.api import DeliverPolicy

    from cloudstation.events.connection import connect_plain

    nc = await connect_plain(settings)
    try:
        js = nc.jetstream()
        try:
            stream = await js.find_stream_name_by_subject(sample_subjects(settings.prefix)[0])
        except Exception:
            raise DeliveryError("no stream holds the deployment events: run `cs nats setup`") from None
        info = await js.stream_info(stream)
        last = info.state.last_seq if info.state.messages else 0
        replay = deployment_id is not None or not follow
        if not follow and last == 0:
            return 0
        policy = DeliverPolicy.ALL if replay else DeliverPolicy.NEW
        queue: asyncio.Queue[Any] = asyncio.Queue()
        sub = await js.subscribe(
            info.config.subjects[0] if len(info.config.subjects) == 1 else ">",
            ordered_consumer=True,
            deliver_policy=policy,
            cb=queue.put,
            stream=stream,
        )
        try:
            while True:
                msg = await queue.get()
                seq = msg.metadata.sequence.stream
                if _matches(msg, deployment_id, settings.prefix):
                    _print(msg, settings.prefix, as_json=as_json, color=color)
                if not follow and seq >= last:
                    return 0
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


def _matches(msg: Any, deployment_id: str | None, prefix: str) -> bool:
    if deployment_id is None:
        return True
    headers = msg.headers or {}
    if headers.get(HEADER_DEPLOYMENT) == deployment_id:
        return True
    kind = kind_of_subject(msg.subject, prefix)
    if kind in (EventKind.BUILD_LOG, EventKind.BUILD_LOG_END):
        return bool(msg.subject.endswith("." + deployment_id))
    try:
        data = json.loads(msg.data)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("deploymentId") == deployment_id


def _print(msg: Any, prefix: str, *, as_json: bool, color: bool) -> None:
    kind = kind_of_subject(msg.subject, prefix)
    try:
        data: Any = json.loads(msg.data)
    except ValueError:
        data = msg.data.decode("utf-8", "replace")
    stamp = msg.metadata.timestamp
    if as_json:
        doc = {
            "seq": msg.metadata.sequence.stream,
            "subject": msg.subject,
            "kind": kind.value if kind else None,
            "time": stamp.isoformat() if stamp else None,
            "headers": dict(msg.headers or {}),
            "data": data,
        }
        click.echo(json.dumps(doc, ensure_ascii=False))
        return
    clock = stamp.astimezone().strftime("%H:%M:%S.%f")[:-3] if stamp else time.strftime("%H:%M:%S")
    if kind is EventKind.BUILD_LOG and isinstance(data, dict):
        phase = str(data.get("phase", ""))
        line = str(data.get("content", "")).rstrip("\n")
        tag = f"[{phase}]"
        err = data.get("logOutput") == "stderr"
        if color:
            tag = click.style(tag, fg="yellow" if err else "bright_black")
        click.echo(f"{clock} {tag} {line}")
        return
    label = kind.value if kind else msg.subject
    body = " ".join(f"{k}={v}" for k, v in data.items()) if isinstance(data, dict) else str(data)
    if color and kind in _COLORS:
        label = click.style(label, fg=_COLORS[kind], bold=True)
    click.echo(f"{clock} {label} {body}")
