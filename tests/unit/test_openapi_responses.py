"""The projector's ``/openapi.json`` describes its responses (issue 14), in plain JSON Schema."""

from __future__ import annotations

from typing import Any

from ricochet.engine import ExecutionState, Status
from ricochet.workers.read.api import summary
from ricochet.workers.read.openapi import OPENAPI
from tests.unit.test_portable_contract import keywords_outside_vocabulary


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in references(value)]
    return []


def test_every_response_with_a_body_has_a_schema() -> None:
    """Every body the projector answers with is described (JSON ones by their shape);
    only the document itself is left as any JSON, and 204 has no body."""
    for path, item in OPENAPI["paths"].items():
        for code, response in item["get"]["responses"].items():
            if (path == "/openapi.json" and code == "200") or code == "204":
                continue
            assert response["content"], (path, code)
            for media, content in response["content"].items():
                assert "schema" in content, (path, code, media)


def test_every_reference_resolves_and_only_2020_12_keywords_are_used() -> None:
    components = OPENAPI["components"]["schemas"]
    for ref in references(OPENAPI):
        assert ref.removeprefix("#/components/schemas/") in components, ref
    for name, schema in components.items():
        assert [] == keywords_outside_vocabulary(schema, name)


def test_the_summary_schema_names_what_a_summary_holds() -> None:
    state = ExecutionState("e1", status=Status.PENDING, target="t.ok")
    expected = set(OPENAPI["components"]["schemas"]["Summary"]["properties"])
    assert expected == set(summary(state))
