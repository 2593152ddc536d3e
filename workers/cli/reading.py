"""Commands that read executions: ``status``, ``executions`` and ``debug``, from a
projector's API when one answers, else from the log."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import click
import orjson

from ricochet.engine import ExecutionState, Status
from ricochet.errors import BadQuery, CannotDebug
from ricochet.workers.cli.options import API_DEFAULT, connection_options, run, settings_of
from ricochet.workers.log.history import fold_entries, fold_log
from ricochet.workers.log.replay import (
    read_file,
    warn_skipped,
)
from ricochet.workers.logs import get_logger
from ricochet.workers.read import api
from ricochet.workers.read.store import STATE
from ricochet.workers.read.timeline import render
from ricochet.workers.runtime import debugging
from ricochet.workers.settings import Settings

log = get_logger(__name__)


async def status(
    settings: Settings, execution_id: str, source: Path | None = None, api_url: str | None = None
) -> int:
    """The timeline, from the projector's API when one answers, else by folding the log
    (what cannot be read is skipped and reported: this execution's events may be in it)."""
    state = await _from_api(settings, api_url, execution_id) if source is None else None
    if state is None:
        if source is not None:
            folded = fold_entries(read_file(source), execution_id)
        else:
            folded = await fold_log(settings, execution_id)
        warn_skipped(folded.skipped)
        state = folded.projection.get(execution_id)
    if state is None:
        print(f"no events for execution {execution_id}", file=sys.stderr)
        return 1
    print(render(state))
    return 0 if state.status is not Status.FAILED else 1


async def _ask(
    settings: Settings, api_url: str | None, path: str, query: dict[str, str] | None = None
) -> tuple[int, bytes] | None:
    """GET from the projector's API, if one answers for this namespace; else None."""
    if not api_url:
        return None
    try:
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(f"{api_url}/health") as health:
                if orjson.loads(await health.read()).get("namespace") != settings.namespace:
                    return None
            async with session.get(f"{api_url}{path}", params=query) as response:
                return response.status, await response.read()
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError):
        return None


async def _from_api(
    settings: Settings, api_url: str | None, execution_id: str
) -> ExecutionState | None:
    answer = await _ask(settings, api_url, f"/executions/{execution_id}")
    if answer is None or answer[0] != 200:
        return None
    return STATE.validate_json(answer[1])


async def executions(settings: Settings, query: dict[str, str], api_url: str | None) -> int:
    """List executions from the projector's API, else from a fresh fold of the log."""
    rows = await _list_from_api(settings, api_url, query)
    if rows is None:
        folded = await fold_log(settings)
        warn_skipped(folded.skipped)
        fresh = folded.projection
        try:
            rows = [api.summary(s) for s in api.select(fresh, query, datetime.now(UTC))]
        except BadQuery as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    for row in rows:
        print(
            f"{row['execution_id']}  {row['status']:<15} {row['attempts']:>2} attempt(s)"
            f"  {row['target']}  {row['requested_at']}"
        )
    return 0


async def _list_from_api(
    settings: Settings, api_url: str | None, query: dict[str, str]
) -> list[Any] | None:
    answer = await _ask(settings, api_url, "/executions", query)
    if answer is None:
        return None
    status, raw = answer
    body = orjson.loads(raw)
    if status == 400:
        print(f"error: {body['error']}", file=sys.stderr)
        return []
    return list(body["executions"]) if status == 200 else None


async def debug(
    settings: Settings,
    execution_id: str,
    modules: Sequence[ModuleType],
    attempt: int | None,
    post_mortem: bool,
) -> int:
    """Run a recorded attempt in this process, with its inputs; nothing is published."""
    state = (await fold_log(settings, execution_id)).projection.get(execution_id)
    try:
        if state is None:
            raise CannotDebug(f"no events for execution {execution_id}")
        task = debugging.find_task(modules, state.target)
        chosen = debugging.chosen_attempt(state, attempt)
    except CannotDebug as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return await debugging.run_here(task, state, chosen, post_mortem)


@click.command("executions")
@click.option("--status", default=None, help="pending, running, retry_scheduled, succeeded, failed")
@click.option("--target", default=None)
@click.option("--since", default=None, help="Requested since: ISO time or 10m, 2h, 1D.")
@click.option("--limit", default="100")
@click.option("--api", "api_url", envvar="RICOCHET_API", default=API_DEFAULT, show_default=True)
@connection_options
@click.pass_context
def executions_command(
    ctx: click.Context,
    status: str | None,
    target: str | None,
    since: str | None,
    limit: str,
    api_url: str,
) -> None:
    """List executions (from the projector, or by folding the log if none answers)."""
    given = {"status": status, "target": target, "since": since, "limit": limit}
    query = {k: v for k, v in given.items() if v is not None}
    run(lambda: executions(settings_of(ctx), query, api_url or None))


@click.command("status")
@click.argument("execution_id")
@click.option(
    "--file",
    "source",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Read an exported log instead of the broker (works offline).",
)
@click.option("--api", "api_url", envvar="RICOCHET_API", default=API_DEFAULT, show_default=True)
@connection_options
@click.pass_context
def status_command(
    ctx: click.Context, execution_id: str, source: Path | None, api_url: str
) -> None:
    """Show an execution's attempts as a timeline."""
    run(lambda: status(settings_of(ctx), execution_id, source, api_url or None))


@click.command("debug")
@click.argument("execution_id")
@click.argument("modules", nargs=-1, required=True)
@click.option("--attempt", type=int, default=None, help="Default: the last failed attempt.")
@click.option("--pdb", "post_mortem", is_flag=True, help="Open pdb where it raises.")
@connection_options
@click.pass_context
def debug_command(
    ctx: click.Context,
    execution_id: str,
    modules: tuple[str, ...],
    attempt: int | None,
    post_mortem: bool,
) -> None:
    """Run a recorded attempt here, with its inputs, from MODULES; nothing is published."""
    sys.path.insert(0, os.getcwd())
    imported = [importlib.import_module(name) for name in modules]
    run(lambda: debug(settings_of(ctx), execution_id, imported, attempt, post_mortem))
