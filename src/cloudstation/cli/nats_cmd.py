"""``cs nats``: create/update the event stream, diagnose the connection, run the packaged server."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

import click

from cloudstation.errors import ConfigError, ExitCode

_MAX_DAYS = 100 * 365


@click.group()
def nats() -> None:
    """Set up, check or run the NATS JetStream server."""


@nats.command()
@click.option("--stream", "name", help="Stream name (default CLOUDSTATION, or <PREFIX>_cloudstation).")
@click.option("--replicas", type=click.IntRange(1, 5), default=1, show_default=True, help="Stream replicas.")
@click.option("--max-age", default="7d", show_default=True, metavar="DURATION", help="How long events are kept.")
@click.option(
    "--duplicate-window",
    default="24h",
    show_default=True,
    metavar="DURATION",
    help="JetStream de-duplication window (retries after outages up to this long stay exactly-once).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def setup(name: str | None, replicas: int, max_age: str, duplicate_window: str, as_json: bool) -> None:
    """Create or update the stream that stores every contract subject (idempotent)."""
    from cloudstation.events.contract import stream_subjects
    from cloudstation.events.jetstream import StreamSpec, default_stream_name
    from cloudstation.natsconn import settings_from_env

    settings = settings_from_env(os.environ)
    assert settings is not None
    spec = StreamSpec(
        name=name or default_stream_name(settings.prefix),
        subjects=stream_subjects(settings.prefix),
        replicas=replicas,
        max_age=_days_or_duration(max_age, "--max-age"),
        duplicate_window=_days_or_duration(duplicate_window, "--duplicate-window"),
    )
    result = asyncio.run(_setup(settings, spec))
    if as_json:
        import msgspec

        click.echo(msgspec.json.encode(result.__dict__).decode())
        return
    if result.created:
        verb = "created"
    elif result.changed:
        verb = "updated (" + ", ".join(result.changed) + ")"
    else:
        verb = "unchanged"
    click.echo(
        f"stream {result.name} {verb}: subjects {' '.join(result.subjects)}, replicas {result.replicas}, "
        f"max age {_fmt(result.max_age)}, duplicate window {_fmt(result.duplicate_window)}, "
        f"fast-ingest batches {'allowed' if result.allow_batched else 'off (the server has none: needs 2.14+)'}"
    )


def _days_or_duration(text: str, name: str) -> float:
    from cloudstation.natsconn import parse_duration

    if text.endswith("d") and text[:-1].isdigit():
        days = int(text[:-1])
        if not 0 < days <= _MAX_DAYS:  # JetStream keeps durations as int64 nanoseconds
            raise ConfigError(f"{name}: {text!r} must be between 1d and {_MAX_DAYS}d")
        return days * 86400.0
    return parse_duration(text, name=name)


def _fmt(seconds: float) -> str:
    from cloudstation.natsconn import format_duration

    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{seconds / 86400:.0f}d"
    return format_duration(seconds)


async def _setup(settings: Any, spec: Any) -> Any:
    from cloudstation.events.connection import connect_plain
    from cloudstation.events.jetstream import setup_stream

    nc = await connect_plain(settings)
    try:
        return await setup_stream(nc.jetstream(), spec)
    finally:
        await nc.close()


@nats.command()
@click.option("--json", "as_json", is_flag=True, help="Print the diagnosis as JSON.")
def check(as_json: bool) -> None:
    """Connect, authenticate, confirm JetStream and that a stream stores every contract subject."""
    from cloudstation.natsconn import settings_from_env

    settings = settings_from_env(os.environ)
    assert settings is not None
    result = asyncio.run(_check(settings))
    if as_json:
        import msgspec

        doc = {
            "ok": result.ok,
            "rtt_ms": round(result.rtt_ms, 3),
            "checks": [{"ok": o, "text": t} for o, t in result.lines],
        }
        click.echo(msgspec.json.encode(doc).decode())
    else:
        for ok, text in result.lines:
            mark = click.style("ok  ", fg="green") if ok else click.style("FAIL", fg="red")
            click.echo(f"{mark} {text}")
    if not result.ok:
        raise click.exceptions.Exit(ExitCode.FAILED)


async def _check(settings: Any) -> Any:
    from cloudstation.events.connection import connect_plain
    from cloudstation.events.jetstream import check

    nc = await connect_plain(settings)
    try:
        return await check(nc, settings.prefix, fast_ingest=settings.fast_ingest)
    finally:
        await nc.close()


@nats.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=4222,
    show_default=True,
    help="Client port (0: any free port).",
)
@click.option("--store", "store", type=click.Path(file_okay=False, path_type=Path), help="JetStream store directory.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
def serve(port: int, store: Path | None, host: str) -> None:
    """Run the packaged nats-server with JetStream (the embedded default for demos and local work).

    Runs in the foreground until interrupted. Point cs at it with NATS_SERVERS=nats://HOST:PORT.
    """
    from cloudstation.natsconn import packaged_server_binary

    binary = packaged_server_binary()
    store_dir = store or Path(tempfile.gettempdir()) / "cs-nats-store"
    store_dir.mkdir(parents=True, exist_ok=True)
    argv = [str(binary), "-js", "-a", host, "-p", str(port if port else -1), "-sd", str(store_dir)]
    click.echo(f"cs: running {binary.name} on {host}:{port or 'any free port'}, store {store_dir}", err=True)
    os.execv(argv[0], argv)
