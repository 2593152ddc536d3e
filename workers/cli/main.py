"""``ricochet``: run workers and the projector, submit work, read the log.

Every flag has an environment twin (``RICOCHET_<FLAG>``). click is used because
it is small, well kept, and gives env twins and help text for free.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import orjson

from ricochet.contracts import Json
from ricochet.errors import AddressError, BadPosition
from ricochet.workers.addresses import parse_addresses
from ricochet.workers.cli import log_tools, reading, running, starting
from ricochet.workers.log.replay import Position, Selection, parse_position
from ricochet.workers.logs import configure
from ricochet.workers.settings import Settings


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    base: Settings = ctx.obj
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings.model_validate({**base.model_dump(), **given})
    except ValueError as err:
        raise click.UsageError(str(err)) from err


def _addresses(value: str) -> str:
    """Check ``--amqp-url`` before anything starts: the error names the item at fault."""
    try:
        parse_addresses(value)
    except AddressError as err:
        raise click.BadParameter(str(err), param_hint="--amqp-url") from None
    return value


def _json_arg(value: str, what: str) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as err:
        raise click.BadParameter(f"{what} is not valid JSON: {err}") from err


def _run(main: Callable[[], Coroutine[Any, Any, int]]) -> None:
    """Run on uvloop where it exists: its transports and thread wake-ups are written in C,
    and a busy worker spends a fifth of its time in them on the stock loop."""
    try:
        import uvloop
    except ImportError:  # not built for Windows
        sys.exit(asyncio.run(main()))
    sys.exit(uvloop.run(main()))


@click.group(context_settings={"auto_envvar_prefix": "RICOCHET", "show_default": True})
@click.option(
    "--amqp-url",
    default="amqp://guest:guest@localhost:5672/",
    envvar="RICOCHET_AMQP_URL",
    callback=lambda _ctx, _param, value: _addresses(value),
    help="Broker URL, or several comma-separated to fail over among (the nodes of a cluster):"
    " a full amqp[s]:// URL first, then full URLs or host[:port] that reuse its"
    " credentials and vhost.",
)
@click.option(
    "--namespace",
    default="ricochet",
    envvar="RICOCHET_NAMESPACE",
    help="Prefix of every queue and exchange.",
)
@click.option("--log-level", default="INFO", envvar="RICOCHET_LOG_LEVEL")
@click.option(
    "--log-json/--log-pretty",
    default=None,
    envvar="RICOCHET_LOG_JSON",
    help="Default: JSON unless stderr is a terminal.",
)
@click.pass_context
def main(
    ctx: click.Context, amqp_url: str, namespace: str, log_level: str, log_json: bool | None
) -> None:
    """Ricochet: an event-sourced retry engine on RabbitMQ."""
    configure(log_level, log_json)
    ctx.obj = Settings.from_env(amqp_url=amqp_url, namespace=namespace)


@main.command()
@click.argument("modules", nargs=-1, required=True)
@click.option(
    "--concurrency", type=int, default=8, envvar="RICOCHET_CONCURRENCY", help="Attempts at once."
)
@click.option(
    "--prefetch", type=int, envvar="RICOCHET_PREFETCH", help="Work prefetch (default: concurrency)."
)
@click.option(
    "--queues", envvar="RICOCHET_QUEUES", help="Comma-separated queues to consume (default: all)."
)
@click.option(
    "--grace",
    type=float,
    default=30.0,
    envvar="RICOCHET_GRACE",
    help="Seconds to finish on SIGTERM.",
)
@click.option(
    "--heartbeat",
    type=float,
    default=1.0,
    envvar="RICOCHET_HEARTBEAT",
    help="Seconds between beats.",
)
@click.option(
    "--loss-window",
    type=float,
    default=10.0,
    envvar="RICOCHET_LOSS_WINDOW",
    help="Seconds of silence after which a running attempt is recorded as worker_lost.",
)
@click.option(
    "--checkpoint-every",
    type=float,
    default=5.0,
    envvar="RICOCHET_CHECKPOINT_S",
    help="Seconds between the active supervisor's checkpoints (what a take-over starts from).",
)
@click.option(
    "--dedup-window",
    type=float,
    default=None,
    envvar="RICOCHET_DEDUP_WINDOW_S",
    help="Seconds an idempotency key is remembered (default: the event stream's retention).",
)
@click.option(
    "--trigger-prefetch",
    type=int,
    default=256,
    envvar="RICOCHET_TRIGGER_PREFETCH",
    help="Triggers the active supervisor takes at once.",
)
@click.pass_context
def worker(
    ctx: click.Context,
    modules: tuple[str, ...],
    concurrency: int,
    prefetch: int | None,
    queues: str | None,
    grace: float,
    heartbeat: float,
    loss_window: float,
    checkpoint_every: float,
    dedup_window: float | None,
    trigger_prefetch: int,
) -> None:
    """Run the tasks declared in MODULES (imported from the current directory too)."""
    sys.path.insert(0, os.getcwd())
    imported = [importlib.import_module(name) for name in modules]
    settings = _settings(
        ctx,
        concurrency=concurrency,
        prefetch=prefetch,
        heartbeat_s=heartbeat,
        loss_window_s=loss_window,
        checkpoint_s=checkpoint_every,
        dedup_window_s=dedup_window,
        trigger_prefetch=trigger_prefetch,
    )
    chosen = tuple(q.strip() for q in queues.split(",") if q.strip()) if queues else None
    _run(lambda: running.run_worker(settings, imported, chosen, grace))


API_DEFAULT = "http://127.0.0.1:8765"


@main.command()
@click.option(
    "--store",
    type=click.Path(path_type=Path),
    envvar="RICOCHET_STORE",
    default=Path("ricochet-projection.sqlite3"),
    show_default=True,
    help="SQLite file for the state and the offset it includes.",
)
@click.option(
    "--http",
    envvar="RICOCHET_HTTP",
    default="127.0.0.1:8765",
    show_default=True,
    help="Serve the read-only API on HOST:PORT ('' to turn it off).",
)
@click.option(
    "--rebuild",
    is_flag=True,
    help="Fold the whole retained log afresh, report differences, repair, exit.",
)
@click.pass_context
def projector(ctx: click.Context, store: Path, http: str, rebuild: bool) -> None:
    """Fold the event log into execution state, keep it on disk and serve it."""
    if rebuild:
        _run(lambda: log_tools.rebuild(ctx.obj, store))
    _run(lambda: running.run_projector(ctx.obj, store, http or None))


@main.command()
@click.option("--status", default=None, help="pending, running, retry_scheduled, succeeded, failed")
@click.option("--target", default=None)
@click.option("--since", default=None, help="Requested since: ISO time or 10m, 2h, 1D.")
@click.option("--limit", default="100")
@click.option("--api", "api_url", envvar="RICOCHET_API", default=API_DEFAULT, show_default=True)
@click.pass_context
def executions(
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
    _run(lambda: reading.executions(ctx.obj, query, api_url or None))


@main.command()
@click.argument("target")
@click.option("--args", "args_json", default="[]", help="JSON array of positional arguments.")
@click.option("--kwargs", "kwargs_json", default="{}", help="JSON object of keyword arguments.")
@click.option("--wait", is_flag=True, help="Wait for the result; exit 1 if the execution fails.")
@click.option("--timeout", type=float, default=None, help="Seconds to wait at most.")
@click.option("--idempotency-key", default=None, help="The same key never starts two executions.")
@click.pass_context
def submit(
    ctx: click.Context,
    target: str,
    args_json: str,
    kwargs_json: str,
    wait: bool,
    timeout: float | None,
    idempotency_key: str | None,
) -> None:
    """Start an execution of TARGET and print its id."""
    args: Json = _json_arg(args_json, "--args")
    kwargs: Json = _json_arg(kwargs_json, "--kwargs")
    if not isinstance(args, list):
        raise click.BadParameter("--args must be a JSON array")
    if not isinstance(kwargs, dict):
        raise click.BadParameter("--kwargs must be a JSON object")
    _run(lambda: starting.submit(ctx.obj, target, args, kwargs, wait, timeout, idempotency_key))


@main.command()
@click.argument("execution_id")
@click.option(
    "--file",
    "source",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Read an exported log instead of the broker (works offline).",
)
@click.option("--api", "api_url", envvar="RICOCHET_API", default=API_DEFAULT, show_default=True)
@click.pass_context
def status(ctx: click.Context, execution_id: str, source: Path | None, api_url: str) -> None:
    """Show an execution's attempts as a timeline."""
    _run(lambda: reading.status(ctx.obj, execution_id, source, api_url or None))


def _position(value: str | None, flag: str) -> Position | None:
    if value is None:
        return None
    try:
        return parse_position(value, datetime.now(UTC))
    except BadPosition as err:
        raise click.BadParameter(str(err), param_hint=flag) from err


@main.command()
@click.option("--from", "start", default="first", help="first, an offset, an ISO time or 10m.")
@click.option("--until", default=None, help="Stop after this offset or time (same forms).")
@click.option("--execution", default=None, help="Only this execution's events.")
@click.option("--target", default=None, help="Only executions of this target.")
@click.option("--type", "types", multiple=True, help="Only these event types (prefix).")
@click.option("--follow", is_flag=True, help="Keep printing new events until interrupted.")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line.")
@click.option("--out", type=click.Path(path_type=Path), help="Export as JSON lines to a file.")
@click.option(
    "--file",
    "source",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Read an exported file instead of the broker (works offline).",
)
@click.pass_context
def replay(
    ctx: click.Context,
    start: str,
    until: str | None,
    execution: str | None,
    target: str | None,
    types: tuple[str, ...],
    follow: bool,
    as_json: bool,
    out: Path | None,
    source: Path | None,
) -> None:
    """Print the event log, or part of it."""
    selection = Selection(
        start=_position(start, "--from") or "first",
        until=_position(until, "--until"),
        execution=execution,
        target=target,
        types=types,
    )
    _run(lambda: log_tools.replay(ctx.obj, selection, as_json, source, out, follow))


@main.command()
@click.argument("execution_id")
@click.option("--wait", is_flag=True, help="Wait for the result; exit 1 if it fails.")
@click.option("--timeout", type=float, default=None, help="Seconds to wait at most.")
@click.pass_context
def rerun(ctx: click.Context, execution_id: str, wait: bool, timeout: float | None) -> None:
    """Start EXECUTION_ID's target again with the same inputs (linked both ways)."""
    _run(lambda: starting.rerun(ctx.obj, execution_id, wait, timeout))


@main.command()
@click.argument("execution_id")
@click.argument("modules", nargs=-1, required=True)
@click.option("--attempt", type=int, default=None, help="Default: the last failed attempt.")
@click.option("--pdb", "post_mortem", is_flag=True, help="Open pdb where it raises.")
@click.pass_context
def debug(
    ctx: click.Context,
    execution_id: str,
    modules: tuple[str, ...],
    attempt: int | None,
    post_mortem: bool,
) -> None:
    """Run a recorded attempt here, with its inputs, from MODULES; nothing is published."""
    sys.path.insert(0, os.getcwd())
    imported = [importlib.import_module(name) for name in modules]
    _run(lambda: reading.debug(ctx.obj, execution_id, imported, attempt, post_mortem))


@main.command()
@click.option("--queue", "queues", multiple=True, help="Also declare this work queue.")
@click.pass_context
def topology(ctx: click.Context, queues: tuple[str, ...]) -> None:
    """Declare what Ricochet uses on the broker and print it."""
    _run(lambda: log_tools.topology(ctx.obj, queues))


@main.command()
@click.option("--check", is_flag=True, help="Exit 1 if the files differ from the models.")
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=None)
def schemas(check: bool, directory: Path | None) -> None:
    """Write the JSON Schemas of the events and the trigger to contracts/schemas/."""
    sys.exit(log_tools.schemas(directory or log_tools.SCHEMA_DIR, check))
