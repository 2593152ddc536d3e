"""JSON Schemas of the wire formats, for publishers and readers in other languages.

Pure: this builds the documents; ``ricochet schemas`` writes them to
``contracts/schemas/`` and the test suite fails when the files are stale.

Only JSON Schema 2020-12 vocabulary is written, so any validator takes them
(ajv in strict mode among them): pydantic's OpenAPI ``discriminator`` is taken
out (each event's ``type`` is a required ``const``, so a plain ``oneOf``
already picks exactly one), and every version of an event that may still be on
a log ships, in the union too, because readers of older logs meet them.
"""

from __future__ import annotations

import copy
from typing import Any

from ricochet.contracts.events import BATCH_ADAPTER, EVENT_ADAPTER, EVENT_TYPES
from ricochet.contracts.reply import ReplyV1
from ricochet.contracts.trigger import TriggerV1
from ricochet.contracts.work import WorkMessage

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

Schema = dict[str, Any]

OLDER_VERSIONS: dict[str, tuple[str, str, str]] = {
    "execution_requested.v1": ("ExecutionRequested", "ExecutionRequestedV1", "rerun_of"),
    "attempt_started.v1": ("AttemptStarted", "AttemptStartedV1", "claim"),
}
"""Old type -> (current model's $defs name, its own name, the field it did not have yet)."""


def _type_string(model: type[Any]) -> str:
    return str(model.model_fields["type"].default)


def json_schemas() -> dict[str, Schema]:
    """File name -> schema, for every event type and version, the event union, the batch,
    work, trigger and reply."""
    schemas: dict[str, Schema] = {}
    for model in EVENT_TYPES:
        schemas[f"events/{_type_string(model)}.json"] = model.model_json_schema()
    for old_type, (current, _, dropped) in OLDER_VERSIONS.items():
        schemas[f"events/{old_type}.json"] = _older(
            schemas[f"events/{_type_string_of(current)}.json"], old_type, dropped
        )
    schemas["events/event.json"] = _with_older_in_union(EVENT_ADAPTER.json_schema())
    schemas["events/batch.json"] = _with_older_in_union(BATCH_ADAPTER.json_schema())
    schemas["work.v1.json"] = WorkMessage.model_json_schema()
    schemas["trigger.v1.json"] = TriggerV1.model_json_schema()
    schemas["reply.v1.json"] = ReplyV1.model_json_schema()
    for name, schema in schemas.items():
        _plain_json_schema(schema)
        schema["$schema"] = SCHEMA_DIALECT
        schema["$id"] = f"ricochet:{name.removesuffix('.json')}"
    return schemas


def _type_string_of(defs_name: str) -> str:
    return next(_type_string(m) for m in EVENT_TYPES if m.__name__ == defs_name)


def _older(current: Schema, old_type: str, dropped: str) -> Schema:
    """The schema of ``old_type``: the current version without the field it added."""
    schema = copy.deepcopy(current)
    _drop_version(schema, old_type, dropped)
    schema["title"] = f"{schema['title']} ({old_type})"
    return schema


def _drop_version(schema: Schema, old_type: str, dropped: str) -> None:
    schema["properties"].pop(dropped, None)
    schema["properties"]["type"] = {"const": old_type, "title": "Type", "type": "string"}
    schema["required"] = [name for name in schema.get("required", []) if name != dropped]


def _with_older_in_union(schema: Schema) -> Schema:
    """Add the older versions to the union's ``oneOf`` (of the event, or of a batch's items)."""
    union = schema.get("items", schema)
    defs = schema["$defs"]
    for old_type, (current, name, dropped) in OLDER_VERSIONS.items():
        defs[name] = copy.deepcopy(defs[current])
        _drop_version(defs[name], old_type, dropped)
        defs[name]["title"] = name
        union["oneOf"].append({"$ref": f"#/$defs/{name}"})
    return schema


def _plain_json_schema(node: Any) -> None:
    """In place: no ``discriminator`` (OpenAPI, not JSON Schema), and a ``type`` that is a
    ``const`` is required (every event and message carries it; a validator should know)."""
    if isinstance(node, list):
        for item in node:
            _plain_json_schema(item)
        return
    if not isinstance(node, dict):
        return
    node.pop("discriminator", None)
    kind = node.get("properties", {}).get("type")
    if isinstance(kind, dict) and "const" in kind:
        required = node.setdefault("required", [])
        if "type" not in required:
            required.append("type")
    for value in node.values():
        _plain_json_schema(value)
