"""Tests of ``cloudstation.events.schema``: the JSON Schema and AsyncAPI renderings of the wire contract.

The ``jsonschema`` package is not a dependency, so a small checker for the subset the documents use
(type, properties, required, additionalProperties, enum, const) lives here; it refuses any other
validation keyword, so it can never pass a schema it does not understand. Its ``integer`` is msgspec's
(a JSON number written without a fraction), stricter than JSON Schema's, which also accepts ``42.0``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any, get_args

import pytest

import cloudstation
from cloudstation.errors import ContractError, UsageError
from cloudstation.events import contract
from cloudstation.events.contract import EventKind
from cloudstation.events.schema import render
from cloudstation.vocabulary import DEPLOYMENT_TYPES, DESTROY_REASONS, PHASES

# --- a checker for the JSON Schema subset in use -------------------------------------------------------

_ANNOTATIONS = frozenset({"$schema", "$defs", "title", "description", "examples", "$comment"})
_VALIDATORS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "enum",
        "const",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
    }
)


def _type_ok(value: Any, name: str) -> bool:
    match name:
        case "object":
            return isinstance(value, dict)
        case "array":
            return isinstance(value, list)
        case "string":
            return isinstance(value, str)
        case "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        case "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        case "boolean":
            return isinstance(value, bool)
        case "null":
            return value is None
    raise AssertionError(f"unknown JSON Schema type {name!r}")


def schema_errors(schema: dict[str, Any], value: Any, path: str = "$") -> list[str]:
    """Every way ``value`` violates ``schema`` (empty when it is valid)."""
    unknown = set(schema) - _ANNOTATIONS - _VALIDATORS
    assert not unknown, f"checker does not support {sorted(unknown)} at {path}"
    errors: list[str] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(value, t) for t in types):
            return [f"{path}: {value!r} is not of type {types}"]
    if "enum" in schema and not any(_same(value, e) for e in schema["enum"]):
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if "const" in schema and not _same(value, schema["const"]):
        errors.append(f"{path}: {value!r} is not {schema['const']!r}")
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: {value!r} is below {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{path}: {value!r} is above {schema['maximum']}")
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(f"{path}: shorter than {schema['minLength']} characters")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(f"{path}: longer than {schema['maxLength']} characters")
    if isinstance(value, dict):
        props: dict[str, Any] = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{path}: missing required property {name!r}")
        for name, item in value.items():
            if name in props:
                errors.extend(schema_errors(props[name], item, f"{path}.{name}"))
            elif schema.get("additionalProperties", True) is False:
                errors.append(f"{path}: additional property {name!r}")
    return errors


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``1`` and ``True`` differ."""
    return type(a) is type(b) and a == b


def test_checker_itself() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "s": {"type": "string", "enum": ["a"]}},
        "required": ["n", "s"],
        "additionalProperties": False,
    }
    assert schema_errors(schema, {"n": 1, "s": "a"}) == []
    assert schema_errors(schema, {"n": True, "s": "a"})
    assert schema_errors(schema, {"n": 1.5, "s": "a"})
    assert schema_errors(schema, {"n": 1, "s": "b"})
    assert schema_errors(schema, {"n": 1})
    assert schema_errors(schema, {"n": 1, "s": "a", "x": 0})
    assert schema_errors(schema, [])
    bounded = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 9}, "s": {"type": "string", "maxLength": 2}},
    }
    assert schema_errors(bounded, {"n": 9, "s": "ab"}) == []
    assert schema_errors(bounded, {"n": 10})
    assert schema_errors(bounded, {"n": -1})
    assert schema_errors(bounded, {"s": "abc"})
    with pytest.raises(AssertionError, match="does not support"):
        schema_errors({"pattern": "x"}, "x")


# --- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def json_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(render("jsonschema"))
    return doc


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(render("asyncapi"))
    return doc


def _examples() -> Iterator[tuple[EventKind, contract.Payload]]:
    """Valid payloads of every kind, covering every enum value, built with the contract's Structs."""
    for status in get_args(contract.DeploymentStatus):
        yield EventKind.STATUS_CHANGED, contract.StatusChanged(job_id=42, status=status)
    for kind in (EventKind.SUCCEEDED, EventKind.FAILED):
        for dtype in DEPLOYMENT_TYPES:
            yield (
                kind,
                contract.DeploymentResult(
                    job_id=42,
                    type=dtype,
                    deployment_id="dep-1",
                    service_id="svc-1",
                    team_id="team-1",
                    user_id="",
                    owner_id="owner-1",
                ),
            )
    for reason in (*DESTROY_REASONS, "archive"):
        yield EventKind.JOB_DESTROYED, contract.JobDestroyed(id="svc-1", reason=reason)
    for output in get_args(contract.LogOutput):
        for seq, phase in enumerate(PHASES, 1):
            yield (
                EventKind.BUILD_LOG,
                contract.BuildLog(
                    deployment_id="dep-1",
                    job_id=42,
                    service_id="svc-1",
                    owner_id="owner-1",
                    log_output=output,
                    content=f'step {seq} ünïcode "quoted"\n',
                    timestamp=1_718_000_000_000 + seq,
                    sequence=seq,
                    phase=phase,
                ),
            )
    for end in get_args(contract.LogEndStatus):
        yield EventKind.BUILD_LOG_END, contract.BuildLogEnd(deployment_id="dep-1", job_id=42, status=end)


EXAMPLES = list(_examples())


def _wire(payload: contract.Payload) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(contract.encode_payload(payload))
    return doc


def _rejected_by_contract(kind: EventKind, doc: Any) -> bool:
    try:
        contract.decode_payload(kind, json.dumps(doc))
    except ContractError:
        return True
    return False


# --- (1) valid payloads validate ---------------------------------------------------------------------------


def test_examples_cover_every_kind() -> None:
    assert {kind for kind, _ in EXAMPLES} == set(EventKind)


@pytest.mark.parametrize(("kind", "payload"), EXAMPLES, ids=[k.value for k, _ in EXAMPLES])
def test_encoded_payload_validates(json_doc: dict[str, Any], kind: EventKind, payload: contract.Payload) -> None:
    assert schema_errors(json_doc["$defs"][kind.value], _wire(payload)) == []


# --- (2) mutated payloads are rejected ---------------------------------------------------------------------


def _wrong_values(value: Any) -> list[Any]:
    if isinstance(value, bool):
        raise AssertionError("no boolean fields in the contract")
    if isinstance(value, int):
        return [str(value), float(value) + 0.5, True, None, [value], {"v": value}]
    assert isinstance(value, str)
    return [1, 0.5, False, None, [value], {"v": value}, "__not_in_any_enum__"]


def _mutations(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool | None]]:
    """(label, mutated payload, must be rejected); ``None`` when only the verdicts must agree."""
    for name, value in doc.items():
        yield f"missing {name}", {k: v for k, v in doc.items() if k != name}, True
        for wrong in _wrong_values(value):
            # Another string is still valid for a free-form string field; invalid for an enum.
            must_reject = None if wrong == "__not_in_any_enum__" else True
            yield f"{name}={wrong!r}", {**doc, name: wrong}, must_reject
    yield "extra field", {**doc, "extra": "x"}, True
    yield "snake_case alias", {**doc, "job_id": 1}, True


@pytest.mark.parametrize(("kind", "payload"), EXAMPLES, ids=[k.value for k, _ in EXAMPLES])
def test_mutated_payload_rejected(json_doc: dict[str, Any], kind: EventKind, payload: contract.Payload) -> None:
    schema = json_doc["$defs"][kind.value]
    for label, mutated, must_reject in _mutations(_wire(payload)):
        schema_rejects = bool(schema_errors(schema, mutated))
        contract_rejects = _rejected_by_contract(kind, mutated)
        assert schema_rejects == contract_rejects, f"schema and contract disagree on {label}: {mutated}"
        if must_reject:
            assert schema_rejects, f"schema accepted {label}: {mutated}"


def test_enum_mutation_rejected(json_doc: dict[str, Any]) -> None:
    enum_fields = 0
    for kind, payload in EXAMPLES:
        schema = json_doc["$defs"][kind.value]
        for name, prop in schema["properties"].items():
            if "enum" in prop:
                enum_fields += 1
                assert schema_errors(schema, {**_wire(payload), name: "__not_in_any_enum__"}), f"{kind}.{name}"
    assert enum_fields > 0


def test_not_an_object_rejected(json_doc: dict[str, Any]) -> None:
    for kind in EventKind:
        not_objects: list[Any] = [[], "x", 1, None]
        for doc in not_objects:
            assert schema_errors(json_doc["$defs"][kind.value], doc)


# --- JSON Schema document shape ----------------------------------------------------------------------------


def test_json_schema_document_shape(json_doc: dict[str, Any]) -> None:
    assert json_doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert list(json_doc["$defs"]) == [k.value for k in EventKind]
    for kind in EventKind:
        schema = json_doc["$defs"][kind.value]
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False
        assert schema["required"] == list(schema["properties"]), kind
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{kind.value}.{name} has no description"
            assert "$ref" not in prop
    build_log = json_doc["$defs"]["build.log"]["properties"]
    assert "deploymentJobId" in build_log["jobId"]["description"]
    assert "Unix milli" in build_log["timestamp"]["description"]
    assert "from 1" in build_log["sequence"]["description"] or "at 1" in build_log["sequence"]["description"]
    assert "\\n" in build_log["content"]["description"]
    assert build_log["phase"]["examples"] == list(PHASES)


def test_render_is_stable_and_pretty() -> None:
    for fmt in ("jsonschema", "asyncapi"):
        text = render(fmt)
        assert text == render(fmt)
        assert text.startswith("{\n  ")
        assert json.dumps(json.loads(text), indent=2, ensure_ascii=False) == text


def test_unknown_format() -> None:
    with pytest.raises(UsageError, match="yaml"):
        render("yaml")


# --- (3) AsyncAPI ------------------------------------------------------------------------------------------


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"$ref {ref!r} points outside the document"
    node: Any = doc
    for raw in ref[2:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and token in node, f"$ref {ref!r} does not resolve"
        node = node[token]
    return node


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                assert isinstance(value, str)
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _deref(doc: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = _resolve(doc, node["$ref"])
    return node


def test_asyncapi_header(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    assert asyncapi["info"]["version"] == cloudstation.__version__
    assert asyncapi["info"]["title"]
    assert "<NATS_STREAM_PREFIX>." in asyncapi["info"]["description"]


def test_asyncapi_every_ref_resolves(asyncapi: dict[str, Any]) -> None:
    refs = list(_refs(asyncapi))
    assert len(refs) > 20
    for ref in refs:
        _resolve(asyncapi, ref)


def test_asyncapi_channel_per_kind(asyncapi: dict[str, Any]) -> None:
    channels = asyncapi["channels"]
    expected = {
        "deployment.status.changed",
        "deployment.succeeded",
        "deployment.failed",
        "job.destroyed",
        "build.log.{deploymentId}",
        "build.log.end.{deploymentId}",
    }
    addresses = {ch["address"] for ch in channels.values()}
    assert addresses == expected
    assert len(channels) == len(EventKind)
    for kind in EventKind:
        [channel] = [ch for ch in channels.values() if ch["address"].removesuffix(".{deploymentId}") == kind.value]
        if kind.per_deployment_subject:
            assert channel["address"].endswith(".{deploymentId}")
            assert set(channel["parameters"]) == {"deploymentId"}
            assert _deref(asyncapi, channel["parameters"]["deploymentId"])["description"]
            # The address with the parameter filled in is the subject the contract publishes on.
            subject = channel["address"].replace("{deploymentId}", "dep-1")
            assert subject == contract.subject_for(kind, deployment_id="dep-1")
        else:
            assert "parameters" not in channel
            assert channel["address"] == contract.subject_for(kind)
        [message] = [_deref(asyncapi, m) for m in channel["messages"].values()]
        assert message["name"] == kind.value
        payload = _deref(asyncapi, message["payload"])
        assert set(payload["properties"]) == set(contract.PAYLOAD_TYPES[kind].__struct_encode_fields__)


def test_asyncapi_operations(asyncapi: dict[str, Any]) -> None:
    operations = asyncapi["operations"]
    assert len(operations) == len(asyncapi["channels"])
    used: set[str] = set()
    for name, op in operations.items():
        assert op["action"] == "send", name
        channel_ref = op["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/")
        channel_key = channel_ref.removeprefix("#/channels/")
        assert channel_key in asyncapi["channels"], name
        used.add(channel_key)
        assert op["messages"], name
        for m in op["messages"]:
            # AsyncAPI 3: an operation's messages must be messages of its channel.
            assert m["$ref"].startswith(f"{channel_ref}/messages/"), (name, m)
            assert _deref(asyncapi, m)["payload"]
    assert used == set(asyncapi["channels"])


def test_asyncapi_headers(asyncapi: dict[str, Any]) -> None:
    for channel in asyncapi["channels"].values():
        for m in channel["messages"].values():
            message = _deref(asyncapi, m)
            headers = _deref(asyncapi, message["headers"])
            assert headers["type"] == "object"
            assert set(headers["properties"]) == {
                contract.HEADER_MSG_ID,
                contract.HEADER_KIND,
                contract.HEADER_DEPLOYMENT,
            }
            assert contract.HEADER_MSG_ID in headers["required"]
            kind = EventKind(message["name"])
            assert headers["properties"][contract.HEADER_KIND]["const"] == kind.value
            # What the contract actually sends satisfies the headers schema.
            example = next(p for k, p in EXAMPLES if k is kind)
            for dep in ("dep-1", ""):
                event = contract.make_event(kind, example, deployment_id=dep)
                assert schema_errors(headers, event.headers()) == [], (kind, dep)


def test_asyncapi_payloads_match_json_schema(asyncapi: dict[str, Any], json_doc: dict[str, Any]) -> None:
    for channel in asyncapi["channels"].values():
        for m in channel["messages"].values():
            message = _deref(asyncapi, m)
            payload = _deref(asyncapi, message["payload"])
            expected = json_doc["$defs"][message["name"]]
            assert payload["properties"] == expected["properties"]
            assert payload["required"] == expected["required"]
            assert payload["additionalProperties"] is False


# --- (4) golden table: ORIGINAL.md §3 ----------------------------------------------------------------------

# Written by hand from ORIGINAL.md §3, not from the code: field name -> JSON type or the enum's values.
GOLDEN: dict[str, dict[str, str | set[str]]] = {
    "deployment.status.changed": {"jobId": "integer", "status": {"IN_PROGRESS", "SUCCEEDED", "FAILED"}},
    "deployment.succeeded": {
        "jobId": "integer",
        "type": {"git_repo", "image"},
        "deploymentId": "string",
        "serviceId": "string",
        "teamId": "string",
        "userId": "string",
        "ownerId": "string",
    },
    "job.destroyed": {
        "id": "string",
        # ORIGINAL.md lists five reasons, but the original passed any non-empty reason through (issue 10):
        # the known ones are the schema's examples.
        "reason": "string",
    },
    "build.log": {
        "deploymentId": "string",
        "jobId": "integer",
        "serviceId": "string",
        "ownerId": "string",
        "logOutput": {"stdout", "stderr"},
        "content": "string",
        "timestamp": "integer",
        "sequence": "integer",
        "phase": "string",
    },
    "build.log.end": {"deploymentId": "string", "jobId": "integer", "status": {"success", "failed"}},
}
GOLDEN["deployment.failed"] = GOLDEN["deployment.succeeded"]  # "same fields as succeeded"


def test_golden_fields_and_types(json_doc: dict[str, Any]) -> None:
    assert set(GOLDEN) == {k.value for k in EventKind} == set(json_doc["$defs"])
    for kind, fields in GOLDEN.items():
        schema = json_doc["$defs"][kind]
        assert list(schema["properties"]) == list(fields), f"{kind}: field names or order differ"
        assert set(schema["required"]) == set(fields), kind
        for name, expected in fields.items():
            prop = schema["properties"][name]
            if isinstance(expected, set):
                assert prop["type"] == "string", f"{kind}.{name}"
                assert set(prop["enum"]) == expected, f"{kind}.{name}"
            else:
                assert prop["type"] == expected, f"{kind}.{name}"
                assert "enum" not in prop, f"{kind}.{name}"


# --- the CLI -----------------------------------------------------------------------------------------------


def test_cli_prints_asyncapi() -> None:
    cs = os.path.join(os.path.dirname(sys.executable), "cs")
    proc = subprocess.run(
        [cs, "events", "schema", "--format", "asyncapi"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["asyncapi"] == "3.0.0"
    assert proc.stdout.rstrip("\n") == render("asyncapi")
