"""Machine-readable descriptions of the event wire contract, for consumers in other languages.

This module owns ``cs events schema``'s output: a JSON Schema (draft 2020-12) of every payload and an
AsyncAPI 3.0.0 document of every channel. Both are derived from the msgspec Structs and constants in
:mod:`cloudstation.events.contract` (the single source of truth), never written by hand; only the
human descriptions are added here. Output is deterministic: the same contract renders byte for byte
the same document.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Final

import msgspec

import cloudstation
from cloudstation.errors import UsageError
from cloudstation.events import contract
from cloudstation.events.contract import EventKind
from cloudstation.vocabulary import PHASES

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
ASYNCAPI_VERSION: Final = "3.0.0"
FORMATS: Final[tuple[str, ...]] = ("jsonschema", "asyncapi")

_PREFIX_NOTE: Final = (
    "When NATS_STREAM_PREFIX is set, every subject (channel address) gets `<NATS_STREAM_PREFIX>.` "
    "prepended, e.g. `acme.deployment.succeeded`, `acme.build.log.<deploymentId>`."
)

_KIND_DESCRIPTIONS: Final[dict[EventKind, str]] = {
    EventKind.STATUS_CHANGED: "A deployment changed status; IN_PROGRESS is the first event of every deployment.",
    EventKind.SUCCEEDED: "A deployment succeeded. Published once, after its log lines and before build.log.end.",
    EventKind.FAILED: "A deployment failed. Published once, after its log lines and before build.log.end.",
    EventKind.JOB_DESTROYED: "A service's job was destroyed.",
    EventKind.BUILD_LOG: "One line of a deployment's output, published on build.log.<deploymentId>.",
    EventKind.BUILD_LOG_END: (
        "A deployment's log is complete, published on build.log.end.<deploymentId>; "
        "it is the last event of the deployment."
    ),
}

_STRING_NOTE: Final = ' Never omitted: "" when unknown.'

# Field descriptions by wire name; ``_KIND_FIELD_DESCRIPTIONS`` overrides a name for one kind.
_FIELD_DESCRIPTIONS: Final[dict[str, str]] = {
    "jobId": (
        "The numeric deploymentJobId (the database id of the deployment job), not the Nomad job name (a string)."
    ),
    "deploymentId": "The deployment id; when not empty, one subject token (no '.', '*', '>' or white space).",
    "serviceId": "The service id." + _STRING_NOTE,
    "teamId": "The team id." + _STRING_NOTE,
    "userId": "The id of the user who started the deployment." + _STRING_NOTE,
    "ownerId": "The id of the service's owner." + _STRING_NOTE,
    "type": "What was deployed: a git repository or a container image.",
    "id": "The service id (serviceId) whose job was destroyed.",
    "reason": "Why the job was destroyed.",
    "logOutput": "The output stream the line was written to.",
    "content": 'Exactly one line of output, with its trailing "\\n".',
    "timestamp": "When the line was read, in Unix milliseconds.",
    "sequence": (
        "Position of the line in its deployment's log: one sequence per deployment "
        "(stdout and stderr together), starting at 1."
    ),
    "phase": "The deployment phase that produced the line.",
}
_KIND_FIELD_DESCRIPTIONS: Final[dict[tuple[EventKind, str], str]] = {
    (EventKind.STATUS_CHANGED, "status"): "The deployment's new status.",
    (EventKind.BUILD_LOG_END, "status"): "How the deployment ended.",
    **{
        (kind, "deploymentId"): (
            "The deployment id, also the subject's last token: not empty, no '.', '*', '>' or white space."
        )
        for kind in EventKind
        if kind.per_deployment_subject
    },
}
# Open sets documented by example rather than enforced (the contract types them as plain strings).
_FIELD_EXAMPLES: Final[dict[str, list[Any]]] = {
    "phase": list(PHASES),
    "timestamp": [1718000000000],
    "content": ["Step 1/7 : FROM python:3.11-slim\n"],
}

_HEADER_DESCRIPTIONS: Final[dict[str, str]] = {
    contract.HEADER_MSG_ID: (
        "JetStream de-duplication key: unique per event (128 random bits, hex) "
        "and kept unchanged when the event is retried."
    ),
    contract.HEADER_KIND: "The event kind (the subject without prefix or deployment id).",
    contract.HEADER_DEPLOYMENT: "The deployment the event belongs to; absent when there is none.",
}


def _message_id(kind: EventKind) -> str:
    """``deployment.status.changed`` -> ``deploymentStatusChanged`` (an AsyncAPI component key)."""
    first, *rest = kind.value.split(".")
    return first + "".join(word.capitalize() for word in rest)


def _address(kind: EventKind) -> str:
    return f"{kind.value}.{{deploymentId}}" if kind.per_deployment_subject else kind.value


def _struct_schemas() -> dict[str, dict[str, Any]]:
    """msgspec's JSON Schema of each payload Struct, by Struct name, with every ``$ref`` inlined."""
    types = list(dict.fromkeys(contract.PAYLOAD_TYPES.values()))
    _, components = msgspec.json.schema_components(types, ref_template="#/$defs/{name}")

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return {**inline(copy.deepcopy(components[ref.removeprefix("#/$defs/")])), **inline(rest)}
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return {t.__name__: inline(components[t.__name__]) for t in types}


def _property(kind: EventKind, name: str, raw: dict[str, Any]) -> dict[str, Any]:
    """One property schema in a fixed key order: type, enum, description, examples, then the rest."""
    out: dict[str, Any] = {}
    if "type" in raw:
        out["type"] = raw["type"]
    elif "enum" in raw and all(isinstance(v, str) for v in raw["enum"]):
        out["type"] = "string"
    if "enum" in raw:
        out["enum"] = raw["enum"]
    description = _KIND_FIELD_DESCRIPTIONS.get((kind, name)) or _FIELD_DESCRIPTIONS.get(name)
    if description:
        out["description"] = description
    if name in _FIELD_EXAMPLES:
        out["examples"] = _FIELD_EXAMPLES[name]
    for key, value in raw.items():
        if key not in out and key not in ("title", "description"):
            out[key] = value
    return out


def payload_schema(kind: EventKind, *, structs: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The JSON Schema of ``kind``'s payload (self-contained, without ``$schema``)."""
    structs = structs if structs is not None else _struct_schemas()
    struct = contract.PAYLOAD_TYPES[kind]
    raw = structs[struct.__name__]
    props = {name: _property(kind, name, sub) for name, sub in raw["properties"].items()}
    schema: dict[str, Any] = {
        "title": kind.value,
        "description": _KIND_DESCRIPTIONS.get(kind, kind.value),
        "type": "object",
        "properties": props,
        "required": list(raw.get("required", [])),
        "additionalProperties": raw.get("additionalProperties", True),
    }
    return schema


def json_schema_document() -> dict[str, Any]:
    """One draft 2020-12 document; the payload schema of each kind is ``#/$defs/<kind>``."""
    structs = _struct_schemas()
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": "CloudStation event payloads",
        "description": (
            f"cs {cloudstation.__version__}: the JSON payload of every event, keyed by event kind under "
            "$defs (e.g. #/$defs/deployment.succeeded). Field names and JSON types are exact; every field "
            "is required and no other field is allowed. " + _PREFIX_NOTE
        ),
        "$defs": {kind.value: payload_schema(kind, structs=structs) for kind in EventKind},
    }


def _headers_schema(kind: EventKind) -> dict[str, Any]:
    required = [contract.HEADER_MSG_ID, contract.HEADER_KIND]
    if kind.per_deployment_subject:  # the deployment id is in the subject, so always known
        required.append(contract.HEADER_DEPLOYMENT)
    return {
        "type": "object",
        "description": "NATS message headers.",
        "properties": {
            contract.HEADER_MSG_ID: {"type": "string", "description": _HEADER_DESCRIPTIONS[contract.HEADER_MSG_ID]},
            contract.HEADER_KIND: {
                "type": "string",
                "const": kind.value,
                "description": _HEADER_DESCRIPTIONS[contract.HEADER_KIND],
            },
            contract.HEADER_DEPLOYMENT: {
                "type": "string",
                "description": _HEADER_DESCRIPTIONS[contract.HEADER_DEPLOYMENT],
            },
        },
        "required": required,
    }


def asyncapi_document() -> dict[str, Any]:
    """An AsyncAPI 3.0.0 document: one channel, one ``send`` operation and one message per kind."""
    structs = _struct_schemas()
    kinds_by_struct: dict[str, list[EventKind]] = {}
    for kind in EventKind:
        kinds_by_struct.setdefault(contract.PAYLOAD_TYPES[kind].__name__, []).append(kind)
    schemas: dict[str, Any] = {}
    for name, kinds in kinds_by_struct.items():
        schema = payload_schema(kinds[0], structs=structs)
        if len(kinds) > 1:  # shared by several kinds: named after the Struct, not one of the kinds
            schema["title"] = name
            schema["description"] = "The payload of " + " and ".join(k.value for k in kinds) + "."
        schemas[name] = schema
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for kind in EventKind:
        mid = _message_id(kind)
        schemas[f"{mid}Headers"] = _headers_schema(kind)
        messages[mid] = {
            "name": kind.value,
            "title": kind.value,
            "summary": _KIND_DESCRIPTIONS.get(kind, kind.value),
            "contentType": "application/json",
            "headers": {"$ref": f"#/components/schemas/{mid}Headers"},
            "payload": {"$ref": f"#/components/schemas/{contract.PAYLOAD_TYPES[kind].__name__}"},
        }
        channel: dict[str, Any] = {
            "address": _address(kind),
            "title": kind.value,
            "description": _KIND_DESCRIPTIONS.get(kind, kind.value),
            "messages": {mid: {"$ref": f"#/components/messages/{mid}"}},
        }
        if kind.per_deployment_subject:
            channel["parameters"] = {"deploymentId": {"$ref": "#/components/parameters/deploymentId"}}
        channels[mid] = channel
        operations[f"send{mid[0].upper()}{mid[1:]}"] = {
            "action": "send",
            "title": f"Publish {kind.value}",
            "channel": {"$ref": f"#/channels/{mid}"},
            "messages": [{"$ref": f"#/channels/{mid}/messages/{mid}"}],
        }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "CloudStation deployment events",
            "version": cloudstation.__version__,
            "description": (
                "Events cs publishes to NATS JetStream for the CloudStation backend. " + _PREFIX_NOTE + " "
                "Per deployment the order is: deployment.status.changed IN_PROGRESS; build.log lines; "
                "exactly one of deployment.succeeded / deployment.failed; build.log.end."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "parameters": {
                "deploymentId": {
                    "description": (
                        "The deployment id: one subject token, non-empty, without '.', '*', '>' or white space."
                    ),
                },
            },
        },
    }


def render(fmt: str) -> str:
    """The contract as pretty-printed JSON: ``"jsonschema"`` or ``"asyncapi"``."""
    if fmt == "jsonschema":
        doc = json_schema_document()
    elif fmt == "asyncapi":
        doc = asyncapi_document()
    else:
        raise UsageError(f"unknown schema format {fmt!r} (known: {', '.join(FORMATS)})")
    return json.dumps(doc, indent=2, ensure_ascii=False)


__all__ = ["FORMATS", "asyncapi_document", "json_schema_document", "payload_schema", "render"]
