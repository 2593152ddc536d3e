"""The projector's read-only HTTP JSON API, described by the OpenAPI document it serves.

aiohttp is used because the projector is an asyncio process already and it is
the well-kept asyncio HTTP server; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from aiohttp import web

from ricochet.engine import ExecutionState, Projection, Status
from ricochet.errors import BadPosition, BadQuery
from ricochet.workers.log.replay import parse_position
from ricochet.workers.read.provenance import Provenance
from ricochet.workers.read.store import STATE

MAX_LIMIT = 1000


def summary(state: ExecutionState) -> dict[str, Any]:
    return {
        "execution_id": state.execution_id,
        "target": state.target,
        "status": state.status.value,
        "attempts": len(state.attempts),
        "requested_at": state.requested_at.isoformat() if state.requested_at else None,
        "ended_at": state.ended_at.isoformat() if state.ended_at else None,
    }


class States(Protocol):
    """Where the API reads states from: the projector's store (bounded memory), or a fold."""

    def get(self, execution_id: str) -> ExecutionState | None: ...

    def count(self) -> int: ...

    def matching(
        self, status: Status | None, target: str | None, since: datetime | None, limit: int
    ) -> list[ExecutionState]: ...


class Folded:
    """A fresh fold held in memory (``executions`` without a projector), seen as ``States``."""

    def __init__(self, projection: Projection) -> None:
        self._projection = projection

    def get(self, execution_id: str) -> ExecutionState | None:
        return self._projection.get(execution_id)

    def count(self) -> int:
        return len(self._projection.executions)

    def matching(
        self, status: Status | None, target: str | None, since: datetime | None, limit: int
    ) -> list[ExecutionState]:
        chosen = [
            s
            for s in self._projection.executions.values()
            if (status is None or s.status is status)
            and (target is None or s.target == target)
            and (since is None or (s.requested_at is not None and s.requested_at >= since))
        ]
        chosen.sort(key=lambda s: s.requested_at or datetime.min.replace(tzinfo=UTC), reverse=True)
        return chosen[:limit]


def states(source: Projection | States) -> States:
    return Folded(source) if isinstance(source, Projection) else source


@dataclass(frozen=True, slots=True)
class Query:
    """What ``/executions`` and ``ricochet executions`` were asked for, checked."""

    status: Status | None
    target: str | None
    since: datetime | None
    limit: int


def parse_query(query: dict[str, str], now: datetime) -> Query:
    """``status``, ``target``, ``since`` and ``limit`` checked; ``BadQuery`` says what is wrong."""
    unknown = set(query) - {"status", "target", "since", "limit"}
    if unknown:
        raise BadQuery(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    return Query(
        status=_status(query.get("status")),
        target=query.get("target"),
        since=_since(query.get("since"), now),
        limit=_limit(query.get("limit", "100")),
    )


def select(
    projection: Projection | States, query: dict[str, str], now: datetime
) -> list[ExecutionState]:
    """Executions matching ``status``, ``target`` and ``since``, newest first, up to ``limit``."""
    asked = parse_query(query, now)
    return states(projection).matching(asked.status, asked.target, asked.since, asked.limit)


def _status(value: str | None) -> Status | None:
    if value is None:
        return None
    try:
        return Status(value)
    except ValueError:
        choices = ", ".join(s.value for s in Status)
        raise BadQuery(f"status must be one of {choices}, not {value!r}") from None


def _since(value: str | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    try:
        moment = parse_position(value, now)
    except BadPosition as err:
        raise BadQuery(f"since: {err}") from None
    if not isinstance(moment, datetime):
        raise BadQuery(f"since must be a time or an interval like 1h, not {value!r}")
    return moment


def _limit(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise BadQuery(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {value!r}")
    return int(value)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def app(
    provenance: Provenance,
    projection: Callable[[], Projection | States],
    progress: Callable[[], dict[str, int | None]],
) -> web.Application:
    """The API over whatever projection the projector holds at the moment of each request.

    ``/health`` names the broker (no password), vhost and namespace folded, so a
    reader can tell this projector's answers are about the executions it means.
    """

    async def health(_: web.Request) -> web.Response:
        executions = states(projection()).count()
        where = provenance.as_dict()
        return _json({"status": "ok", **where, "executions": executions, **progress()})

    async def executions(request: web.Request) -> web.Response:
        try:
            chosen = select(projection(), dict(request.query), datetime.now(UTC))
        except BadQuery as err:
            return _json({"error": str(err)}, status=400)
        return _json({"executions": [summary(s) for s in chosen]})

    async def execution(request: web.Request) -> web.Response:
        state = states(projection()).get(request.match_info["execution_id"])
        if state is None:
            return _json({"error": "no such execution"}, status=404)
        return web.Response(body=STATE.dump_json(state), content_type="application/json")

    async def openapi(_: web.Request) -> web.Response:
        return _json(OPENAPI)

    application = web.Application()
    application.router.add_get("/health", health)
    application.router.add_get("/executions", executions)
    application.router.add_get("/executions/{execution_id}", execution)
    application.router.add_get("/openapi.json", openapi)
    return application


async def serve(application: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def _parameter(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _content(description: str, schema: str) -> dict[str, Any]:
    """A JSON response described by one of the document's component schemas."""
    reference = {"$ref": f"#/components/schemas/{schema}"}
    return {"description": description, "content": {"application/json": {"schema": reference}}}


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"anyOf": [{"type": kind, **extra}, {"type": "null"}]}


def _component_schemas() -> dict[str, Any]:
    """Response schemas (plain JSON Schema, as OpenAPI 3.1 takes): the execution state as
    its model says, and the small bodies the handlers above build."""
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


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Ricochet projector", "version": "1", "description": "Read-only."},
    "paths": {
        "/health": {
            "get": {
                "summary": (
                    "Liveness; the broker (no password), vhost and namespace folded;"
                    " folded offset, executions, unreadable messages skipped"
                ),
                "responses": {"200": _content("ok", "Health")},
            }
        },
        "/executions": {
            "get": {
                "summary": "Executions, newest first",
                "parameters": [
                    _parameter(
                        "status",
                        ", ".join(s.value for s in Status),
                        {"type": "string", "enum": [s.value for s in Status]},
                    ),
                    _parameter("target", "Only this target", {"type": "string"}),
                    _parameter(
                        "since",
                        "Requested since: ISO time or interval (10m, 2h, 1D)",
                        {"type": "string"},
                    ),
                    _parameter(
                        "limit",
                        "At most this many (1-1000, default 100)",
                        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                    ),
                ],
                "responses": {
                    "200": _content("{executions: [summary]}", "ExecutionList"),
                    "400": _content("{error: message}", "Error"),
                },
            }
        },
        "/executions/{execution_id}": {
            "get": {
                "summary": "One execution with all its attempts",
                "parameters": [
                    {
                        "name": "execution_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": _content("the execution's state", "ExecutionState"),
                    "404": _content("{error: message}", "Error"),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1"}},
            }
        },
    },
    "components": {"schemas": _component_schemas()},
}
