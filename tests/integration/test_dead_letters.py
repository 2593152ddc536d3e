"""Bad input is dead-lettered with a reason, and the worker keeps working."""

from __future__ import annotations

import pytest
from aio_pika.abc import FieldValue

from ricochet.contracts import (
    REASON_HEADER,
    ExecutionFailed,
    ExecutionRequested,
    FailureCause,
    WorkMessage,
    encode,
)
from ricochet.errors import UnknownTarget
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import dead_letters, log_events, publish_raw_work, running_worker


async def test_malformed_and_unknown_work_is_dead_lettered(
    settings: Settings, client: Client
) -> None:
    """Not JSON, wrong schema, bad attempt header, unknown target: each dead-lettered, with why."""
    unknown = WorkMessage(execution_id="e-unknown", target="nobody.serves:this")
    cases: list[tuple[bytes, dict[str, FieldValue]]] = [
        (b"\xff not json", {}),
        (b'{"type": "work.v1", "execution_id": 7}', {}),
        (encode(WorkMessage(execution_id="e-header", target="t.ok")), {"ricochet-attempt": "x"}),
        (encode(unknown), {}),
    ]
    async with running_worker(settings, tasks.ALL):
        for body, headers in cases:
            await publish_raw_work(settings, body, headers)
        dead = await dead_letters(settings, expected=len(cases))
        handle = await client.submit("t.ok", [1])
        assert await handle.result(timeout=15) == {"doubled": 2}

    reasons = sorted(str((m.headers or {})[REASON_HEADER]) for m in dead)
    assert len(cases) == len(reasons)
    assert any("invalid work message" in r and "JSON" in r for r in reasons)
    assert any("execution_id" in r for r in reasons)
    assert any("ricochet-attempt" in r for r in reasons)
    assert any("unknown target 'nobody.serves:this'" in r for r in reasons)
    assert sorted(body for body, _ in cases) == sorted(m.body for m in dead)


async def test_submit_to_a_target_no_worker_serves_is_refused(
    settings: Settings, client: Client
) -> None:
    """The broker returns an unroutable work message: the caller hears, the log says rejected."""
    with pytest.raises(UnknownTarget, match=r"no\.such:target"):
        await client.submit("no.such:target")

    requested, ended = await log_events(settings)
    assert isinstance(requested, ExecutionRequested)
    assert "no.such:target" == requested.target
    assert isinstance(ended, ExecutionFailed)
    assert (requested.execution_id, FailureCause.REJECTED) == (ended.execution_id, ended.cause)
