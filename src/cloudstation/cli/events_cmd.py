"""``cs events``: publish an event by hand, list and flush the outbox, tail the stream, print the schema."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

import click

from cloudstation.errors import AuthError, ContractError, DeliveryError, ExitCode, RefusedError


@click.group()
def events() -> None:
    """Publish, inspect and replay deployment events."""


@events.command()
@click.argument("kind", required=False)
@click.option("--data", "data", metavar="JSON", help="The payload, as the wire JSON (camelCase fields).")
@click.option(
    "--batch",
    type=click.File("r"),
    metavar="FILE",
    help='JSON lines {"kind": KIND, "data": {...}} to publish in order ("-" for stdin).',
)
@click.option("--deployment", "deployment_id", help="Deployment id for deployment.status.changed (ordering, header).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per event.")
def publish(kind: str | None, data: str | None, batch: Any, deployment_id: str | None, as_json: bool) -> None:
    """Validate, journal and deliver an event; print its subject, stream sequence and msg id.

    KIND is a contract subject without prefix: deployment.status.changed, deployment.succeeded,
    deployment.failed, job.destroyed, build.log, build.log.end (the last two get .<deploymentId>
    from the payload).

    \b
    Exit codes: 0 every event was acknowledged by JetStream;
    1 the server refused an event for good (set aside in the outbox, never resent);
    2 invalid payload or settings, or an event that can never be delivered (nothing journaled);
    75 not delivered within CS_DELIVERY_TIMEOUT, or held behind an earlier undelivered event of its
    deployment (kept in the outbox: run `cs events flush`);
    77 authentication or permission refused (kept in the outbox).
    """
    from cloudstation.events import contract
    from cloudstation.natsconn import settings_from_env

    if batch is not None and (kind or data):
        raise click.UsageError("give either KIND --data JSON or --batch FILE, not both")
    items: list[tuple[contract.EventKind, bytes]] = []
    if batch is not None:
        items = _read_batch(batch)
    else:
        if not kind or data is None:
            raise click.UsageError("KIND and --data JSON are required (or --batch FILE)")
        # Undecodable bytes in the argument stay undecodable: the payload check says "not valid UTF-8".
        items = [(contract.parse_kind(kind), data.encode("utf-8", "surrogateescape"))]
    settings = settings_from_env(os.environ)
    assert settings is not None
    evs = []
    for k, raw in items:
        payload = contract.decode_payload(k, raw)
        evs.append(contract.make_event(k, payload, prefix=settings.prefix, deployment_id=deployment_id or ""))
    asyncio.run(_publish(settings, evs, as_json))


def _read_batch(stream: Any) -> list[tuple[Any, bytes]]:
    import msgspec

    from cloudstation.events import contract

    out = []
    name = getattr(stream, "name", "batch")
    lines = iter(stream)
    lineno = 0
    while True:
        lineno += 1
        try:
            line = next(lines)
        except StopIteration:
            break
        except UnicodeDecodeError:
            raise ContractError(f"{name}:{lineno}: not valid UTF-8") from None
        if not line.strip():
            continue
        doc = contract.decode_json(line, f"{name}:{lineno}")
        if not isinstance(doc, dict) or "kind" not in doc or "data" not in doc:
            raise ContractError(f'{name}:{lineno}: expected {{"kind": ..., "data": {{...}}}}')
        try:
            kind = contract.parse_kind(str(doc["kind"]))
            out.append((kind, msgspec.json.encode(doc["data"])))
            contract.decode_payload(kind, out[-1][1])
        except ContractError as exc:
            raise ContractError(f"{name}:{lineno}: {exc}") from None
    return out


async def _publish(settings: Any, evs: list[Any], as_json: bool) -> None:
    from cloudstation.events.ackwindow import Ack
    from cloudstation.events.outbox import Outbox, default_state_dir
    from cloudstation.events.publisher import Publisher

    deadline = time.monotonic() + settings.delivery_timeout
    outbox = Outbox(default_state_dir(os.environ))
    try:
        pub = Publisher(settings, outbox)
        await pub.start()
        try:
            seqs = pub.submit(evs, track=True)  # the door: an undeliverable event is refused, exit 2
        except ContractError:
            await pub.close(timeout=0)
            raise
        try:
            done = await pub.wait(seqs, timeout=settings.delivery_timeout)
        except DeliveryError as exc:  # refused for good: credentials, permissions, TLS trust
            await pub.close(timeout=0)
            raise type(exc)(f"{exc}; {len(seqs)} event(s) kept in {outbox.path}") from None
        failures: list[DeliveryError] = []
        waiting = 0
        for ev, seq in zip(evs, seqs, strict=True):
            res = pub.outcome(seq)
            if isinstance(res, Ack):
                _print_ack(ev, res, as_json)
            elif isinstance(res, DeliveryError):
                failures.append(res)
            else:
                waiting += 1
        await pub.close(timeout=max(0.0, deadline - time.monotonic()))
    finally:
        outbox.close()
    # 0 only when every event of this command was acknowledged: the worst outcome decides the code.
    if failures:
        worst = _worst(failures)
        more = len(failures) + waiting - 1
        extra = f" (and {more} more event(s) not delivered)" if more else ""
        if isinstance(worst, RefusedError):
            raise RefusedError(f"{worst}{extra}")
        raise type(worst)(f"{worst}{extra}; kept in {outbox.path}; `cs events flush` retries")
    if waiting or not done:
        raise DeliveryError(
            f"{waiting} event(s) not delivered within {settings.delivery_timeout:g}s "
            f"(NATS at {settings.shown_servers} unreachable?); kept in {outbox.path}; "
            "run `cs events flush` when the server is back"
        )


def _worst(failures: list[DeliveryError]) -> DeliveryError:
    """Refused credentials first, then a refusal for good, then anything that a retry may cure."""
    for cls in (AuthError, RefusedError):
        for failure in failures:
            if isinstance(failure, cls):
                return failure
    return failures[0]


def _print_ack(ev: Any, ack: Any, as_json: bool) -> None:
    if as_json:
        import msgspec

        doc = {
            "kind": ev.kind.value,
            "subject": ev.subject,
            "stream": ack.stream,
            "seq": ack.seq,
            "duplicate": ack.duplicate,
            "msg_id": ev.msg_id,
        }
        click.echo(msgspec.json.encode(doc).decode())
    else:
        dup = " (duplicate)" if ack.duplicate else ""
        click.echo(f"delivered {ev.subject} -> stream {ack.stream} seq {ack.seq}{dup} msg-id {ev.msg_id}")


@events.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--data", "with_data", is_flag=True, help="Show each event's payload too.")
def pending(as_json: bool, with_data: bool) -> None:
    """List events kept in the outbox (not yet acknowledged by JetStream) and why each is kept.

    \b
    State: waiting (will be delivered by the next cs or `cs events flush`; the last error says what
    failed), set aside (refused by the server for good: never resent; `cs events discard` removes
    it), or owned by a running cs (that process delivers it).
    """
    import msgspec

    from cloudstation.events.outbox import Outbox, default_state_dir

    encoder = msgspec.json.Encoder()
    with Outbox(default_state_dir(os.environ)) as outbox:
        total = outbox.count(mine=False) + outbox.count(mine=False, set_aside=True)
        if as_json:  # streamed: the outbox may hold millions of events
            click.echo("[", nl=False)
            for i, r in enumerate(outbox.iter_pending(with_data=with_data)):
                doc: dict[str, Any] = {
                    "seq": r.seq,
                    "kind": r.kind,
                    "subject": r.subject,
                    "msg_id": r.msg_id,
                    "deployment_id": r.deployment_id,
                    "age_s": round(r.age_s, 3),
                    "attempts": r.attempts,
                    "last_error": r.last_error,
                    "owner_alive": r.owner_alive,
                    "state": r.state,
                }
                if with_data:
                    doc["data"] = _payload_text(r.data)
                click.echo(("," if i else "") + encoder.encode(doc).decode(), nl=False)
            click.echo("]")
            return
        if not total:
            click.echo(f"no pending events ({outbox.path})")
            return
        click.echo(f"{total} pending event(s) in {outbox.path}:")
        for r in outbox.iter_pending(with_data=with_data):
            err = f"  last error: {r.last_error}" if r.last_error else ""
            click.echo(
                f"  #{r.seq} {r.kind:<26} {_shown(r.subject)}  id={r.msg_id}  age={_age(r.age_s)}  "
                f"attempts={r.attempts}  [{r.state}]{err}"
            )
            if with_data:
                click.echo(f"      data: {_payload_text(r.data)}")


def _payload_text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _shown(subject: str, limit: int = 200) -> str:
    """A subject as listed: a poison one (thousands of characters) is cut."""
    return subject if len(subject) <= limit else f"{subject[:limit]}... ({len(subject)} characters)"


@events.command()
@click.argument("seqs", nargs=-1, type=int, required=True)
def discard(seqs: tuple[int, ...]) -> None:
    """Delete set-aside events (by the #SEQ `cs events pending` shows); other events are never touched."""
    from cloudstation.events.outbox import Outbox, default_state_dir

    with Outbox(default_state_dir(os.environ)) as outbox:
        deleted = outbox.discard(seqs)
    click.echo(f"discarded {deleted} set-aside event(s)")
    if deleted != len(set(seqs)):
        raise click.exceptions.Exit(ExitCode.FAILED)


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


@events.command()
@click.option("--timeout", "timeout", metavar="DURATION", help="How long to try (default CS_DELIVERY_TIMEOUT, 60s).")
def flush(timeout: str | None) -> None:
    """Deliver the events left in the outbox.

    Exit 0 when none remain; 75 when some could not be delivered yet (or belong to a running cs);
    1 when only set-aside events remain (refused by the server for good: `cs events pending`).
    """
    from cloudstation.natsconn import parse_duration, settings_from_env

    settings = settings_from_env(os.environ)
    assert settings is not None
    seconds = parse_duration(timeout, name="--timeout") if timeout else settings.delivery_timeout
    asyncio.run(_flush(settings, seconds))


async def _flush(settings: Any, timeout: float) -> None:
    from cloudstation.events.outbox import Outbox, default_state_dir
    from cloudstation.events.publisher import Publisher

    with Outbox(default_state_dir(os.environ)) as outbox:
        pub = Publisher(settings, outbox)
        await pub.start()
        try:
            await pub.wait(timeout=timeout)
        finally:
            report = await pub.close(timeout=0)
        others = outbox.count(mine=False) - report.undelivered
        set_aside = outbox.count(mine=False, set_aside=True)
    click.echo(f"delivered {report.delivered} event(s)")
    if report.undelivered:
        reason = f": {report.errors[0]}" if report.errors else ""
        raise DeliveryError(f"{report.undelivered} event(s) still in {report.outbox_path}{reason}")
    if others:
        raise DeliveryError(f"{others} event(s) in {outbox.path} belong to a running cs process")
    if set_aside:
        raise RefusedError(
            f"{set_aside} event(s) set aside in {outbox.path} (refused by the server for good, never resent): "
            "`cs events pending` shows why, `cs events discard` removes them"
        )


@events.command()
@click.option("--deployment", "deployment_id", help="Replay this deployment's history first, then follow it.")
@click.option("--no-follow", is_flag=True, help="Exit after the history instead of following.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
def tail(deployment_id: str | None, no_follow: bool, as_json: bool) -> None:
    """Follow the stream live: lifecycle events and log lines.

    With --deployment, that deployment's history is replayed from the stream first. With --no-follow,
    the command exits after the history (without --deployment, the whole stream's history).
    """
    from cloudstation.events.contract import validate_deployment_id
    from cloudstation.natsconn import settings_from_env

    if deployment_id:
        validate_deployment_id(deployment_id, field="--deployment")
    settings = settings_from_env(os.environ)
    assert settings is not None
    from cloudstation.cli.tail import run_tail

    color = sys.stdout.isatty() and not as_json and "NO_COLOR" not in os.environ
    try:
        rc = asyncio.run(run_tail(settings, deployment_id, follow=not no_follow, as_json=as_json, color=color))
    except KeyboardInterrupt:
        rc = 0
    if rc:
        raise click.exceptions.Exit(rc)


@events.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonschema", "asyncapi"]),
    default="jsonschema",
    show_default=True,
    help="JSON Schema of every payload, or an AsyncAPI 3.0 document of every channel.",
)
def schema(fmt: str) -> None:
    """Print the event contract, for consumers in other languages."""
    from cloudstation.events.schema import render

    click.echo(render(fmt))


__all__ = ["ExitCode", "events"]
