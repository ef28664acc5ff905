"""Lifecycle-event latency through ``Publisher`` versus the plain nats-py JetStream client.

Owns the delivery bench. Against one real ``nats-server`` and in one run, rounds alternate between:

- *ours*: ``Publisher.submit`` of one barrier event (``deployment.status.changed``) → journal in the
  SQLite outbox → publish → PubAck → ``flush()`` → row removed. Three points are taken: when
  ``Publisher.wait`` returns (the PubAck is known), when the barrier's ``flush()`` has returned (the
  headline figure: journal + publish + PubAck + flush), and when the delivery loop is idle again
  (the acknowledged row removed from the outbox).
- *plain*: ``js.publish(subject, data, headers={"Nats-Msg-Id": ...})`` (PubAck) then ``nc.flush()``, on
  its own connection to the same server, same subject, payload and headers.
- *journal*: what the Publisher does to the SQLite outbox for one barrier (``append``, ``next_batch``
  finding it, ``next_batch`` finding nothing more, ``remove``), on a separate outbox, no network: how
  much of the difference is the durable journal.

Which of ours/plain goes first alternates every round, so drifting machine noise hits both alike. The
ratio ours/plain of the p50s is the figure of merit (goal, not asserted: ≤ 1.2x).

``python -m bench.delivery [--n 500] [--warmup 50] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.report import BenchResult, Goal, Summary, add_common_args, emit
from bench.server import BenchServer
from cloudstation.events import contract as c
from cloudstation.events.jetstream import StreamSpec, default_stream_name, setup_stream
from cloudstation.events.outbox import Outbox, StoredEvent
from cloudstation.events.publisher import Publisher
from cloudstation.natsconn import NatsSettings

GOAL_P50_RATIO = 1.2
_WAIT_TIMEOUT = 30.0


class _ObservedPublisher(Publisher):
    """The real Publisher, plus a signal when a barrier's publish → PubAck → flush has completed.

    Only observes: the barrier is delivered by the inherited code, unchanged.
    """

    def __init__(self, settings: NatsSettings, outbox: Outbox) -> None:
        super().__init__(settings, outbox)
        self.barrier_done = asyncio.Event()
        self.barrier_done_at = 0.0

    async def _publish_barrier(self, item: StoredEvent) -> None:
        await super()._publish_barrier(item)
        self.barrier_done_at = time.perf_counter()
        self.barrier_done.set()


@dataclass
class _Samples:
    ours_ack: list[float] = field(default_factory=list)
    ours_flushed: list[float] = field(default_factory=list)
    ours_idle: list[float] = field(default_factory=list)
    plain_ack: list[float] = field(default_factory=list)
    plain_flushed: list[float] = field(default_factory=list)
    journal: list[float] = field(default_factory=list)
    journal_parts: dict[str, list[float]] = field(default_factory=dict)


def _status_event(job: int) -> c.Event:
    payload = c.StatusChanged(job_id=job, status="IN_PROGRESS")
    return c.make_event(c.EventKind.STATUS_CHANGED, payload, deployment_id=f"bench-{job}")


async def _ours(pub: _ObservedPublisher, ev: c.Event) -> tuple[float, float, float]:
    pub.barrier_done.clear()
    t0 = time.perf_counter()
    seqs = pub.submit([ev], track=True)
    if not await pub.wait(seqs, timeout=_WAIT_TIMEOUT):
        raise RuntimeError(f"the Publisher did not deliver {ev.subject} within {_WAIT_TIMEOUT}s")
    t_ack = time.perf_counter()
    await asyncio.wait_for(pub.barrier_done.wait(), _WAIT_TIMEOUT)
    t_idle = time.perf_counter()
    result = pub.results.pop(seqs[0])
    if isinstance(result, Exception):
        raise RuntimeError(f"the Publisher refused {ev.subject}: {result}")
    return t_ack - t0, pub.barrier_done_at - t0, t_idle - t0


async def _plain(nc: object, js: object, ev: c.Event) -> tuple[float, float]:
    t0 = time.perf_counter()
    await js.publish(ev.subject, ev.data, headers=ev.headers())  # type: ignore[attr-defined]
    t_ack = time.perf_counter()
    await nc.flush()  # type: ignore[attr-defined]
    t_done = time.perf_counter()
    return t_ack - t0, t_done - t0


_JOURNAL_STEPS = ("append", "next_batch (1 row)", "next_batch (empty)", "remove")


def _journal(outbox: Outbox, ev: c.Event) -> list[float]:
    """The outbox operations the Publisher makes for one barrier event; seconds per step."""
    t0 = time.perf_counter()
    seqs = outbox.append([ev])
    t1 = time.perf_counter()
    found = outbox.next_batch(seqs[0] - 1, 1024)
    t2 = time.perf_counter()
    more = outbox.next_batch(seqs[0], 1024)
    t3 = time.perf_counter()
    outbox.remove(seqs)
    t4 = time.perf_counter()
    if len(found) != 1 or more:
        raise RuntimeError("the journal-only outbox is not empty between rounds")
    return [t1 - t0, t2 - t1, t3 - t2, t4 - t3]


async def _measure(url: str, n: int, warmup: int, workdir: Path) -> _Samples:
    import nats

    settings = NatsSettings(servers=(url,), name="cs-bench")
    plain_nc = await nats.connect(url, name="bench-plain")
    try:
        js = plain_nc.jetstream()
        await setup_stream(js, StreamSpec(default_stream_name(""), c.stream_subjects("")))
        samples = _Samples()
        with Outbox(workdir / "state") as outbox, Outbox(workdir / "journal-only") as journal_box:
            pub = _ObservedPublisher(settings, outbox)
            await pub.start()
            try:
                for i in range(warmup + n):
                    ours_ev, plain_ev, journal_ev = _status_event(3 * i), _status_event(3 * i + 1), _status_event(0)
                    if i % 2 == 0:
                        ours = await _ours(pub, ours_ev)
                        plain = await _plain(plain_nc, js, plain_ev)
                    else:
                        plain = await _plain(plain_nc, js, plain_ev)
                        ours = await _ours(pub, ours_ev)
                    journal = _journal(journal_box, journal_ev)
                    if i < warmup:
                        continue
                    samples.ours_ack.append(ours[0])
                    samples.ours_flushed.append(ours[1])
                    samples.ours_idle.append(ours[2])
                    samples.plain_ack.append(plain[0])
                    samples.plain_flushed.append(plain[1])
                    samples.journal.append(sum(journal))
                    for step, seconds in zip(_JOURNAL_STEPS, journal, strict=True):
                        samples.journal_parts.setdefault(step, []).append(seconds)
            finally:
                report = await pub.close(timeout=_WAIT_TIMEOUT)
            if not report.complete:
                raise RuntimeError(f"{report.undelivered} event(s) left undelivered in {report.outbox_path}")
        return samples
    finally:
        await plain_nc.close()


def run(n: int = 500, warmup: int = 50, url: str | None = None) -> BenchResult:
    """Run the delivery bench (its own server unless ``url`` is given) and return its figures."""
    if n < 1 or warmup < 0:
        raise ValueError("n must be >= 1 and warmup >= 0")
    with tempfile.TemporaryDirectory(prefix="cs-bench-delivery-") as tmp:
        if url is None:
            with BenchServer() as server:
                samples = asyncio.run(_measure(server.url, n, warmup, Path(tmp)))
        else:
            samples = asyncio.run(_measure(url, n, warmup, Path(tmp)))
    series = {
        "ours: submit -> PubAck (wait)": Summary.of(samples.ours_ack),
        "ours: submit -> PubAck + flush": Summary.of(samples.ours_flushed),
        "ours: submit -> idle (row removed)": Summary.of(samples.ours_idle),
        "plain: js.publish": Summary.of(samples.plain_ack),
        "plain: js.publish + flush": Summary.of(samples.plain_flushed),
        "journal only (4 outbox steps)": Summary.of(samples.journal),
    }
    flushed, plain = series["ours: submit -> PubAck + flush"], series["plain: js.publish + flush"]
    ack, plain_ack = series["ours: submit -> PubAck (wait)"], series["plain: js.publish"]
    ratios = {
        "p50 ours/plain (with flush)": flushed.p50_ms / plain.p50_ms,
        "p99 ours/plain (with flush)": flushed.p99_ms / plain.p99_ms,
        "p50 ours/plain (to PubAck)": ack.p50_ms / plain_ack.p50_ms,
        "p50 ours to idle / plain (with flush)": series["ours: submit -> idle (row removed)"].p50_ms / plain.p50_ms,
        "p50 journal only / plain (with flush)": series["journal only (4 outbox steps)"].p50_ms / plain.p50_ms,
    }
    parts = {step: Summary.of(v).p50_ms * 1000.0 for step, v in samples.journal_parts.items()}
    return BenchResult(
        bench="delivery",
        title="lifecycle event latency, Publisher vs plain nats-py js.publish + flush",
        params={"n": n, "warmup": warmup, "event": c.EventKind.STATUS_CHANGED.value},
        series=series,
        ratios=ratios,
        goals=[Goal("p50 ours/plain (with flush)", ratios["p50 ours/plain (with flush)"], GOAL_P50_RATIO, "x")],
        details={
            "journal_step_p50_us": {step: round(us, 1) for step, us in parts.items()},
        },
        notes=["ours and plain alternate first/second every round; the journal series uses its own outbox"],
    )


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=500, help="measured rounds (default 500)")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured rounds first (default 50)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.delivery", description=__doc__.split("\n\n")[0])
    add_args(parser)
    add_common_args(parser)
    args = parser.parse_args(argv)
    emit([run(n=args.n, warmup=args.warmup)], args.json)


if __name__ == "__main__":
    main()
