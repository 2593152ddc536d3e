"""The projector's read-only HTTP JSON API, described by the OpenAPI document it serves.

aiohttp is used because the projector is an asyncio process already and it is
the well-kept asyncio HTTP server; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from ricochet.engine import ExecutionState, Projection, Status
from ricochet.errors import BadPosition, BadQuery
from ricochet.workers.log.replay import parse_position, parse_time
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
        raise BadQuery(f"status must be one of {choices}, not {shown(value)}") from None


def _since(value: str | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    try:
        moment = parse_position(value, now)
    except BadPosition as err:
        raise BadQuery(f"since: {err}") from None
    if not isinstance(moment, datetime):
        raise BadQuery(f"since must be a time or an interval like 1h, not {shown(value)}")
    return moment


def _limit(value: str) -> int:
    return whole_number("limit", value, 1, MAX_LIMIT)


def whole_number(name: str, value: str, low: int, high: int) -> int:
    """A query's whole number in ``low..high``, in ASCII digits: ``str.isdigit`` also takes
    ``²`` (which ``int`` refuses), and ``int`` refuses 4,300 digits and more."""
    digits = value.isascii() and value.isdigit() and len(value) <= len(str(high))
    if not digits or not low <= int(value) <= high:
        raise BadQuery(f"{name} must be a whole number from {low} to {high}, not {shown(value)}")
    return int(value)


def until_time(value: str) -> datetime:
    """An ISO time (UTC when naive), for the pages' ``until``."""
    try:
        return parse_time(value)
    except BadPosition as err:
        raise BadQuery(f"until: {err}") from None


def shown(value: str, most: int = 40) -> str:
    """A value as given, quoted and escaped, cut short for an error message."""
    return repr(value if len(value) <= most else f"{value[:most]}…")


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def app(
    provenance: Provenance,
    projection: Callable[[], Projection | States],
    progress: Callable[[], dict[str, int | None]],
    middlewares: Sequence[Middleware] = (),
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

    application = web.Application(middlewares=middlewares)
    application.router.add_get("/health", health)
    application.router.add_get("/executions", executions)
    application.router.add_get("/executions/{execution_id}", execution)
    return application


async def serve(application: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
