"""The projector's OpenAPI 3.1 document: every route it serves, what each takes and
what each answers, 401s included (schemathesis checks the live server against it).

Response schemas are plain JSON Schema (2020-12, as OpenAPI 3.1 takes); the
execution state's comes from its model. Kept apart from the handlers so
``api`` and ``web`` stay about answering.
"""

from __future__ import annotations

from typing import Any

from ricochet.engine import Status
from ricochet.workers.read.api import MAX_LIMIT
from ricochet.workers.read.store import STATE
from ricochet.workers.read.web import MAX_PAGE

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
TEXT = {"schema": {"type": "string"}}
SINCE = {
    "type": "string",
    "description": (
        "An interval back from now (a number and one of s, m, h, D) or an ISO time (UTC when"
        " naive). One before year 1 or after 9999 in UTC is refused with 400."
    ),
}


def _parameter(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _execution_id() -> dict[str, Any]:
    return {
        "name": "execution_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1},
    }


def _content(description: str, schema: str) -> dict[str, Any]:
    """A JSON response described by one of the document's component schemas."""
    reference = {"$ref": f"#/components/schemas/{schema}"}
    return {"description": description, "content": {"application/json": {"schema": reference}}}


def _text(description: str, *media: str) -> dict[str, Any]:
    return {"description": description, "content": {kind: TEXT for kind in media}}


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"anyOf": [{"type": kind, **extra}, {"type": "null"}]}


UNAUTHORIZED = {
    "description": (
        "A token is set and the request does not carry it: JSON, or (a page asked for by a"
        " browser) a page that asks for the token"
    ),
    "headers": {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
        "text/html": TEXT,
    },
}


def _get(summary: str, responses: dict[str, Any], **more: Any) -> dict[str, Any]:
    """A guarded GET: 401 without the token, when the projector has one."""
    return {"get": {"summary": summary, "responses": {**responses, "401": UNAUTHORIZED}, **more}}


def _component_schemas() -> dict[str, Any]:
    """Response schemas (plain JSON Schema, as OpenAPI 3.1 takes): the execution state as
    its model says, and the small bodies the handlers build."""
    state = STATE.json_schema(ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = state.pop("$defs", {})
    components["ExecutionState"] = state
    components["Summary"] = {
        "type": "object",
        "required": ["execution_id", "target", "status", "attempts", "requested_at", "ended_at"],
        "properties": {
            "execution_id": {"type": "string"},
            "target": _nullable("string"),
            "status": {"$ref": "#/components/schemas/Status"},
            "attempts": {"type": "integer", "minimum": 0},
            "requested_at": _nullable("string", format="date-time"),
            "ended_at": _nullable("string", format="date-time"),
        },
    }
    components["ExecutionList"] = {
        "type": "object",
        "required": ["executions"],
        "properties": {
            "executions": {"type": "array", "items": {"$ref": "#/components/schemas/Summary"}}
        },
    }
    components["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    }
    components["Health"] = {
        "type": "object",
        "required": ["status", "executions"],
        "properties": {
            "status": {"const": "ok"},
            "broker": {"type": "string"},
            "vhost": {"type": "string"},
            "namespace": {"type": "string"},
            "executions": {"type": "integer", "minimum": 0},
            "offset": _nullable("integer"),
            "unreadable": {"type": "integer", "minimum": 0},
        },
    }
    return components


def _filters() -> list[dict[str, Any]]:
    statuses = [s.value for s in Status]
    return [
        _parameter("status", ", ".join(statuses), {"type": "string", "enum": statuses}),
        _parameter("target", "Only this target", {"type": "string"}),
        _parameter("since", "Requested since: ISO time or interval (10m, 2h, 1D)", SINCE),
    ]


def _api_paths() -> dict[str, Any]:
    return {
        "/health": {
            "get": {
                "summary": (
                    "Liveness; the broker (no password), vhost and namespace folded;"
                    " folded offset, executions, unreadable messages skipped. Never asks"
                    " for the token."
                ),
                "security": [],
                "responses": {"200": _content("ok", "Health")},
            }
        },
        "/executions": _get(
            "Executions, newest first",
            {
                "200": _content("{executions: [summary]}", "ExecutionList"),
                "400": _content("{error: message}", "Error"),
            },
            parameters=[
                *_filters(),
                _parameter(
                    "limit",
                    f"At most this many (1-{MAX_LIMIT}, default 100)",
                    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                ),
            ],
        ),
        "/executions/{execution_id}": _get(
            "One execution with all its attempts",
            {
                "200": _content("the execution's state", "ExecutionState"),
                "404": _content("{error: message}", "Error"),
            },
            parameters=[_execution_id()],
        ),
        "/openapi.json": _get(
            "This document",
            {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
        ),
        "/metrics": _get(
            "Prometheus metrics (text exposition format)",
            {"200": _text("the metrics", "text/plain")},
        ),
    }


def _page_paths() -> dict[str, Any]:
    statuses = [s.value for s in Status]
    return {
        "/ui": _get(
            "The executions page (HTML), 50 a page",
            {"200": _text("the page", "text/html"), "400": _text("what is wrong", "text/plain")},
            parameters=[
                _parameter("status", "any, or one status", {"enum": ["", *statuses]}),
                *_filters()[1:],
                _parameter("until", "Requested until: ISO time ('' for none)", {"type": "string"}),
                _parameter(
                    "page", "Page number", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}
                ),
            ],
        ),
        "/ui/executions/{execution_id}": _get(
            "An execution's timeline page (HTML)",
            {
                "200": _text("the page", "text/html"),
                "404": _text("no such execution", "text/plain"),
            },
            parameters=[_execution_id()],
        ),
        "/ui/static/live.js": _get(
            "The pages' one script", {"200": _text("the script", "text/javascript")}
        ),
        "/ui/static/timeline.css": _get(
            "The pages' style sheet", {"200": _text("the style sheet", "text/css")}
        ),
        "/ui/session": _get(
            "Exchange the token (in the header) for the pages' session cookie",
            {"204": {"description": "the cookie is set (when a token is)"}},
        ),
    }


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Ricochet projector",
        "version": "1",
        "description": (
            "Read-only. When the projector has a token (RICOCHET_PROJECTOR_TOKEN), every"
            " operation but /health needs `Authorization: Bearer <token>`."
        ),
    },
    "security": BEARER,
    "paths": {**_api_paths(), **_page_paths()},
    "components": {
        "schemas": _component_schemas(),
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    },
}
