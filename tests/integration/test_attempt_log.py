"""The worker's ``attempt.ended`` line, as ``ricochet worker`` writes it (issue 11 item 4).

An on-call engineer greps a worker's JSON log for an execution: the line that ends
each attempt names the error (type and message) and, when a retry follows, the next
attempt and when it is due, as the events say.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson

from ricochet.contracts import RetryScheduled
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests.integration.harness import eventually, log_events
from tests.integration.processes import fleet


async def test_a_failed_attempt_logs_its_error_and_the_next_due_time(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """``p.slow_sync`` (retries=1, timeout 0.5 s) overruns on attempt 1, then succeeds."""
    async with fleet(settings, tmp_path) as workers:
        worker = await workers.start()
        handle = await client.submit("p.slow_sync", [2.0])
        assert "sync in time" == await handle.result(timeout=60)

        def ended_lines() -> list[dict[str, object]]:
            return [
                orjson.loads(line)
                for line in worker.text().splitlines()
                if '"attempt.ended"' in line and handle.id in line
            ]

        # The worker writes its line after the outcome is on the log: the result can
        # reach this test first.
        lines = await eventually(lambda: len(ended_lines()) == 2 and ended_lines(), timeout=10)

    (retry,) = [e for e in await log_events(settings, handle.id) if isinstance(e, RetryScheduled)]
    first, second = sorted(lines, key=lambda line: int(line["attempt"]))
    assert {
        "execution_id": handle.id,
        "attempt": 1,
        "outcome": "raised",
        "cause": "timeout",
        "error_type": "AttemptTimeout",
        "next_attempt": 2,
    }.items() <= first.items()
    assert "p.slow_sync ran past its timeout of 0.5 s" in str(first["error"])
    assert retry.due_at == datetime.fromisoformat(str(first["due_at"]))
    assert {"attempt": 2, "outcome": "returned"}.items() <= second.items()
    assert "error" not in second
