"""Bounded storage against the broker (issue 13, item 5).

Measured on main before: ``<ns>.events`` was bounded by age only (a busy week fills
any disk, and a full disk stops every publisher), ``<ns>.dead`` had no bound, and a
3 MiB junk trigger was parked whole, in two queues (``<ns>.dead`` and its watch).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from typing import Any

import aio_pika
import pytest

from ricochet.contracts import (
    EXECUTION_HEADER,
    ORIGINAL_BYTES_HEADER,
    ORIGINAL_SHA256_HEADER,
    REASON_HEADER,
    ExecutionFailed,
)
from ricochet.errors import TopologyMismatch
from ricochet.workers.amqp.topology import MIN_SEGMENT_BYTES, Names, declare_core
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests import broker
from tests.integration import tasks
from tests.integration.harness import bind_target, dead_letters, log_events, running_worker

pytestmark = pytest.mark.broker

KIB = 1024
MIB = 1024 * KIB


async def publish_trigger(settings: Settings, body: bytes, headers: dict[str, Any]) -> None:
    """A trigger as any service publishes it, with headers of the sender's choosing."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(Names(settings.namespace).triggers)
        message = aio_pika.Message(
            body, headers=headers, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        )
        await exchange.publish(message, routing_key="t.ok")
    finally:
        await connection.close()


async def test_a_huge_malformed_trigger_is_parked_cut_with_its_size_hash_and_reason(
    settings: Settings, client: Client
) -> None:
    """Over the trigger limit, and under it but not JSON: both parked cut to 64 KiB with
    the whole body's size and SHA-256 beside the reason; a small one stays whole, and
    the headers its sender forged are not kept."""
    over = b"<not json>" * (300 * KIB)  # 3 MiB: over the 1 MiB trigger limit
    under = b"{" + b"x" * (200 * KIB)  # 200 KiB: not JSON
    small = b"not json either"
    forged = {ORIGINAL_SHA256_HEADER: "forged", EXECUTION_HEADER: "someone-else"}
    async with running_worker(settings, tasks.ALL):
        for body in (over, under, small):
            await publish_trigger(settings, body, forged if body is small else {})
        dead = await dead_letters(settings, expected=3, timeout=60)

    by_size = {int(str((m.headers or {}).get(ORIGINAL_BYTES_HEADER, len(m.body)))): m for m in dead}
    assert {len(over), len(under), len(small)} == set(by_size)
    for original in (over, under):
        parked = by_size[len(original)]
        headers = parked.headers or {}
        assert original[: 64 * KIB] == parked.body
        assert hashlib.sha256(original).hexdigest() == headers[ORIGINAL_SHA256_HEADER]
        assert EXECUTION_HEADER not in headers
    reason_over = str((by_size[len(over)].headers or {})[REASON_HEADER])
    assert f"body of {len(over)} bytes is over the 1048576 byte limit" == reason_over
    assert "body is not JSON" in str((by_size[len(under)].headers or {})[REASON_HEADER])
    whole = by_size[len(small)]
    assert small == whole.body
    assert not {ORIGINAL_SHA256_HEADER, EXECUTION_HEADER} & set(whole.headers or {})


async def test_a_work_body_cut_when_parked_still_fails_its_execution(
    settings: Settings, client: Client
) -> None:
    """The supervisor reads which execution a dead letter ends from its body; a cut body
    cannot be read, so the id travels in a header and the execution still ends failed."""
    cutting = settings.model_copy(update={"dead_letter_body_bytes": 64})
    await bind_target(settings, "t.unserved")
    handle = await client.submit("t.unserved", ["a" * 1000])
    async with running_worker(cutting, tasks.ALL):
        final = await handle.wait(timeout=60)
        (parked,) = await dead_letters(settings, expected=1, timeout=30)

    assert "failed" == final.status.value
    ended = (await log_events(settings, handle.id))[-1]
    assert isinstance(ended, ExecutionFailed)
    assert "unknown target 't.unserved'" in (ended.error.message if ended.error else "")
    assert 64 == len(parked.body)
    assert handle.id == (parked.headers or {})[EXECUTION_HEADER]


def queue_arguments(settings: Settings) -> dict[str, dict[str, Any]]:
    """The arguments each queue of the test's namespace was declared with, as the broker
    keeps them."""
    vhost = broker.vhost_of(settings.amqp_url)
    done = subprocess.run(
        broker.ctl_argv("list_queues", "-p", vhost, "name", "arguments", "--formatter", "json"),
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    queues = json.loads(done.stdout)
    return {q["name"]: {key: value for key, _, value in q["arguments"]} for q in queues}


async def test_the_stream_and_the_dead_letter_queue_carry_their_bounds(
    settings: Settings, client: Client
) -> None:
    names = Names(settings.namespace)
    arguments = queue_arguments(settings)

    events, dead = arguments[names.events], arguments[names.dead]
    assert (5 * 1024 * MIB, 256 * MIB, "7D") == (
        events["x-max-length-bytes"],
        events["x-stream-max-segment-size-bytes"],
        events["x-max-age"],
    )
    assert (1024 * MIB, "drop-head") == (dead["x-max-length-bytes"], dead["x-overflow"])


async def test_the_stream_keeps_to_its_size_bound(settings: Settings) -> None:
    """12 MiB into a stream bounded at 4 MiB: its oldest segments go, and what is left is
    within the bound and one segment (the one being written is never dropped)."""
    bound = 4 * MIB
    small = settings.model_copy(update={"stream_max_bytes": bound})
    connection = await aio_pika.connect(small.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        names = await declare_core(channel, small)
        exchange = await channel.get_exchange(names.events)
        body = b"x" * (64 * KIB)
        for _ in range(12 * MIB // len(body)):
            await exchange.publish(aio_pika.Message(body), routing_key="")
        first, kept = await _first_offset_and_bytes(connection, names.events, len(body))
    finally:
        await connection.close()
    assert first > 0
    assert kept <= bound + MIN_SEGMENT_BYTES


async def _first_offset_and_bytes(
    connection: aio_pika.abc.AbstractConnection, stream: str, size: int
) -> tuple[int, int]:
    """The stream's first offset, and the bytes of its messages (all of ``size``)."""
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=500)
    queue = await channel.get_queue(stream, ensure=False)
    offsets: list[int] = []

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        offsets.append(int(str((message.headers or {})["x-stream-offset"])))
        await message.ack()

    await queue.consume(on_message, arguments={"x-stream-offset": "first"})
    seen = -1
    while len(offsets) != seen or not offsets:
        seen = len(offsets)
        await asyncio.sleep(1.0)
    await channel.close()
    return min(offsets), len(offsets) * size


async def test_a_stream_made_without_the_bound_is_refused_in_one_line(
    settings: Settings,
) -> None:
    """A deployment upgraded onto a stream an earlier version made: every declare fails;
    the command says which argument, which setting, and what to do, not a traceback.
    With the old values (0) it starts, as before."""
    old = settings.model_copy(update={"stream_max_bytes": 0, "dead_letter_max_bytes": 0})
    async with Client(old):
        pass
    with pytest.raises(TopologyMismatch, match="x-max-length-bytes"):
        async with Client(settings):
            pass

    code, err = await _topology(settings, {})
    assert 2 == code
    assert "Traceback" not in err
    (line,) = [said for said in err.splitlines() if not said.startswith("{")]  # no log lines
    events = Names(settings.namespace).events
    assert line.startswith(f"error: queue '{events}' in vhost ")
    assert "was created with another x-max-length-bytes" in line
    assert "RICOCHET_STREAM_MAX_BYTES" in line
    assert "rabbitmqctl set_policy" in line
    code, err = await _topology(
        settings, {"RICOCHET_STREAM_MAX_BYTES": "0", "RICOCHET_DEAD_LETTER_MAX_BYTES": "0"}
    )
    assert (0, []) == (code, [said for said in err.splitlines() if not said.startswith("{")])


async def _topology(settings: Settings, env: dict[str, str]) -> tuple[int, str]:
    """``ricochet topology`` in a subprocess with these settings: exit code and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ricochet",
        "--log-json",
        "topology",
        env={
            **os.environ,
            "RICOCHET_AMQP_URL": settings.amqp_url,
            "RICOCHET_NAMESPACE": settings.namespace,
            **env,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, err.decode()
