"""Commands that start executions (``submit``, ``rerun``), report their end, or stop
them (``cancel``)."""

from __future__ import annotations

import sys

import click
import orjson

from ricochet.contracts import Json
from ricochet.contracts.events import MAX_REASON_CHARS
from ricochet.engine import ExecutionState, Status
from ricochet.errors import CannotCancel, RemoteError, UnknownExecution, UnknownTarget
from ricochet.workers.cli.options import connection_options, json_arg, run, settings_of
from ricochet.workers.client.client import Client
from ricochet.workers.client.handle import Handle
from ricochet.workers.log.history import fold_log
from ricochet.workers.logs import get_logger
from ricochet.workers.settings import Settings

log = get_logger(__name__)


async def submit(
    settings: Settings,
    target: str,
    args: list[Json],
    kwargs: dict[str, Json],
    wait: bool,
    timeout: float | None,
    idempotency_key: str | None = None,
) -> int:
    async with Client(settings, source="cli") as client:
        try:
            handle = await client.submit(target, args, kwargs, idempotency_key=idempotency_key)
        except UnknownTarget as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(handle.id, flush=True)
        return await _report(handle, timeout) if wait else 0


async def _report(handle: Handle, timeout: float | None) -> int:
    """Print the result (exit 0), or the final error (1), or that time ran out (3)."""
    try:
        result = await handle.result(timeout)
    except RemoteError as err:
        print(f"execution {handle.id} failed: {err}", file=sys.stderr)
        print(err.remote_traceback, file=sys.stderr)
        return 1
    except TimeoutError:
        print(f"execution {handle.id} did not end within {timeout} s", file=sys.stderr)
        return 3
    print(orjson.dumps(result).decode())
    return 0


async def rerun(settings: Settings, execution_id: str, wait: bool, timeout: float | None) -> int:
    """Start the same target with the same inputs, linked to the original both ways."""
    original = (await fold_log(settings, execution_id)).projection.get(execution_id)
    if original is None or original.target is None:
        print(f"error: no request for execution {execution_id} in the log", file=sys.stderr)
        return 2
    async with Client(settings, source="rerun") as client:
        handle = await client.rerun(original)
        print(handle.id, flush=True)
        return await _report(handle, timeout) if wait else 0


async def cancel(settings: Settings, execution_id: str, reason: str) -> int:
    """Exit 0 once the cancel is on the log; 1 if the execution has ended; 2 if unknown."""
    async with Client(settings, source="cli") as client:
        try:
            state = await client.cancel(execution_id, reason)
        except UnknownExecution as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except CannotCancel as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    print(cancel_report(state))
    return 0


def cancel_report(state: ExecutionState) -> str:
    """One line for a person: what the cancel did, or will do."""
    execution_id = state.execution_id
    if state.status is Status.CANCELLED:
        return f"cancelled {execution_id}: attempt {state.cancel_from} will not run"
    running = (state.cancel_from or 1) - 1
    if state.status is Status.SUCCEEDED:
        return (
            f"cancel of {execution_id} recorded, but attempt {running} succeeded meanwhile:"
            " its result is kept"
        )
    return (
        f"cancel of {execution_id} recorded: attempt {running} is running; it finishes,"
        " and nothing runs after it"
    )


@click.command("submit")
@click.argument("target")
@click.option("--args", "args_json", default="[]", help="JSON array of positional arguments.")
@click.option("--kwargs", "kwargs_json", default="{}", help="JSON object of keyword arguments.")
@click.option("--wait", is_flag=True, help="Wait for the result; exit 1 if the execution fails.")
@click.option("--timeout", type=float, default=None, help="Seconds to wait at most.")
@click.option("--idempotency-key", default=None, help="The same key never starts two executions.")
@connection_options
@click.pass_context
def submit_command(
    ctx: click.Context,
    target: str,
    args_json: str,
    kwargs_json: str,
    wait: bool,
    timeout: float | None,
    idempotency_key: str | None,
) -> None:
    """Start an execution of TARGET and print its id."""
    args: Json = json_arg(args_json, "--args")
    kwargs: Json = json_arg(kwargs_json, "--kwargs")
    if not isinstance(args, list):
        raise click.BadParameter("--args must be a JSON array")
    if not isinstance(kwargs, dict):
        raise click.BadParameter("--kwargs must be a JSON object")
    run(lambda: submit(settings_of(ctx), target, args, kwargs, wait, timeout, idempotency_key))


@click.command("rerun")
@click.argument("execution_id")
@click.option("--wait", is_flag=True, help="Wait for the result; exit 1 if it fails.")
@click.option("--timeout", type=float, default=None, help="Seconds to wait at most.")
@connection_options
@click.pass_context
def rerun_command(ctx: click.Context, execution_id: str, wait: bool, timeout: float | None) -> None:
    """Start EXECUTION_ID's target again with the same inputs (linked both ways)."""
    run(lambda: rerun(settings_of(ctx), execution_id, wait, timeout))


@click.command("cancel")
@click.argument("execution_id")
@click.option("--reason", default="", help="Why, for whoever reads the log (one line).")
@connection_options
@click.pass_context
def cancel_command(ctx: click.Context, execution_id: str, reason: str) -> None:
    """Stop EXECUTION_ID: if it waits (to start, or for a retry) it ends cancelled now; if
    an attempt runs, that attempt finishes and nothing runs after it. Exit 1 if it has
    already ended, 2 if the log has no such execution."""
    if len(reason) > MAX_REASON_CHARS:
        raise click.BadParameter(f"at most {MAX_REASON_CHARS} characters", param_hint="--reason")
    run(lambda: cancel(settings_of(ctx), execution_id, reason))
