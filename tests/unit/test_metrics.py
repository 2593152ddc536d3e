"""Worker metrics count what the events say (issue 12), in Prometheus' terms."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ricochet.contracts import (
    AttemptFailed,
    AttemptSucceeded,
    ErrorInfo,
    ExecutionSucceeded,
    FailureCause,
    RetryScheduled,
)
from ricochet.workers.observe.metrics import Buckets, WorkerMetrics

AT = datetime(2026, 12, 1, tzinfo=UTC)


def samples(metrics: WorkerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_value_on_a_bound_falls_in_that_bucket() -> None:
    """Prometheus buckets are "less than or equal": 0.5 is in le=0.5, cumulative upwards."""
    buckets = Buckets((0.1, 0.5, 1.0))
    for value in (0.05, 0.5, 0.7, 3.0):
        buckets.observe(value)
    assert [("0.1", 1.0), ("0.5", 2.0), ("1.0", 3.0), ("+Inf", 4.0)] == buckets.cumulative()
    assert 4.25 == buckets.total


def test_outcomes_are_counted_by_target_outcome_and_cause() -> None:
    """A failure with a retry, then a success: one of each, labelled as the events say."""
    metrics = WorkerMetrics()
    error = ErrorInfo(type="Boom", message="no")
    failed = AttemptFailed(
        event_id="e/1/f",
        execution_id="e",
        attempt=1,
        at=AT,
        cause=FailureCause.EXCEPTION,
        error=error,
    )
    retry = RetryScheduled(
        event_id="e/1/r", execution_id="e", attempt=1, at=AT, next_attempt=2, delay_s=1, due_at=AT
    )
    ok = AttemptSucceeded(event_id="e/2/s", execution_id="e", attempt=2, at=AT)
    done = ExecutionSucceeded(event_id="e/2/x", execution_id="e", attempt=2, at=AT)
    metrics.attempts.attempt_started("t", None)
    metrics.attempts.outcome_recorded("t", (failed, retry))
    metrics.attempts.attempt_started("t", 0.02)
    metrics.attempts.outcome_recorded("t", (ok, done))
    found = samples(metrics)

    assert 2 == found[("ricochet_attempts_started_total", (("target", "t"),))]
    failed_key = (("cause", "exception"), ("outcome", "failed"), ("target", "t"))
    assert 1 == found[("ricochet_attempts_ended_total", failed_key)]
    ok_key = (("cause", ""), ("outcome", "succeeded"), ("target", "t"))
    assert 1 == found[("ricochet_attempts_ended_total", ok_key)]
    assert 1 == found[("ricochet_retries_scheduled_total", (("target", "t"),))]
    assert 1 == found[("ricochet_retry_lateness_seconds_count", (("target", "t"),))]


def test_two_workers_in_one_process_count_apart() -> None:
    """A registry per worker, never the global one."""
    first, second = WorkerMetrics(), WorkerMetrics()
    first.attempts.attempt_started("t", None)
    assert ("ricochet_attempts_started_total", (("target", "t"),)) not in samples(second)
