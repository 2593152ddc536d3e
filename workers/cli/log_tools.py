"""Commands for the log and the broker: ``replay``, ``rebuild``, ``topology``, ``schemas``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson

from ricochet import contracts
from ricochet.contracts.schemas import json_schemas
from ricochet.engine import Projection
from ricochet.errors import StoreLocked
from ricochet.workers.amqp.broker import connect, publishing_channel
from ricochet.workers.amqp.topology import Names, declare_core, declare_queue, describe, work_queue
from ricochet.workers.cli.running import until_signalled
from ricochet.workers.log.history import fold_log, read_entries
from ricochet.workers.log.reader import Entry, LogFollower, stream_channel
from ricochet.workers.log.replay import (
    ProgressBar,
    Selection,
    human_line,
    json_line,
    read_file,
    stream_offset,
    warn_skipped,
)
from ricochet.workers.read.store import ProjectionStore
from ricochet.workers.settings import Settings

SCHEMA_DIR = Path(contracts.__file__).parent / "schemas"


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
        folded = await fold_log(settings)
        fresh = folded.projection
        differences = diff(stored, fresh)
        for line in differences:
            print(line)
        store.save(fresh.executions.values(), folded.last_offset)
    finally:
        store.close()
    warn_skipped(folded.skipped)
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
        await until_signalled()
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
