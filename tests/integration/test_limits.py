"""SPEC 7.9 against the broker: nothing is written that cannot be read back, and one bad
payload never takes other executions with it.

Measured on main before the limits: a result nested 199 deep was recorded, its stream
message could not be read, the body ran 3 times and ended worker_lost, and the
unrelated executions in the same group-commit message were reported worker_lost too;
a trigger nested past the limit ran; NaN in a work message's kwargs ran and came back
as null.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any

import orjson
import pytest

from ricochet.contracts import (
    REASON_HEADER,
    AttemptFailed,
    AttemptStarted,
    AttemptSucceeded,
    ExecutionFailed,
    FailureCause,
    NotReadable,
    RetryScheduled,
    TooLarge,
)
from ricochet.errors import LimitExceeded
from ricochet.workers.client.client import Client
from ricochet.workers.log.history import read_entries
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import dead_letters, log_events, publish_raw_work, running_worker
from tests.integration.test_triggers import publish_trigger

pytestmark = pytest.mark.broker

OVER_DEPTH = 101
"""One level past the default limit: pydantic would still read it, the limit refuses it."""


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


async def test_a_bad_result_fails_its_attempt_by_cause_and_spares_its_message_mates(
    settings: Settings, client: Client
) -> None:
    """Too deep and too large: each attempt fails with its own cause and the policy retries
    it (then fails it); six executions whose events share the message all succeed."""
    group, size = uuid.uuid4().hex, 8
    kinds = ["deep", "huge", *(f"ok-{i}" for i in range(size - 2))]
    async with running_worker(settings, tasks.ALL):
        handles = [await client.submit("t.result_together", [group, size, kind]) for kind in kinds]
        states = await asyncio.gather(*(handle.wait(timeout=30) for handle in handles))
    deep, huge, *good = states

    assert [state.result for state in good] == kinds[2:]
    for state, cause in [
        (deep, FailureCause.RESULT_NOT_READABLE),
        (huge, FailureCause.RESULT_TOO_LARGE),
    ]:
        events = await log_events(settings, state.execution_id)
        assert sum(isinstance(e, AttemptStarted) for e in events) == 2
        assert [e.cause for e in events if isinstance(e, AttemptFailed)] == [cause, cause]
        assert sum(isinstance(e, RetryScheduled) for e in events) == 1
        assert [e.cause for e in events if isinstance(e, ExecutionFailed)] == [cause]
        assert not [e for e in events if isinstance(e, AttemptSucceeded)]
    assert deep.error is not None
    assert "nested deeper than the limit" in deep.error.message
    assert huge.error is not None
    assert "over the limit of 4194304" in huge.error.message

    entries = await read_entries(settings)
    assert [e.offset for e in entries if e.unreadable is not None] == []
    shared = [
        entry
        for entry in entries
        if any(
            isinstance(e, AttemptFailed) and e.execution_id == deep.execution_id
            for e in entry.events
        )
        and any(isinstance(e, AttemptSucceeded) for e in entry.events)
    ]
    assert shared, "the deep result's failure shared no message with a success"


async def test_a_trigger_over_the_nesting_limit_is_dead_lettered_with_the_reason(
    settings: Settings, client: Client
) -> None:
    deep = orjson.dumps({"target": "t.ok", "args": [nested(OVER_DEPTH)], "idempotency_key": "k"})
    async with running_worker(settings, tasks.ALL):
        await publish_trigger(settings, deep, "t.ok")
        dead = await dead_letters(settings, expected=1, timeout=30)
        handle = await client.submit("t.ok", [2])
        assert await handle.result(timeout=15) == {"doubled": 4}

    assert [m.body for m in dead] == [deep]
    reason = str((dead[0].headers or {})[REASON_HEADER])
    assert "nested deeper than the limit of 100 levels" in reason
    assert {e.execution_id for e in await log_events(settings)} == {handle.id}


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "words"),
    [
        ([nested(OVER_DEPTH)], {}, NotReadable, "argument 0 is nested deeper than the limit"),
        ([], {"x": math.nan}, NotReadable, "keyword argument 'x' holds nan"),
        ([2**64], {}, NotReadable, "integer outside the 64-bit range"),
        ([], {"x": "y" * (1024 * 1024)}, TooLarge, "over the limit of 1048576"),
    ],
    ids=["too-deep", "nan", "big-int", "too-large"],
)
async def test_a_submit_over_a_limit_raises_a_clear_error_and_records_nothing(
    settings: Settings,
    client: Client,
    args: list[Any],
    kwargs: dict[str, Any],
    error: type[LimitExceeded],
    words: str,
) -> None:
    with pytest.raises(error, match=words):
        await client.submit("t.ok", args, kwargs)
    with pytest.raises(error, match=words):
        await client.submit("t.ok", args, kwargs, idempotency_key="key")
    await asyncio.sleep(0.5)  # anything published would be on the log by now
    assert await log_events(settings) == []


async def test_a_work_message_holding_nan_or_a_big_integer_is_dead_lettered(
    settings: Settings, client: Client
) -> None:
    cases = [
        b'{"type":"work.v1","execution_id":"e-nan","target":"t.ok","kwargs":{"x":NaN}}',
        b'{"type":"work.v1","execution_id":"e-inf","target":"t.ok","args":[Infinity]}',
        b'{"type":"work.v1","execution_id":"e-int","target":"t.ok","args":[18446744073709551616]}',
    ]
    async with running_worker(settings, tasks.ALL):
        for body in cases:
            await publish_raw_work(settings, body, {})
        dead = await dead_letters(settings, expected=len(cases), timeout=15)
        handle = await client.submit("t.ok", [3])
        assert await handle.result(timeout=15) == {"doubled": 6}

    assert sorted(m.body for m in dead) == sorted(cases)
    reasons = {m.body: str((m.headers or {})[REASON_HEADER]) for m in dead}
    assert "kwargs.x" in reasons[cases[0]]
    assert "nan" in reasons[cases[0]]
    assert "args.0" in reasons[cases[1]]
    assert "inf" in reasons[cases[1]]
    assert "64-bit" in reasons[cases[2]]
    assert {e.execution_id for e in await log_events(settings)} == {handle.id}


async def test_lowered_limits_hold_in_the_worker_and_its_intake(
    settings: Settings, client: Client
) -> None:
    """A deployment that lowers the trigger and result limits gets them everywhere: the
    intake dead-letters a trigger over its lowered size, and an attempt whose result is
    over the lowered result size fails with ``result_too_large``."""
    lowered = settings.model_copy(update={"max_trigger_bytes": 500, "max_result_bytes": 1000})
    body = orjson.dumps({"target": "t.ok", "kwargs": {"x": "y" * 600}})
    async with running_worker(lowered, tasks.ALL):
        await publish_trigger(settings, body, "t.ok")
        dead = await dead_letters(settings, expected=1, timeout=30)
        handle = await client.submit("t.result_together", ["lowered", 1, "z" * 2000])
        final = await handle.wait(timeout=30)
    assert "over the 500 byte limit" in str((dead[0].headers or {})[REASON_HEADER])
    assert [FailureCause.RESULT_TOO_LARGE] * 2 == [a.cause for a in final.attempts]
