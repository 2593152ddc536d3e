"""What the CLI's commands do, as plain async functions (the CLI only parses flags)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import orjson

from ricochet import contracts
from ricochet.contracts import Json
from ricochet.contracts.schemas import json_schemas
from ricochet.engine import ExecutionState, Projection, Status, project
from ricochet.errors import BadQuery, CannotDebug, RemoteError, StoreLocked, UnknownTarget
from ricochet.workers.amqp.broker import connect, publishing_channel
from ricochet.workers.amqp.topology import Names, declare_core, declare_queue, describe, work_queue
from ricochet.workers.client.client import Client, Handle
from ricochet.workers.log.history import read_entries, read_events
from ricochet.workers.log.reader import Entry, LogFollower, stream_channel
from ricochet.workers.log.replay import (
    ProgressBar,
    Selection,
    events_and_skips,
    human_line,
    json_line,
    read_file,
    stream_offset,
    warn_skipped,
)
from ricochet.workers.logs import get_logger
from ricochet.workers.read import api
from ricochet.workers.read.projector import Projector
from ricochet.workers.read.store import STATE, ProjectionStore
from ricochet.workers.read.timeline import render
from ricochet.workers.runtime import debugging
from ricochet.workers.runtime.tasks import tasks_in
from ricochet.workers.runtime.worker import Worker
from ricochet.workers.settings import Settings

SCHEMA_DIR = Path(contracts.__file__).parent / "schemas"
log = get_logger(__name__)


async def _until_signalled() -> None:
    """Return on the first SIGTERM/SIGINT; a second one exits at once."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():
            log.warning("signal.again_exiting_now")
            os._exit(1)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    await stop.wait()


def tune_gc() -> None:
    """Fewer, cheaper collections for a long-lived process that makes many short-lived objects.

    Everything loaded at start-up (modules, pydantic schemas) is frozen out of
    the collector's sight, and the youngest generation is collected every
    50,000 allocations instead of 700 (a draining worker went from 4,233 to
    4,561 executions a second with this alone).
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


async def run_worker(
    settings: Settings, modules: Sequence[ModuleType], queues: Sequence[str] | None, grace: float
) -> int:
    tasks = [item for module in modules for item in tasks_in(module)]
    if not tasks:
        log.error("worker.no_tasks", modules=[m.__name__ for m in modules])
        return 2
    worker = Worker(settings, tasks, queues)
    await worker.start()
    tune_gc()
    await _until_signalled()
    log.info("worker.stopping", grace_s=grace)
    await worker.stop(grace)
    if worker.threads_still_busy:
        log.warning("worker.exiting_with_threads_running")
        os._exit(0)
    return 0


async def run_projector(settings: Settings, store: Path | None, http: str | None) -> int:
    projector = Projector(settings, store)
    try:
        await projector.start()
    except StoreLocked as err:
        print(f"error: {err}; stop it first, or use another --store", file=sys.stderr)
        return 3
    runner = None
    if http:
        host, _, port = http.rpartition(":")
        application = api.app(settings.namespace, lambda: projector.projection, projector.progress)
        runner = await api.serve(application, host or "127.0.0.1", int(port))
        log.info("projector.http", url=f"http://{host or '127.0.0.1'}:{port}/openapi.json")
    await _until_signalled()
    if runner is not None:
        await runner.cleanup()
    await projector.stop()
    return 0


async def rebuild(settings: Settings, store_path: Path) -> int:
    """Fold the whole retained log afresh, report how the store differs, and repair it."""
    store = ProjectionStore(store_path)
    try:
        store.open()
    except StoreLocked as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    try:
        stored, _ = store.load()
        entries = await read_entries(settings)
        fresh = project(e for entry in entries for e in entry.events)
        differences = diff(stored, fresh)
        for line in differences:
            print(line)
        store.save(fresh.executions.values(), entries[-1].offset if entries else None)
    finally:
        store.close()
    print(f"{len(differences)} difference(s); {len(fresh.executions)} execution(s) rebuilt")
    return 1 if differences else 0


def diff(stored: Projection, fresh: Projection) -> list[str]:
    """Executions whose stored state is not what the log folds to."""
    lines = []
    for execution_id, state in fresh.executions.items():
        kept = stored.get(execution_id)
        if kept is None:
            lines.append(f"missing from the store: {execution_id}")
        elif kept != state:
            fields = [
                f for f in state.__dataclass_fields__ if getattr(kept, f) != getattr(state, f)
            ]
            lines.append(f"differs: {execution_id} ({', '.join(fields)})")
    lines += [
        f"only in the store (its events are no longer in the log): {execution_id}"
        for execution_id in stored.executions.keys() - fresh.executions.keys()
    ]
    return lines


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


async def status(
    settings: Settings, execution_id: str, source: Path | None = None, api_url: str | None = None
) -> int:
    """The timeline, from the projector's API when one answers, else by folding the log
    (what cannot be read is skipped and reported: this execution's events may be in it)."""
    state = await _from_api(settings, api_url, execution_id) if source is None else None
    if state is None:
        entries = list(read_file(source)) if source is not None else await read_entries(settings)
        everything, skipped = events_and_skips(entries)
        warn_skipped(skipped)
        events = [e for e in everything if e.execution_id == execution_id]
        state = project(events).get(execution_id)
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
        events, skipped = events_and_skips(await read_entries(settings))
        warn_skipped(skipped)
        fresh = project(events)
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


async def _state(settings: Settings, execution_id: str) -> ExecutionState | None:
    events = [e for e in await read_events(settings) if e.execution_id == execution_id]
    return project(events).get(execution_id)


async def rerun(settings: Settings, execution_id: str, wait: bool, timeout: float | None) -> int:
    """Start the same target with the same inputs, linked to the original both ways."""
    original = await _state(settings, execution_id)
    if original is None or original.target is None:
        print(f"error: no request for execution {execution_id} in the log", file=sys.stderr)
        return 2
    async with Client(settings, source="rerun") as client:
        handle = await client.rerun(original)
        print(handle.id, flush=True)
        return await _report(handle, timeout) if wait else 0


async def debug(
    settings: Settings,
    execution_id: str,
    modules: Sequence[ModuleType],
    attempt: int | None,
    post_mortem: bool,
) -> int:
    """Run a recorded attempt in this process, with its inputs; nothing is published."""
    state = await _state(settings, execution_id)
    try:
        if state is None:
            raise CannotDebug(f"no events for execution {execution_id}")
        task = debugging.find_task(modules, state.target)
        chosen = debugging.chosen_attempt(state, attempt)
    except CannotDebug as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return await debugging.run_here(task, state, chosen, post_mortem)


async def replay(
    settings: Settings,
    selection: Selection,
    as_json: bool,
    source: Path | None = None,
    out: Path | None = None,
    follow: bool = False,
) -> int:
    """Print (or export) the selected events: from the broker, or from an exported file.
    Unreadable messages are skipped; how many and where goes to stderr at the end."""
    sink = out.open("w") if out is not None else sys.stdout
    try:
        show = json_line if as_json or out is not None else human_line
        if source is not None:
            for event in selection.pick(read_file(source)):
                print(show(event), file=sink)
        elif follow:
            await _follow(settings, selection, lambda e: print(show(e), file=sink, flush=True))
        else:
            bar = ProgressBar() if sys.stderr.isatty() else None
            start = stream_offset(selection.start)
            entries = await read_entries(settings, start, progress=bar.update if bar else None)
            if bar is not None:
                bar.close()
            for event in selection.pick(entries):
                print(show(event), file=sink)
    finally:
        if out is not None:
            sink.close()
    warn_skipped(selection.skipped)
    return 0


async def _follow(
    settings: Settings, selection: Selection, emit: Callable[[contracts.Event], None]
) -> None:
    """Tail the log until interrupted; an unreadable message is reported when it comes."""
    connection = await connect(settings, "replay")
    try:
        channel = await publishing_channel(connection)
        names = await declare_core(channel, settings)

        def on_entry(entry: Entry) -> None:
            for event in selection.pick((entry,)):
                emit(event)
            if entry.unreadable is not None:
                warn_skipped([entry])
                selection.skipped.clear()

        follower = LogFollower(await stream_channel(connection), names, on_entry)
        await follower.start(stream_offset(selection.start))
        await _until_signalled()
    finally:
        await connection.close()


async def topology(settings: Settings, queues: Sequence[str]) -> int:
    connection = await connect(settings, "topology")
    try:
        channel = await publishing_channel(connection)
        names = await declare_core(channel, settings)
        for queue in queues:
            await declare_queue(channel, work_queue(names, settings, queue))
    finally:
        await connection.close()
    print("\n".join(describe(Names(settings.namespace), settings, tuple(queues))))
    return 0


def schemas(directory: Path, check: bool) -> int:
    """Write (or with ``check``, compare) one file per schema; 1 when stale."""
    stale = []
    for name, schema in json_schemas().items():
        path = directory / name
        text = orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        current = path.read_bytes() if path.exists() else None
        if current == text:
            continue
        stale.append(name)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text)
    verb = "stale" if check else "written"
    for name in stale:
        print(f"{verb}: {directory / name}")
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    return 1 if (check and stale) else 0
