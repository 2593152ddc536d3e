"""The contract other languages see (issue 14): plain JSON Schema 2020-12, and strict parsing.

Any validator must take the shipped schemas (ajv in strict mode refuses an unknown
keyword), and what Ricochet accepts must be what the schema allows: no coercion
the schema does not allow, at any way in.
"""

from __future__ import annotations

from typing import Any

import pytest

from ricochet.contracts import EVENT_TYPES, TriggerV1, WorkMessage, decode
from ricochet.contracts.schemas import json_schemas
from ricochet.contracts.upcasting import UPCASTERS
from ricochet.errors import DecodeError


def words(*lines: str) -> frozenset[str]:
    return frozenset(" ".join(lines).split())


VOCABULARY_2020_12 = words(
    # core
    "$schema $id $ref $anchor $dynamicRef $dynamicAnchor $vocabulary $comment $defs",
    # applicator
    "prefixItems items contains additionalProperties properties patternProperties",
    "dependentSchemas propertyNames if then else allOf anyOf oneOf not",
    # unevaluated
    "unevaluatedItems unevaluatedProperties",
    # validation
    "type const enum multipleOf maximum exclusiveMaximum minimum exclusiveMinimum",
    "maxLength minLength pattern maxItems minItems uniqueItems maxContains minContains",
    "maxProperties minProperties required dependentRequired",
    # meta-data, format annotation, content
    "title description default deprecated readOnly writeOnly examples format",
    "contentEncoding contentMediaType contentSchema",
)
SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
ONE_SCHEMA = [
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
]
SCHEMA_LISTS = ("prefixItems", "allOf", "anyOf", "oneOf")


def keywords_outside_vocabulary(schema: Any, where: str = "#") -> list[str]:
    """Every keyword, at any depth where a schema stands, that 2020-12 does not define."""
    if isinstance(schema, bool):
        return []
    assert isinstance(schema, dict), f"{where}: a schema is an object or a boolean"
    found = [f"{where}/{key}" for key in schema if key not in VOCABULARY_2020_12]
    for key in SCHEMA_MAPS:
        for name, sub in schema.get(key, {}).items():
            found += keywords_outside_vocabulary(sub, f"{where}/{key}/{name}")
    for key in ONE_SCHEMA:
        if key in schema:
            found += keywords_outside_vocabulary(schema[key], f"{where}/{key}")
    for key in SCHEMA_LISTS:
        for index, sub in enumerate(schema.get(key, [])):
            found += keywords_outside_vocabulary(sub, f"{where}/{key}/{index}")
    return found


@pytest.mark.parametrize("name", sorted(json_schemas()))
def test_every_schema_uses_only_json_schema_2020_12_keywords(name: str) -> None:
    """No OpenAPI ``discriminator`` or any other keyword a strict validator refuses."""
    # Given a shipped schema
    schema = json_schemas()[name]
    # When its keywords are checked against the 2020-12 vocabulary
    actual = keywords_outside_vocabulary(schema)
    # Then there is none outside it
    assert actual == []


def test_the_vocabulary_check_finds_a_discriminator() -> None:
    """The check above would catch what ajv's strict mode refused on main."""
    schema = {"oneOf": [{"$ref": "#/$defs/A"}], "discriminator": {"propertyName": "type"}}
    assert keywords_outside_vocabulary(schema) == ["#/discriminator"]


def object_schemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [schema, *schema.get("$defs", {}).values()]


@pytest.mark.parametrize("name", sorted(json_schemas()))
def test_type_is_required_wherever_it_is_a_const(name: str) -> None:
    """Every event (and work and reply message) carries its ``type``; the schema says so."""
    for schema in object_schemas(json_schemas()[name]):
        kind = schema.get("properties", {}).get("type")
        if isinstance(kind, dict) and "const" in kind:
            assert "type" in schema["required"], schema.get("title")


def test_every_event_version_that_can_be_on_a_log_ships() -> None:
    """v1 and v2 of ``execution_requested`` and ``attempt_started``, and every current type,
    as files and in the union a reader validates a stream message's events with."""
    current = {str(model.model_fields["type"].default) for model in EVENT_TYPES}
    expected = current | set(UPCASTERS)
    schemas = json_schemas()
    files = {name.removeprefix("events/").removesuffix(".json") for name in schemas}
    in_union = {
        d["properties"]["type"].get("const")
        for d in schemas["events/event.json"]["$defs"].values()
        if "type" in d.get("properties", {})
    }
    assert expected <= files
    assert expected <= in_union


@pytest.mark.parametrize(
    "body",
    [
        b'{"target": "t.x", "version": true}',
        b'{"target": "t.x", "version": 1.0}',
        b'{"target": "t.x", "version": "1"}',
        b'{"target": "t.x", "args": [NaN]}',
        b'{"target": "t.x", "kwargs": {"n": 18446744073709551616}}',
        b'{"target": ""}',
    ],
)
def test_a_trigger_takes_no_coercion_the_schema_does_not_allow(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(TriggerV1, body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"execution_id": "e", "target": "t.x", "kwargs": {"n": NaN}}',
        b'{"execution_id": "e", "target": "t.x", "args": [Infinity]}',
        b'{"execution_id": "e", "target": "t.x", "args": [18446744073709551616]}',
        b'{"execution_id": "e", "target": "t.x", "args": [-9223372036854775809]}',
        b'{"execution_id": 7, "target": "t.x"}',
    ],
)
def test_a_work_message_refuses_what_a_trigger_refuses(body: bytes) -> None:
    """NaN and integers past 64 bits are refused on arrival, not found when the result
    cannot be written."""
    with pytest.raises(DecodeError):
        decode(WorkMessage, body)


@pytest.mark.parametrize("model", [TriggerV1, WorkMessage])
def test_a_target_is_at_most_what_a_routing_key_carries(model: type[Any]) -> None:
    """255 bytes of UTF-8: 128 two-byte characters are too many though under 255 characters."""
    fits, too_long = "t" * 255, "é" * 128
    model(execution_id="e", target=fits) if model is WorkMessage else model(target=fits)
    with pytest.raises(ValueError, match="routing key holds 255"):
        model(execution_id="e", target=too_long) if model is WorkMessage else model(target=too_long)
    assert json_schemas()["trigger.v1.json"]["properties"]["target"]["maxLength"] == 255
