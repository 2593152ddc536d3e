"""Prometheus metrics of one process, in a registry of its own.

A registry per process object (never the library's global one), so several
workers in one test process count apart. Counters move only after the broker
confirmed what they count, so they agree with the log; gauges that mirror state
kept elsewhere (the supervisor's, the projector's) are read when scraped and
cost nothing between scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ricochet.contracts import AttemptFailed, AttemptSucceeded, Event, RetryScheduled

LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Retry lateness: the delay queues' floor is 10-50 ms (RABBITMQ.md), a lost retry minutes."""
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 1800.0)
EVENTS_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2000)


class AttemptMetrics:
    """What the attempts of one worker did, counted as their events were confirmed."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.started = Counter(
            "ricochet_attempts_started",
            "Attempts started (their AttemptStarted confirmed and first on the log)",
            ["target"],
            registry=registry,
        )
        self.ended = Counter(
            "ricochet_attempts_ended",
            "Attempts ended, by outcome (succeeded, failed) and failure cause",
            ["target", "outcome", "cause"],
            registry=registry,
        )
        self.retries = Counter(
            "ricochet_retries_scheduled", "Retries scheduled", ["target"], registry=registry
        )
        self.lateness = Histogram(
            "ricochet_retry_lateness_seconds",
            "How late a retry started: start time minus due time",
            ["target"],
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )
        self.duration = Histogram(
            "ricochet_attempt_duration_seconds",
            "How long an attempt's function ran",
            ["target"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )

    def attempt_started(self, target: str, lateness_s: float | None) -> None:
        self.started.labels(target).inc()
        if lateness_s is not None:
            self.lateness.labels(target).observe(max(lateness_s, 0.0))

    def attempt_ran(self, target: str, seconds: float) -> None:
        self.duration.labels(target).observe(seconds)

    def outcome_recorded(self, target: str, events: Sequence[Event]) -> None:
        """Count the outcome events an attempt recorded (confirmed)."""
        for event in events:
            if isinstance(event, AttemptSucceeded):
                self.ended.labels(target, "succeeded", "").inc()
            elif isinstance(event, AttemptFailed):
                self.ended.labels(target, "failed", event.cause.value).inc()
            elif isinstance(event, RetryScheduled):
                self.retries.labels(target).inc()


class CommitMetrics:
    """Group commit: stream messages published, and how many events each carried."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "ricochet_log_messages", "Event-log messages confirmed", registry=registry
        )
        self.events = Histogram(
            "ricochet_log_events_per_message",
            "Events in one confirmed event-log message (group commit)",
            buckets=EVENTS_BUCKETS,
            registry=registry,
        )

    def confirmed(self, events: int) -> None:
        self.messages.inc()
        self.events.observe(events)


class SupervisorView(Protocol):
    """What the supervisor metrics read, at scrape time."""

    active: bool
    takeovers: int
    attempts_lost: int

    @property
    def log_lag(self) -> int | None: ...

    @property
    def trigger_counts(self) -> dict[str, int]: ...


class SupervisorCollector(Collector):
    """The supervisor's state, read when scraped (nothing on its hot paths)."""

    def __init__(self, supervisor: Callable[[], SupervisorView | None]) -> None:
        self._supervisor = supervisor

    def collect(self) -> Iterable[Metric]:
        supervisor = self._supervisor()
        if supervisor is None:
            return
        yield _gauge("ricochet_supervisor_active", "1 on the active supervisor", supervisor.active)
        yield _counter(
            "ricochet_supervisor_takeovers",
            "Times this process became the active supervisor",
            supervisor.takeovers,
        )
        yield _counter(
            "ricochet_supervisor_attempts_lost",
            "Attempts this supervisor recorded as worker_lost (their workers fell silent)",
            supervisor.attempts_lost,
        )
        triggers = CounterMetricFamily(
            "ricochet_triggers", "Triggers taken, by result", labels=["result"]
        )
        for result, count in sorted(supervisor.trigger_counts.items()):
            triggers.add_metric([result], count)
        yield triggers
        lag = supervisor.log_lag
        if lag is not None:
            yield _gauge(
                "ricochet_supervisor_log_lag", "Stream messages the supervisor has yet to read", lag
            )


class ProjectorView(Protocol):
    """What the projector metrics read, at scrape time."""

    @property
    def offset(self) -> int | None: ...

    @property
    def unreadable(self) -> int: ...

    tail: int | None

    def status_counts(self) -> dict[str, int]: ...


class ProjectorCollector(Collector):
    """Executions by status, how far the fold is behind the stream, what it skipped."""

    def __init__(self, projector: ProjectorView) -> None:
        self._projector = projector

    def collect(self) -> Iterable[Metric]:
        projector = self._projector
        by_status = GaugeMetricFamily(
            "ricochet_executions", "Executions in the projection, by status", labels=["status"]
        )
        for status, count in sorted(projector.status_counts().items()):
            by_status.add_metric([status], count)
        yield by_status
        offset = -1 if projector.offset is None else projector.offset
        yield _gauge("ricochet_projector_offset", "Last stream offset folded in", offset)
        if projector.tail is not None:
            yield _gauge("ricochet_stream_tail_offset", "Last offset on the stream", projector.tail)
            yield _gauge(
                "ricochet_projector_lag",
                "Stream messages not folded yet (tail minus folded offset)",
                max(projector.tail - offset, 0),
            )
        yield _counter(
            "ricochet_projector_unreadable",
            "Stream messages skipped as unreadable",
            projector.unreadable,
        )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=float(value))


class WorkerMetrics:
    """Every metric of one worker process, in its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.attempts = AttemptMetrics(self.registry)
        self.commits = CommitMetrics(self.registry)
        self.running = Gauge(
            "ricochet_attempts_running", "Attempts running on this worker", registry=self.registry
        )

    def watch_running(self, count: Callable[[], int]) -> None:
        self.running.set_function(lambda: float(count()))

    def watch_supervisor(self, supervisor: Callable[[], SupervisorView | None]) -> None:
        self.registry.register(SupervisorCollector(supervisor))
