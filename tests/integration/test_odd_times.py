"""Odd times and a log with holes, against real worker processes (issue 22, items 3 and 6).

A time from outside the calendar Ricochet reads (``contracts.limits``: 1970 to
9998) is refused where it enters: a work message's header dead-letters it with
the reason, an event is unreadable and counted; neither raises inside a handler
(SPEC 7.12). And a lost retry whose execution has no request on the log is
reported and left by the supervisor, which keeps judging everything else.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aio_pika.abc import FieldValue

from ricochet.contracts import (
    ATTEMPT_HEADER,
    DUE_AT_HEADER,
    REASON_HEADER,
    REQUESTED_AT_HEADER,
    AttemptFailed,
    Event,
    FailureCause,
    RetryPolicy,
    WorkMessage,
    encode,
    event_id,
)
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests.integration.harness import dead_letters, eventually, log_events, publish_raw_work
from tests.integration.processes import WorkerProcess, fleet
from tests.integration.test_cli import ricochet
from tests.integration.test_recovery import record_only
from tests.integration.test_unreadable import event_json, publish_raw
from tests.unit.builders import failed, requested, retry_scheduled, started

YEAR_1_MS = -62135596800000
YEAR_10000_MS = 253402300800000
CRASH_SIGNS = ("Traceback", "OverflowError", "AssertionError", "judge_failed")


def no_crash(worker: WorkerProcess) -> list[str]:
    """The lines of a worker's output that show an exception inside a handler."""
    return [line for line in worker.text().splitlines() if any(s in line for s in CRASH_SIGNS)]


async def test_out_of_range_work_headers_are_dead_lettered_with_a_reason(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """Given a worker, and work messages whose request or due time is year 0001 or 10000,
    between ordinary executions, when they arrive, then each is dead-lettered once with
    a reason naming its header and the range, none runs, the others succeed, and the
    worker's output holds no traceback (on main: OverflowError in the handler, six
    deliveries, then the broker's delivery_limit and no Ricochet reason)."""
    async with fleet(settings, tmp_path) as workers:
        worker = await workers.start()
        before = await client.submit("p.quick", [1])
        odd: dict[str, dict[str, FieldValue]] = {
            uuid.uuid4().hex: {REQUESTED_AT_HEADER: YEAR_1_MS},
            uuid.uuid4().hex: {REQUESTED_AT_HEADER: YEAR_10000_MS},
            uuid.uuid4().hex: {ATTEMPT_HEADER: 2, DUE_AT_HEADER: YEAR_10000_MS},
        }
        for execution_id, headers in odd.items():
            body = encode(WorkMessage(execution_id=execution_id, target="p.quick", args=(7,)))
            await publish_raw_work(settings, body, headers)
        after = await client.submit("p.quick", [2])
        results = [await h.result(timeout=30) for h in (before, after)]
        dead = await dead_letters(settings, expected=len(odd), timeout=30)
        await asyncio.sleep(1.0)  # room for a redelivery, had any copy gone back
        extra = await dead_letters(settings, expected=1, timeout=0.5)
        crashes = no_crash(worker)

    assert [1, 2] == results
    reasons = sorted(str((m.headers or {}).get(REASON_HEADER)) for m in dead)
    assert 3 == len(reasons), reasons
    assert all("outside the range Ricochet reads" in r for r in reasons), reasons
    assert 2 == sum(REQUESTED_AT_HEADER in r for r in reasons)
    assert 1 == sum(DUE_AT_HEADER in r for r in reasons)
    assert [] == extra
    assert [] == [e for e in odd if workers.runs(e)]
    assert [] == crashes


async def test_out_of_range_event_times_are_unreadable_and_never_redispatched(
    settings: Settings, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a schema-valid request at year 0001 and one at 9999-12-31T23:59:59-14:00
    (year 10000 in UTC) on the log, and a supervisor that re-dispatches requests never
    started after 1 s, when it has judged them for a while, then neither runs, nothing
    is dead-lettered, the worker's output holds no traceback, an ordinary execution
    succeeds, and replay names both messages as unreadable with the range."""
    monkeypatch.setenv("RICOCHET_ORPHAN_AFTER_S", "1")
    year_1, year_10000 = uuid.uuid4().hex, uuid.uuid4().hex
    async with fleet(settings, tmp_path) as workers:
        worker = await workers.start()
        for execution_id, at in (
            (year_1, "0001-01-01T00:00:00Z"),
            (year_10000, "9999-12-31T23:59:59-14:00"),
        ):
            request = event_json("execution_requested.v2", execution_id, 0, at, target="p.quick")
            await publish_raw(settings, f"[{request}]".encode())
        ordinary = await client.submit("p.quick", [5])
        assert 5 == await ordinary.result(timeout=30)
        await asyncio.sleep(4.0)  # orphan bound 1 s, judged every 0.5 s: several rounds
        dead = await dead_letters(settings, expected=1, timeout=2.0)
        crashes = no_crash(worker)

    assert [] == [m.headers for m in dead]
    assert ([], []) == (workers.runs(year_1), workers.runs(year_10000))
    assert [] == crashes
    code, _, err = await ricochet(settings, "replay", "--json")
    assert 0 == code
    summary = next(line for line in err.splitlines() if line.startswith("warning:"))
    assert summary.startswith("warning: 2 message(s) could not be read")
    assert 2 == summary.count("outside the range Ricochet reads"), summary


def _as(event: Event, execution_id: str, worker: str, **changes: object) -> Event:
    """``event`` re-addressed to ``execution_id`` (its id too), 30 s ago, by ``worker``."""
    tag = event.type.partition(".")[0]
    return event.model_copy(
        update={
            "event_id": event_id(execution_id, event.attempt, tag),
            "execution_id": execution_id,
            "worker": worker,
            "at": AGO,
            **changes,
        }
    )


AGO = datetime.now(UTC) - timedelta(seconds=30)
POLICY = RetryPolicy(retries=2, delay_min=0.5, delay_max=0.5)


def history_without_request(execution_id: str, worker: str) -> list[Event]:
    """Attempt 1 of a work message with no request failed and scheduled attempt 2, whose
    message never reached a queue (its worker died between the two): a forged message,
    or one whose request the log lost."""
    return [
        _as(started(1, 1), execution_id, worker, policy=POLICY),
        _as(failed(1, 2), execution_id, worker),
        _as(retry_scheduled(1, 2, delay_s=0.5), execution_id, worker, due_at=AGO),
    ]


def lost_retry_with_request(execution_id: str, worker: str) -> list[Event]:
    """The same, for an ordinary execution: the supervisor re-publishes its retry."""
    request = _as(
        requested(0),
        execution_id,
        worker,
        target="p.fails_first",
        args=(9,),
        kwargs={},
        idempotency_key=None,
    )
    return [request, *history_without_request(execution_id, worker)]


async def test_a_lost_retry_with_no_request_is_reported_and_the_rest_is_judged(
    settings: Settings, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a supervisor's worker running a long retries=0 attempt, and on the log a
    lost retry of an execution with no request beside a lost retry of an ordinary one,
    when that worker is killed and another takes over, then the new supervisor reports
    the one with no request once (``execution.unrecoverable``, by id) and leaves it,
    re-publishes the ordinary retry (it succeeds), records the killed attempt lost, and
    its output holds no AssertionError (on main: ``judge_failed``, and the forged one
    is never reported)."""
    monkeypatch.setenv("RICOCHET_RETRY_RECOVERY_S", "1")
    orphan, ordinary = uuid.uuid4().hex, uuid.uuid4().hex
    async with fleet(settings, tmp_path) as workers:
        first = await workers.start()
        long = await client.submit("p.sleepy_once", [120])
        await eventually(lambda: workers.runs(long.id), timeout=30)
        gone = f"gone:{first.pid}"
        await record_only(settings, history_without_request(orphan, gone))
        watched = client.follow(ordinary)  # before it can end: follow sees what comes next
        await record_only(settings, lost_retry_with_request(ordinary, gone))
        first.signal(signal.SIGKILL)
        second = await workers.start()
        final = await long.wait(timeout=60)
        succeeded = await watched.wait(timeout=60)
        await eventually(lambda: '"execution.unrecoverable"' in second.text(), timeout=30)
        await asyncio.sleep(2.0)  # more judging rounds: still reported once
        output = second.text()
        crashes = no_crash(second)

    lost = [e for e in await log_events(settings, long.id) if isinstance(e, AttemptFailed)]
    assert [FailureCause.WORKER_LOST] == [e.cause for e in lost]
    assert "failed" == final.status.value
    assert 9 == succeeded.result
    reports = [line for line in output.splitlines() if '"execution.unrecoverable"' in line]
    assert 1 == len(reports), reports
    assert orphan in reports[0]
    assert "no execution_requested on the log" in reports[0]
    assert [] == [e for e in await log_events(settings, orphan) if e.type.startswith("execution_")]
    assert [] == crashes
