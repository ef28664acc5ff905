"""The door: an event that can never be delivered is refused before it is journaled."""

from __future__ import annotations

import dataclasses

import pytest

from cloudstation.errors import ContractError
from cloudstation.events.contract import EventKind, StatusChanged, make_event
from cloudstation.events.door import DEFAULT_MAX_PAYLOAD, MAX_SUBJECT_BYTES, admit

EVENT = make_event(EventKind.STATUS_CHANGED, StatusChanged(job_id=1, status="IN_PROGRESS"), deployment_id="d")


def test_a_deliverable_event_passes_unchanged() -> None:
    assert admit(EVENT, DEFAULT_MAX_PAYLOAD) is EVENT
    assert admit(EVENT, EVENT.wire_size()) is EVENT


def test_a_message_over_max_payload_is_refused() -> None:
    with pytest.raises(ContractError, match=r"message of \d+ bytes .* exceeds the server's max_payload"):
        admit(EVENT, EVENT.wire_size() - 1)


def test_a_subject_too_long_or_with_a_bad_token_is_refused() -> None:
    long = dataclasses.replace(EVENT, subject="p" * (MAX_SUBJECT_BYTES - len(EVENT.subject)) + "." + EVENT.subject)
    with pytest.raises(ContractError, match=f"longer than {MAX_SUBJECT_BYTES}"):
        admit(long, DEFAULT_MAX_PAYLOAD)
    with pytest.raises(ContractError, match="is not a valid NATS subject"):
        admit(dataclasses.replace(EVENT, subject="a..b"), DEFAULT_MAX_PAYLOAD)


def test_admit_all_refuses_what_admit_refuses_and_passes_the_rest() -> None:
    from cloudstation.events.contract import BuildLog
    from cloudstation.events.door import admit_all

    def line(content: str) -> object:
        payload = BuildLog(
            deployment_id="d",
            job_id=1,
            service_id="",
            owner_id="",
            log_output="stdout",
            content=content,
            timestamp=1,
            sequence=1,
            phase="build",
        )
        return make_event(EventKind.BUILD_LOG, payload)

    short, long = line("x"), line("x" * 500)
    assert isinstance(short, type(EVENT)) and isinstance(long, type(EVENT))
    limit = long.wire_size() - 1
    admit_all([EVENT, short, short, EVENT], limit)  # no error
    with pytest.raises(ContractError, match=r"message of \d+ bytes .* exceeds the server's max_payload"):
        admit_all([short, short, long], limit)  # the third differs only in its payload
    with pytest.raises(ContractError, match="is not a valid NATS subject"):
        admit_all([short, dataclasses.replace(short, subject="build.log..d")], DEFAULT_MAX_PAYLOAD)
