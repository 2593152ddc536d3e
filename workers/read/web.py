"""The web timeline: pages the projector serves beside its JSON API, on the same port.

Plain server-rendered HTML and one small script (``static/live.js``) that
fetches the same page every second and swaps in its ``#live`` part, so live
updates need no second renderer and no front-end build. Nothing is fetched from
anywhere but the projector. Everything that comes from events (targets, ids,
arguments, errors, tracebacks, workers) is user data and goes through
``html.escape``; links are built from URL-quoted ids.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from html import escape
from importlib import resources
from urllib.parse import urlencode

from aiohttp import web

from ricochet.engine import ExecutionState, Projection, Status
from ricochet.errors import BadQuery
from ricochet.workers.read import timeline_html
from ricochet.workers.read.api import States, parse_query, states, until_time, whole_number

PAGE_SIZE = 50
MAX_FETCH = 1000
MAX_PAGE = MAX_FETCH // PAGE_SIZE
"""Past this page nothing can be shown: the pages fetch at most ``MAX_FETCH`` executions."""
STATIC = resources.files("ricochet.workers.read") / "static"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _clock(at: datetime | None) -> str:
    return "" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _seconds(value: float) -> str:
    return f"{value:.2f} s"


def _page(title: str, body: str) -> web.Response:
    html = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{_e(title)} · Ricochet</title>"
        "<link rel=stylesheet href=/ui/static/timeline.css></head><body>"
        f"{body}<script src=/ui/static/live.js></script></body></html>"
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8")


_execution_link = timeline_html.link


# --- the executions page -------------------------------------------------------------


def _filters_form(query: dict[str, str]) -> str:
    options = "".join(
        f"<option{' selected' if query.get('status') == s.value else ''}>{_e(s.value)}</option>"
        for s in Status
    )
    fields = "".join(
        f'<label>{name} <input name={name} value="{_e(query.get(name, ""))}"'
        f' placeholder="{hint}"></label>'
        for name, hint in (
            ("target", "module:function"),
            ("since", "1h or ISO time"),
            ("until", "ISO time"),
        )
    )
    return (
        "<form class=filters method=get action=/ui>"
        f"<label>status <select name=status><option value=''>any</option>{options}</select></label>"
        f"{fields}<button>filter</button></form>"
    )


def _row(state: ExecutionState) -> str:
    status = state.status.value
    return (
        f"<tr class=execution data-status={_e(status)}>"
        f"<td>{_execution_link(state.execution_id)}</td><td>{_e(state.target or '')}</td>"
        f"<td class=status-{_e(status)}>{_e(status)}</td><td>{len(state.attempts)}</td>"
        f"<td>{_clock(state.requested_at)}</td><td>{_clock(state.ended_at)}</td></tr>"
    )


def _pager(query: dict[str, str], page: int, more: bool) -> str:
    links = []
    if page > 1:
        links.append(
            f'<a rel=prev href="/ui?{_e(urlencode({**query, "page": page - 1}))}">newer</a>'
        )
    if more:
        links.append(
            f'<a rel=next href="/ui?{_e(urlencode({**query, "page": page + 1}))}">older</a>'
        )
    return f"<p class=pager>page {page} {' '.join(links)}</p>"


def _until(value: str | None) -> datetime | None:
    return until_time(value) if value else None


def _page_number(value: str | None) -> int:
    return 1 if value is None else whole_number("page", value, 1, MAX_PAGE)


def executions_page(source: States, query: dict[str, str], now: datetime) -> web.Response:
    """The newest executions matching the filters, a page at a time, refreshed live."""
    query = {k: v for k, v in query.items() if v}
    page = _page_number(query.pop("page", None))
    until = _until(query.pop("until", None))
    asked = parse_query({**query, "limit": str(min(page * PAGE_SIZE + 1, MAX_FETCH))}, now)
    chosen = source.matching(asked.status, asked.target, asked.since, asked.limit)
    if until is not None:
        chosen = [s for s in chosen if s.requested_at is not None and s.requested_at <= until]
    shown = chosen[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    rows = "".join(_row(state) for state in shown) or "<tr><td colspan=6>none</td></tr>"
    table = (
        "<table><thead><tr><th>execution</th><th>target</th><th>status</th><th>attempts</th>"
        f"<th>requested (UTC)</th><th>ended (UTC)</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    filters = {**query, **({"until": until.isoformat()} if until else {})}
    more = len(chosen) > page * PAGE_SIZE
    live = f"<div id=live>{table}{_pager(filters, page, more)}</div>"
    return _page("Executions", f"<h1>Executions</h1>{_filters_form(filters)}{live}")


# --- the execution page and the routes -------------------------------------------------


def execution_page(state: ExecutionState | None, now: datetime) -> web.Response:
    if state is None:
        return web.Response(status=404, text="no such execution", content_type="text/plain")
    back = "<p><a href=/ui>all executions</a></p>"
    return _page(state.target or state.execution_id, back + timeline_html.render(state, now))


def _static(name: str, content_type: str) -> web.Response:
    return web.Response(
        body=(STATIC / name).read_bytes(),
        content_type=content_type,
        headers={"Cache-Control": "max-age=60"},
    )


def add_pages(application: web.Application, projection: Callable[[], Projection | States]) -> None:
    """``/ui`` (executions) and ``/ui/executions/{id}`` beside the JSON API, read-only."""

    async def listing(request: web.Request) -> web.Response:
        try:
            return executions_page(states(projection()), dict(request.query), datetime.now(UTC))
        except BadQuery as err:
            return web.Response(status=400, text=str(err), content_type="text/plain")

    async def execution(request: web.Request) -> web.Response:
        state = states(projection()).get(request.match_info["execution_id"])
        return execution_page(state, datetime.now(UTC))

    async def script(_: web.Request) -> web.Response:
        return _static("live.js", "text/javascript")

    async def style(_: web.Request) -> web.Response:
        return _static("timeline.css", "text/css")

    application.router.add_get("/ui", listing)
    application.router.add_get("/ui/executions/{execution_id}", execution)
    application.router.add_get("/ui/static/live.js", script)
    application.router.add_get("/ui/static/timeline.css", style)
