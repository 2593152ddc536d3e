"""JSON Schemas of the wire formats, for publishers and readers in other languages.

Pure: this builds the documents; ``ricochet schemas`` writes them to
``contracts/schemas/`` and the test suite fails when the files are stale.
"""

from __future__ import annotations

from typing import Any

from ricochet.contracts.events import BATCH_ADAPTER, EVENT_ADAPTER, EVENT_TYPES
from ricochet.contracts.trigger import TriggerV1
from ricochet.contracts.work import WorkMessage

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _type_string(model: type[Any]) -> str:
    return str(model.model_fields["type"].default)


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema, for every event type, the event union, work and trigger."""
    schemas: dict[str, dict[str, Any]] = {}
    for model in EVENT_TYPES:
        schemas[f"events/{_type_string(model)}.json"] = model.model_json_schema()
    schemas["events/event.json"] = EVENT_ADAPTER.json_schema()
    schemas["events/batch.json"] = BATCH_ADAPTER.json_schema()
    schemas["work.v1.json"] = WorkMessage.model_json_schema()
    schemas["trigger.v1.json"] = TriggerV1.model_json_schema()
    for name, schema in schemas.items():
        schema["$schema"] = SCHEMA_DIALECT
        schema["$id"] = f"ricochet:{name.removesuffix('.json')}"
    return schemas
