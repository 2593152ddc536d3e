"""Commands for the log and the broker: ``replay``, ``rebuild``, ``topology``, ``schemas``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import click
import orjson

from ricochet import contracts
from ricochet.contracts.schemas import json_schemas
from ricochet.engine import Projection
from ricochet.errors import BadLogLine, BadPosition, StoreLocked, WrongStore
from ricochet.workers.amqp.broker import connect, publishing_channel
from ricochet.workers.amqp.topology import Names, declare_core, declare_queue, describe, work_queue
from ricochet.workers.cli.options import (
    STRICT_HELP,
    connection_options,
    run,
    settings_of,
    strict_needs_file,
    until_signalled,
)
from ricochet.workers.log.history import fold_log, read_entries
from ricochet.workers.log.reader import Entry, LogFollower, stream_channel
from ricochet.workers.log.replay import (
    BAD_LINES,
    Position,
    ProgressBar,
    Selection,
    human_line,
    json_line,
    parse_position,
    read_file,
    skip_reason,
    stream_offset,
    warn_skipped,
)
from ricochet.workers.read.provenance import provenance_of
from ricochet.workers.read.store import ProjectionStore
from ricochet.workers.settings import Settings

SCHEMA_DIR = Path(contracts.__file__).parent / "schemas"
"""The copies shipped in the package: ``schemas --check`` compares them, nothing writes them."""


async def rebuild(settings: Settings, store_path: Path) -> int:
    """Fold the whole retained log afresh, report how the store differs, and repair it."""
    store = ProjectionStore(store_path, provenance_of(settings))
    try:
        store.open()
    except (StoreLocked, WrongStore) as err:
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
    strict: bool = False,
) -> int:
    """Print (or export) the selected events: from the broker, or from an exported file.
    Unreadable messages are skipped; how many and where goes to stderr at the end. A
    file's bad lines make the exit code ``BAD_LINES``; ``strict`` stops at the first."""
    try:
        await _replay(settings, selection, as_json, source, out, follow, strict)
    except BadLogLine as err:
        print(f"error: {err}", file=sys.stderr)
        return BAD_LINES
    warn_skipped(selection.skipped)
    return BAD_LINES if source is not None and selection.skipped else 0


async def _replay(
    settings: Settings,
    selection: Selection,
    as_json: bool,
    source: Path | None,
    out: Path | None,
    follow: bool,
    strict: bool,
) -> None:
    sink = out.open("w") if out is not None else sys.stdout
    try:
        show = json_line if as_json or out is not None else human_line
        if source is not None:
            for event in selection.pick(read_file(source, strict)):
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


async def _follow(
    settings: Settings, selection: Selection, emit: Callable[[contracts.Event], None]
) -> None:
    """Tail the log until interrupted; an unreadable message is reported when it comes."""
    connection = await connect(settings, "replay")
    try:
        names = Names(settings.namespace)  # read-only: declares nothing

        def on_entry(entry: Entry) -> None:
            for event in selection.pick((entry,)):
                emit(event)
            if skip_reason(entry) is not None:
                warn_skipped([entry])
                selection.skipped.clear()

        follower = LogFollower(await stream_channel(connection), names, on_entry)
        await follower.start(stream_offset(selection.start))
        try:
            await until_signalled()
        finally:
            await follower.stop()
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
    if not stale:
        print(f"all {len(json_schemas())} schema files in {directory} match the models")
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    return 1 if (check and stale) else 0


def _position(value: str | None, flag: str) -> Position | None:
    if value is None:
        return None
    try:
        return parse_position(value, datetime.now(UTC))
    except BadPosition as err:
        raise click.BadParameter(str(err), param_hint=flag) from err


@click.command("replay")
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
    help="Read an exported file instead of the broker (works offline). A line that cannot"
    " be read is named on stderr and skipped; the exit code is then 4.",
)
@click.option("--strict", is_flag=True, help=STRICT_HELP)
@connection_options
@click.pass_context
def replay_command(
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
    strict: bool,
) -> None:
    """Print the event log, or part of it."""
    strict_needs_file(strict, source)
    selection = Selection(
        start=_position(start, "--from") or "first",
        until=_position(until, "--until"),
        execution=execution,
        target=target,
        types=types,
    )
    settings = settings_of(ctx)
    run(lambda: replay(settings, selection, as_json, source, out, follow, strict))


@click.command("topology")
@click.option("--queue", "queues", multiple=True, help="Also declare this work queue.")
@connection_options
@click.pass_context
def topology_command(ctx: click.Context, queues: tuple[str, ...]) -> None:
    """Declare what Ricochet uses on the broker and print it."""
    run(lambda: topology(settings_of(ctx), queues))


@click.command("schemas")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    metavar="DIR",
    help="Write the files into DIR (in a clone: --out contracts/schemas).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 if the files in DIR (default: the installed copies) are stale.",
)
def schemas_command(check: bool, out: Path | None) -> None:
    """Write the JSON Schemas of the events and the trigger into DIR, or check them.

    Nothing is written without --out: the copies inside the installed package
    belong to its version, and a write there would not survive a reinstall.
    """
    if out is None and not check:
        raise click.UsageError(
            "say where: --out DIR writes the schemas there; --check compares the installed copies"
        )
    sys.exit(schemas(out or SCHEMA_DIR, check))
