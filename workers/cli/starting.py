"""Commands that start executions: ``submit`` and ``rerun``, and reporting their end."""

from __future__ import annotations

import sys

import click
import orjson

from ricochet.contracts import Json
from ricochet.errors import RemoteError, UnknownTarget
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
