"""CPU per attempt of what observing adds, in-process, without the broker (issue 12).

    .venv/bin/python -m tests.bench.bench_observe_costs [--attempts 20000]

Less at the mercy of the machine's other load than a drain: each figure is this
process's CPU time (``time.process_time``) over many attempts. Metrics: the calls
a worker makes for one attempt (start, run, outcome, group commit). Spans: one
attempt's span without a parent and with a trigger's ``traceparent``, with the
OpenTelemetry API only (no provider: non-recording spans) and with the SDK and a
batch processor whose exporter drops everything. Each span mode runs in a
process of its own, since a tracer provider can be set once per process.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from ricochet.contracts import AttemptSucceeded, ExecutionSucceeded, WorkMessage

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def cpu_us(step: Callable[[], None], attempts: int) -> float:
    began = time.process_time()
    for _ in range(attempts):
        step()
    return (time.process_time() - began) / attempts * 1e6


def metrics_cost(attempts: int) -> None:
    from ricochet.workers.observe.metrics import WorkerMetrics

    metrics = WorkerMetrics()
    at = datetime.now(UTC)
    outcome = (
        AttemptSucceeded(event_id="e/1/s", execution_id="e", attempt=1, at=at),
        ExecutionSucceeded(event_id="e/1/x", execution_id="e", attempt=1, at=at),
    )

    def one_attempt() -> None:
        metrics.attempts.attempt_started("bench.noop", None)
        metrics.attempts.attempt_ran("bench.noop", 0.0001)
        metrics.attempts.outcome_recorded("bench.noop", outcome)
        metrics.commits.confirmed(3)

    print(f"metrics          {cpu_us(one_attempt, attempts):6.1f} us CPU per attempt")


def span_cost(mode: str, attempts: int) -> None:
    if mode == "sdk":
        import tests.bench.traced_noop_tasks  # noqa: F401 - installs the SDK provider
    from ricochet.workers.observe.tracing import attempt_span

    work = WorkMessage(execution_id="e" * 32, target="bench.noop")

    class Returned:
        cause = None

    for label, headers in (("no parent", {}), ("traceparent", {"traceparent": TRACEPARENT})):

        def one_span(headers: dict[str, str] = headers) -> None:
            with attempt_span(headers, work, 2, None) as span:
                span.ended(Returned)

        print(f"span {mode:3} {label:11} {cpu_us(one_span, attempts):6.1f} us CPU per attempt")


def main(arguments: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--attempts", type=int, default=20_000)
    parser.add_argument("--only", choices=["metrics", "api", "sdk"])
    options = parser.parse_args(arguments)
    if options.only == "metrics":
        metrics_cost(options.attempts)
    elif options.only is not None:
        span_cost(options.only, options.attempts)
    else:
        for only in ("metrics", "api", "sdk"):
            command = [sys.executable, "-m", "tests.bench.bench_observe_costs"]
            subprocess.run(
                [*command, "--only", only, "--attempts", str(options.attempts)], check=True
            )


if __name__ == "__main__":
    main(sys.argv[1:])
