"""One message that cannot be read hides nothing else (SPEC 7.7).

An event whose time overflows when turned into UTC raised ``OverflowError``
from the decoder, which the log reader did not catch: as the last message on
the stream it made the tail -1, so replay showed nothing, status found no
events and the at-most-once look-up said an attempt that had run had not.
Such a time is now outside the range every reader shares (``contracts.limits``)
and refused by name, at either end of the calendar (SPEC 7.12).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import aio_pika
import aiohttp
import orjson
import pytest

from ricochet.contracts import decode_batch, decode_event
from ricochet.engine import project
from ricochet.engine.claims import Copy
from ricochet.workers.amqp.broker import connect
from ricochet.workers.amqp.topology import Names
from ricochet.workers.client.client import Client
from ricochet.workers.log.history import read_entries
from ricochet.workers.log.reader import Entry, tail_offset
from ricochet.workers.read import api
from ricochet.workers.read.projector import Projector
from ricochet.workers.read.store import STATE
from ricochet.workers.runtime.claims import ClaimBook
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import eventually, running_worker
from tests.integration.test_cli import ricochet
from tests.integration.test_durable_projector import free_port

OVERFLOWING_AT = "0001-01-01T00:00:00+01:00"
OUT_OF_RANGE = "is outside the range Ricochet reads (1970-01-01 to 9998-12-31, UTC)"
BIG = 2**70


def event_json(kind: str, execution_id: str, attempt: int, at: str, **fields: object) -> str:
    """One event as raw JSON text, written by hand: what a foreign or broken writer might send."""
    body = {
        "type": kind,
        "event_id": f"{execution_id}:{attempt}:{kind}",
        "execution_id": execution_id,
        "attempt": attempt,
        "at": at,
        **fields,
    }
    return json.dumps(body)


async def publish_raw(settings: Settings, body: bytes) -> None:
    """Put ``body`` on the event log as one stream message, confirmed, as any writer could."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange(Names(settings.namespace).events, ensure=False)
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await exchange.publish(message, routing_key="")
    finally:
        await connection.close()


def overflowing_message(at: str = OVERFLOWING_AT) -> bytes:
    """A well-formed request but for its time, which cannot be turned into UTC."""
    request = event_json("execution_requested.v2", uuid.uuid4().hex, 0, at, target="t.ok")
    return f"[{request}]".encode()


def ids(lines: str) -> list[str]:
    return [orjson.loads(line)["event_id"] for line in lines.strip().splitlines()]


@pytest.mark.parametrize("at", [OVERFLOWING_AT, "9999-12-31T23:59:59-14:00"])
async def test_an_unreadable_last_message_hides_nothing(
    settings: Settings, client: Client, at: str
) -> None:
    """Given executions on the log and an overflowing-time message published last,
    when the log is read, replayed, folded and asked about starts,
    then everything readable is there, and the bad message is counted with its offset."""
    projector = Projector(settings)
    await projector.start()
    try:
        async with running_worker(settings, tasks.ALL):
            ok = await client.submit("t.ok", [3])
            flaky = await client.submit("t.twice_then_ok")
            await asyncio.gather(ok.wait(timeout=30), flaky.wait(timeout=30))
        before = await read_entries(settings)
        await publish_raw(settings, overflowing_message(at))

        # When the log is read
        entries = await read_entries(settings)
        *readable, last = entries
        bad = before[-1].offset + 1
        connection = await connect(settings, "test")
        try:
            tail = await tail_offset(connection, Names(settings.namespace))
            book = ClaimBook(connection, Names(settings.namespace))
            await book.start()
            assert await book.read_to_now(time.monotonic(), 30)
            verdicts = [
                book.attempts.judge(execution_id, attempt, read_to_now=True)
                for execution_id, attempt in ((ok.id, 1), (flaky.id, 3), (uuid.uuid4().hex, 1))
            ]
            read_past_it = book.read_to >= tail
            await book.stop()
        finally:
            await connection.close()
        # Then the tail is the bad message, which is kept with its reason and no events
        assert bad == tail
        assert (bad, (), True) == (
            last.offset,
            last.events,
            OUT_OF_RANGE in str(last.unreadable),
        )
        assert [(e.offset, e.events) for e in before] == [(e.offset, e.events) for e in readable]
        # and a worker's claim book reads past it and still knows what came before it
        assert read_past_it
        assert [Copy.DROP, Copy.DROP, Copy.NOT_OPEN] == verdicts

        # When a person replays and asks for status
        code, replayed, err = await ricochet(settings, "replay", "--json")
        status_code, timeline, _ = await ricochet(settings, "status", ok.id, "--api", "")
        # Then every readable event is shown, and the skipped one is named by offset
        events = [e for entry in before for e in entry.events]
        assert (0, [e.event_id for e in events]) == (code, ids(replayed))
        assert "warning: 1 message(s) could not be read" in err
        assert f"offset {bad} (0.execution_requested.v2.at: Value error, a time" in err
        assert OUT_OF_RANGE in err
        assert "OverflowError" not in err
        assert 0 == status_code
        assert "succeeded  (1 attempt)" in timeline

        # And the projector went past it, counted it, and equals a fresh fold
        await eventually(lambda: projector.offset == bad)
        assert 1 == projector.progress()["unreadable"]
        assert project(events).executions == dict(projector.projection.executions)
    finally:
        await projector.stop()


async def test_replay_status_and_the_api_print_whatever_the_reader_accepted(
    settings: Settings, client: Client
) -> None:
    """Given an execution whose request and result hold an integer past 64 bits,
    when it is replayed, shown and served, then no printer crashes: the reader either
    accepts the value and every printer writes it exactly, or refuses the message and
    replay says so by offset."""
    execution_id = uuid.uuid4().hex
    now = "2026-01-01T00:00:00+00:00"
    lines = [
        event_json("execution_requested.v2", execution_id, 0, now, target="t.ok", args=[BIG]),
        event_json("attempt_started.v2", execution_id, 1, now, policy={"retries": 0}),
        event_json("attempt_succeeded.v1", execution_id, 1, now, result=BIG),
        event_json("execution_succeeded.v1", execution_id, 1, now, result=BIG),
    ]
    body = f"[{','.join(lines)}]".encode()
    try:
        decode_batch(body)
        accepted = True
    except Exception:  # whatever the readers refuse it for
        accepted = False
    projector = Projector(settings)
    await projector.start()
    port = free_port()
    runner = await api.serve(
        api.app(projector.provenance, lambda: projector.projection, projector.progress),
        "127.0.0.1",
        port,
    )
    try:
        await publish_raw(settings, body)
        (entry,) = await read_entries(settings)
        code, replayed, err = await ricochet(settings, "replay", "--json")
        status_code, timeline, status_err = await ricochet(settings, "status", execution_id)
        await eventually(lambda: projector.offset == entry.offset)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/executions/{execution_id}") as response,
        ):
            served = (response.status, await response.read())
    finally:
        await runner.cleanup()
        await projector.stop()

    assert 0 == code
    if accepted:
        assert [(BIG,), BIG] == [
            getattr(decode_event(replayed.splitlines()[0]), "args", None),
            entry_result(entry),
        ]
        assert [e.event_id for e in entry.events] == ids(replayed)
        assert (0, f"  result: {BIG}") == (status_code, timeline.rstrip().splitlines()[-1])
        assert (200, BIG) == (served[0], STATE.validate_json(served[1]).result)
    else:
        assert ("", entry.offset) == (replayed, entry.offset)
        assert f"offset {entry.offset} (" in err
        assert (1, True) == (status_code, "warning: 1 message(s)" in status_err)
        assert 404 == served[0]
        assert 1 == projector.progress()["unreadable"]


def entry_result(entry: Entry) -> object:
    return getattr(entry.events[-1], "result", None)
