"""Commands that start executions: ``submit`` and ``rerun``, and reporting their end."""

from __future__ import annotations

import sys

import orjson

from ricochet.contracts import Json
from ricochet.errors import RemoteError, UnknownTarget
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
