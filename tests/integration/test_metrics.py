"""Prometheus metrics agree with the log (issue 12): counted after confirms, per process."""

from __future__ import annotations

import asyncio
from collections import Counter

import orjson

from ricochet.contracts import (
    AttemptFailed,
    AttemptStarted,
    AttemptSucceeded,
    Event,
    ExecutionRequested,
    RetryScheduled,
)
from ricochet.workers.client.client import Client
from ricochet.workers.read import api
from ricochet.workers.read.http import projector_app
from ricochet.workers.read.projector import Projector
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import eventually, log_events, running_worker
from tests.integration.observing import by_label, publish_trigger, scrape

WORKLOAD = ["t.ok"] * 3 + ["t.twice_then_ok"] * 2 + ["t.always_fails", "t.backoff"]


def fold_counts(events: list[Event]) -> dict[str, dict[tuple[str, ...], float]]:
    """What the metrics must say, folded from the log (duplicates by event id dropped)."""
    unique = list({event.event_id: event for event in events}.values())
    target = {e.execution_id: e.target for e in unique if isinstance(e, ExecutionRequested)}
    started: Counter[tuple[str, ...]] = Counter()
    ended: Counter[tuple[str, ...]] = Counter()
    retries: Counter[tuple[str, ...]] = Counter()
    for event in unique:
        name = target[event.execution_id]
        if isinstance(event, AttemptStarted):
            started[(name,)] += 1
        elif isinstance(event, AttemptSucceeded):
            ended[(name, "succeeded", "")] += 1
        elif isinstance(event, AttemptFailed):
            ended[(name, "failed", event.cause.value)] += 1
        elif isinstance(event, RetryScheduled):
            retries[(name,)] += 1
    return {"started": dict(started), "ended": dict(ended), "retries": dict(retries)}


async def test_worker_counters_equal_a_fold_of_the_log(settings: Settings, client: Client) -> None:
    """Given a known workload (successes, retries, final failures) on a worker with metrics,
    when it has ended, then the worker's counters equal the same counts folded from the log."""
    observed = settings.model_copy(update={"metrics_port": 0})
    async with running_worker(observed, tasks.ALL) as worker:
        handles = await asyncio.gather(*(client.submit(target) for target in WORKLOAD))
        await asyncio.gather(*(h.wait(timeout=30) for h in handles))
        url = f"http://127.0.0.1:{worker.metrics_port}/metrics"
        assert worker.supervisor is not None
        await eventually(
            lambda: worker.supervisor is not None and worker.supervisor.caught_up.is_set()
        )
        samples = await scrape(url)
    events = await log_events(settings)
    expected = fold_counts(events)

    assert expected["started"] == by_label(samples, "ricochet_attempts_started_total", "target")
    assert expected["ended"] == by_label(
        samples, "ricochet_attempts_ended_total", "target", "outcome", "cause"
    )
    assert expected["retries"] == by_label(samples, "ricochet_retries_scheduled_total", "target")
    written = [e for e in events if not isinstance(e, ExecutionRequested)]
    assert len(written) == samples[("ricochet_log_events_per_message_sum", ())]
    assert samples[("ricochet_log_messages_total", ())] >= 1
    durations = by_label(samples, "ricochet_attempt_duration_seconds_count", "target")
    assert expected["started"] == durations
    lateness = by_label(samples, "ricochet_retry_lateness_seconds_count", "target")
    assert lateness == {(t,): n for (t,), n in expected["retries"].items()}
    assert samples[("ricochet_supervisor_active", ())] == 1
    assert samples[("ricochet_supervisor_takeovers_total", ())] == 1
    assert samples[("ricochet_attempts_running", ())] == 0


async def test_trigger_results_are_counted(settings: Settings, client: Client) -> None:
    """Given a trigger, its duplicate and a trigger for no target, then the active supervisor
    counts one started, one duplicate and one dead-lettered."""
    observed = settings.model_copy(update={"metrics_port": 0})
    async with running_worker(observed, tasks.ALL) as worker:
        body = orjson.dumps({"target": "t.ok", "idempotency_key": "metrics-1"})
        await publish_trigger(settings, body, "t.ok")
        await publish_trigger(settings, body, "t.ok")
        await publish_trigger(settings, orjson.dumps({"target": "t.nobody"}), "t.nobody")
        url = f"http://127.0.0.1:{worker.metrics_port}/metrics"

        async def all_counted() -> bool:
            triggers = by_label(await scrape(url), "ricochet_triggers_total", "result")
            return sum(triggers.values()) == 3

        await eventually(all_counted, timeout=20)
        triggers = by_label(await scrape(url), "ricochet_triggers_total", "result")
    assert {("started",): 1, ("duplicate",): 1, ("dead_lettered",): 1} == triggers


async def test_a_worker_without_a_metrics_port_serves_none(settings: Settings) -> None:
    """Metrics are off by default: nothing is counted, no port is opened."""
    async with running_worker(settings, tasks.ALL) as worker:
        assert worker.metrics is None
        assert worker.metrics_port is None


async def test_projector_metrics_show_statuses_and_no_lag(
    settings: Settings, client: Client
) -> None:
    """Given ended executions, the projector's /metrics (on its API port) counts them by
    status, says how far its fold is behind the stream (nothing, once caught up), and how
    many messages it skipped."""
    projector = Projector(settings)
    await projector.start()
    runner = await api.serve(projector_app(projector), "127.0.0.1", 0)
    port = runner.addresses[0][1]
    try:
        async with running_worker(settings, tasks.ALL):
            handles = await asyncio.gather(
                *(client.submit(t) for t in ["t.ok", "t.ok", "t.fails_once_no_retry"])
            )
            await asyncio.gather(*(h.wait(timeout=30) for h in handles))
        url = f"http://127.0.0.1:{port}/metrics"

        async def caught_up() -> bool:
            samples = await scrape(url)
            statuses = by_label(samples, "ricochet_executions", "status")
            lag = samples.get(("ricochet_projector_lag", ()))
            return statuses == {("succeeded",): 2, ("failed",): 1} and lag == 0

        await eventually(caught_up, timeout=20)
        samples = await scrape(url)
    finally:
        await runner.cleanup()
        await projector.stop()
    assert samples[("ricochet_projector_unreadable_total", ())] == 0
    assert (
        samples[("ricochet_projector_offset", ())] == samples[("ricochet_stream_tail_offset", ())]
    )
