"""The build log's per-chunk work on its own (no server: the sink records what it is given).

A chunk's lines are redacted, numbered and encoded together (one payload template per output and
phase, one random read for the msg ids); each test pins that the result is what the one-line-at-a-time
path gives: the same payload bytes, the same redaction, the same numbering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from cloudstation.events import contract as c
from cloudstation.events.buildlog import BuildLog, LogLine
from cloudstation.events.identity import DeploymentRef
from cloudstation.redaction import Redactor


class Sink:
    def __init__(self) -> None:
        self.events: list[c.Event] = []

    def submit(self, events: Sequence[c.Event], *, track: bool = False) -> list[int]:
        self.events.extend(events)
        return list(range(len(self.events) - len(events) + 1, len(self.events) + 1))

    @property
    def max_payload(self) -> int | None:
        return 1024 * 1024


@dataclass(frozen=True)
class Chunk:
    output: c.LogOutput
    read_ns: int
    data: bytes


def _run(log: BuildLog, chunks: list[Chunk]) -> None:
    feed = log.feed()
    feed(chunks)
    feed([Chunk("stdout", chunks[-1].read_ns, b""), Chunk("stderr", chunks[-1].read_ns, b"")])
    log.spill(force=True)


@pytest.mark.parametrize(
    "ident",
    [
        DeploymentRef(deployment_id="dep-1", job_id=7, service_id="svc", owner_id="own"),
        DeploymentRef(deployment_id="dep-%d-%b", job_id=9_182_736_455_463_728, service_id="%s", owner_id='"q"'),
    ],
)
def test_each_payload_is_byte_for_byte_the_encoded_struct(ident: DeploymentRef) -> None:
    # catches: a payload template that drifts from the contract's encoding (field order, escaping,
    # a "%" in an id, an id equal to a template stand-in), a sequence numbered twice or skipped
    sink = Sink()
    shown: list[LogLine] = []
    log = BuildLog(sink, ident, echo=shown.append, phase="build")
    text = 'plain\n"quoted" \\ back\n\ttab \x01 ctl \u00e9 \U0001f600\n%d %s %b 100%\n\nlast'.encode()
    _run(log, [Chunk("stdout", 1_700_000_000_123_000_000, text), Chunk("stderr", 1_700_000_000_124_000_000, b"e\n")])
    assert len(sink.events) == 7
    for i, (ev, line) in enumerate(zip(sink.events, shown, strict=True), 1):
        assert line.sequence == i
        expected = ident.log_line(line.output, line.content, timestamp=line.timestamp_ms, sequence=i, phase="build")
        assert ev.data == c.encode_payload(expected)
        assert ev.subject == "build.log." + ident.deployment_id and ev.kind is c.EventKind.BUILD_LOG
        assert len(ev.msg_id) == 32 and int(ev.msg_id, 16) >= 0
    assert len({ev.msg_id for ev in sink.events}) == 7
    assert [line.content for line in shown] == [
        "plain\n",
        '"quoted" \\ back\n',
        "\ttab \x01 ctl \u00e9 \U0001f600\n",
        "%d %s %b 100%\n",
        "\n",
        "e\n",
        "last",
    ]


@pytest.mark.parametrize(
    "secrets",
    [["S3CR3T-one", "S3CR3T-one-longer"], ["multi\nline-secret", "other-secret"], ["line-secret\r\nnext"]],
)
def test_a_chunk_is_redacted_as_its_lines_would_be_one_by_one(secrets: list[str]) -> None:
    # catches: a chunk-wide redaction that masks across a line break (a multi-line secret would merge
    # two lines into one), or that cuts a secret differently from the line-by-line path
    body = (
        "a S3CR3T-one b S3CR3T-one-longer c\n"
        "multi\nline-secret on its own lines\n"
        "x other-secretother-secret y\n"
        "line-secret\r\nnext\n"
        "nothing here\n"
    )
    one_by_one = Redactor(secrets)
    expected = [one_by_one.redact(line) for line in body.splitlines(keepends=True)]
    sink = Sink()
    shown: list[LogLine] = []
    log = BuildLog(sink, DeploymentRef(deployment_id="d", job_id=1), redactor=Redactor(secrets), echo=shown.append)
    _run(log, [Chunk("stdout", 1, body.encode())])
    assert [line.content for line in shown] == [line for line in expected]
    assert [line.sequence for line in shown] == list(range(1, len(expected) + 1))
    assert all(s not in ev.data.decode() for ev in sink.events for s in secrets)
