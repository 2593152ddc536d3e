"""Commands that read executions: ``status``, ``executions`` and ``debug``, from a
projector's API when one answers for this vhost and namespace, else from the log.

``status`` and ``executions`` say on stderr where their answer came from (and,
when they pass a projector by, why), so piped output stays the answer alone.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import orjson
from pydantic import ValidationError

from ricochet.engine import ExecutionState, Status
from ricochet.errors import BadLogLine, BadQuery, CannotDebug
from ricochet.workers.cli.options import (
    API_DEFAULT,
    STRICT_HELP,
    connection_options,
    run,
    settings_of,
    strict_needs_file,
)
from ricochet.workers.cli.tokens import token_file_option, token_of
from ricochet.workers.log.history import Folded, fold_entries, fold_log, read_entries
from ricochet.workers.log.reader import Entry
from ricochet.workers.log.replay import BAD_LINES, read_file, warn_skipped
from ricochet.workers.logs import get_logger
from ricochet.workers.read import api
from ricochet.workers.read.asking import Answer, Unused, ask
from ricochet.workers.read.listing import render_table, table_rows
from ricochet.workers.read.provenance import provenance_of
from ricochet.workers.read.store import STATE
from ricochet.workers.read.timeline import render
from ricochet.workers.runtime import debugging
from ricochet.workers.settings import Settings

log = get_logger(__name__)


def _say(line: str) -> None:
    """A note for the person (stderr: stdout is the answer)."""
    if line:
        print(line, file=sys.stderr)


def _for_people() -> bool:
    """Colour on a terminal, unless NO_COLOR asks otherwise (no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


async def _folded(
    settings: Settings, source: Path | None, execution_id: str | None = None, strict: bool = False
) -> Folded:
    """The log (or an exported file) folded now; says how much was read and what was not
    (``strict``: a bad line of the file raises ``BadLogLine``)."""
    entries: list[Entry] = (
        list(read_file(source, strict)) if source else await read_entries(settings)
    )
    folded = fold_entries(entries, execution_id)
    _say(f"from {'the log' if source is None else source} ({len(entries)} messages folded)")
    warn_skipped(folded.skipped)
    return folded


async def _state_from_projector(
    settings: Settings, api_url: str | None, execution_id: str
) -> ExecutionState | None:
    """The projector's state of the execution, or None (and why) to read the log instead."""
    token = token_of(settings)
    asked = await ask(api_url, provenance_of(settings), f"/executions/{execution_id}", None, token)
    if not isinstance(asked, Answer):
        _say(asked.reason)
        return None
    if asked.status != 200:
        _say(f"projector {asked.where} answered {asked.status} for it: reading the log")
        return None
    try:
        state = STATE.validate_json(asked.body)
    except ValidationError:
        _say(f"projector {asked.where} sent a state this version cannot read: reading the log")
        return None
    _say(asked.origin)
    return state


async def status(
    settings: Settings,
    execution_id: str,
    source: Path | None = None,
    api_url: str | None = None,
    all_frames: bool = False,
    strict: bool = False,
) -> int:
    """The timeline, from the projector's API when one answers for this vhost and
    namespace, else by folding the log (what cannot be read is skipped and reported:
    this execution's events may be in it). A file with bad lines exits ``BAD_LINES``
    whatever the status: the missing lines may hold the execution's end."""
    state, bad_lines = None, False
    if source is None:
        state = await _state_from_projector(settings, api_url, execution_id)
    if state is None:
        try:
            folded = await _folded(settings, source, execution_id, strict)
        except BadLogLine as err:
            print(f"error: {err}", file=sys.stderr)
            return BAD_LINES
        state, bad_lines = folded.projection.get(execution_id), bool(source and folded.skipped)
    if state is None:
        print(f"no events for execution {execution_id}", file=sys.stderr)
        return BAD_LINES if bad_lines else 1
    width = shutil.get_terminal_size().columns if _for_people() else 72
    print(render(state, width=max(width, 72), color=_for_people(), all_frames=all_frames))
    if bad_lines:
        return BAD_LINES
    return 1 if state.status in (Status.FAILED, Status.CANCELLED) else 0


def _passed_by(asked: Answer | Unused) -> str:
    """Why a projector's answer is not the one shown (empty: none was asked)."""
    if isinstance(asked, Answer):
        return f"projector {asked.where} answered {asked.status}: reading the log"
    return asked.reason


async def executions(settings: Settings, query: dict[str, str], api_url: str | None) -> int:
    """A table of executions from the projector's API, else from a fresh fold of the log."""
    try:
        api.parse_query(query, datetime.now(UTC))
    except BadQuery as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    asked = await ask(api_url, provenance_of(settings), "/executions", query, token_of(settings))
    if isinstance(asked, Answer) and asked.status in (200, 400):
        body = orjson.loads(asked.body)
        if asked.status == 400:
            print(f"error: {body['error']}", file=sys.stderr)
            return 2
        _say(asked.origin)
        rows: list[Any] = list(body["executions"])
    else:
        _say(_passed_by(asked))
        fresh = (await _folded(settings, None)).projection
        rows = [api.summary(s) for s in api.select(fresh, query, datetime.now(UTC))]
    print(render_table(table_rows(rows), color=_for_people()))
    return 0


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
@click.option("--status", default=None, help=", ".join(s.value for s in Status))
@click.option("--target", default=None)
@click.option("--since", default=None, help="Requested since: ISO time or 10m, 2h, 1D.")
@click.option(
    "--limit", type=click.IntRange(1, api.MAX_LIMIT), default=100, help="At most this many."
)
@click.option(
    "--api",
    "api_url",
    envvar="RICOCHET_API",
    default=API_DEFAULT,
    show_default=True,
    help="A projector's API to ask first ('' to read the log).",
)
@token_file_option
@connection_options
@click.pass_context
def executions_command(
    ctx: click.Context,
    status: str | None,
    target: str | None,
    since: str | None,
    limit: int,
    api_url: str,
    projector_token_file: Path | None,
) -> None:
    """List executions, newest first, as a table (from the projector, or by folding the
    log if none answers for this vhost and namespace)."""
    given = {"status": status, "target": target, "since": since, "limit": str(limit)}
    query = {k: v for k, v in given.items() if v is not None}
    settings = settings_of(ctx, projector_token_file=projector_token_file)
    token_of(settings)  # a token file that cannot be read: say so before anything runs
    run(lambda: executions(settings, query, api_url or None))


@click.command("status")
@click.argument("execution_id")
@click.option(
    "--file",
    "source",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Read an exported log instead of the broker (works offline).",
)
@click.option(
    "--api",
    "api_url",
    envvar="RICOCHET_API",
    default=API_DEFAULT,
    show_default=True,
    help="A projector's API to ask first ('' to read the log).",
)
@click.option(
    "--all-frames",
    is_flag=True,
    help="Show tracebacks whole: Ricochet's and asyncio's frames too.",
)
@token_file_option
@click.option("--strict", is_flag=True, help=STRICT_HELP)
@connection_options
@click.pass_context
def status_command(
    ctx: click.Context,
    execution_id: str,
    source: Path | None,
    api_url: str,
    all_frames: bool,
    projector_token_file: Path | None,
    strict: bool,
) -> None:
    """Show an execution's attempts as a timeline, its result as JSON and its reruns.

    With --file, a line that cannot be read is named on stderr and skipped, and the exit
    code is 4; --strict stops at the first instead (exit 4)."""
    strict_needs_file(strict, source)
    settings = settings_of(ctx, projector_token_file=projector_token_file)
    token_of(settings)  # a token file that cannot be read: say so before anything runs
    run(lambda: status(settings, execution_id, source, api_url or None, all_frames, strict))


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
