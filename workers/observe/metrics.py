"""Prometheus metrics of one process, in a registry of its own.

A registry per process object (never the library's global one), so several
workers in one test process count apart. Counters move only after the broker
confirmed what they count, so they agree with the log; gauges that mirror state
kept elsewhere (the supervisor's, the projector's) are read when scraped and
cost nothing between scrapes.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter as CountOf
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from ricochet.contracts import AttemptFailed, AttemptSucceeded, Event, RetryScheduled

LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Retry lateness: the delay queues' floor is 10-50 ms (RABBITMQ.md), a lost retry minutes."""
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 1800.0)
EVENTS_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2000)


class Buckets:
    """One histogram's counts, kept as plain numbers: ``observe`` is a bisect and two adds."""

    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        """Prometheus' buckets: cumulative counts by upper bound, ending with +Inf."""
        running, buckets = 0, []
        for bound, count in zip(
            (*map(floatToGoString, self.bounds), "+Inf"), self.counts, strict=True
        ):
            running += count
            buckets.append((bound, float(running)))
        return buckets


class AttemptMetrics(Collector):
    """What the attempts of one worker did, counted as their events were confirmed.

    Counted in plain dicts and turned into Prometheus families when scraped: at
    thousands of attempts a second, the client library's locked per-sample
    values cost more than the attempt's own bookkeeping.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.started: CountOf[str] = CountOf()
        self.ended: CountOf[tuple[str, str, str]] = CountOf()
        self.retries: CountOf[str] = CountOf()
        self.lateness: dict[str, Buckets] = {}
        self.duration: dict[str, Buckets] = {}
        registry.register(self)

    def attempt_started(self, target: str, lateness_s: float | None) -> None:
        self.started[target] += 1
        if lateness_s is not None:
            _buckets(self.lateness, target, LATENESS_BUCKETS).observe(max(lateness_s, 0.0))

    def attempt_ran(self, target: str, seconds: float) -> None:
        _buckets(self.duration, target, DURATION_BUCKETS).observe(seconds)

    def outcome_recorded(self, target: str, events: Sequence[Event]) -> None:
        """Count the outcome events an attempt recorded (confirmed)."""
        for event in events:
            if isinstance(event, AttemptSucceeded):
                self.ended[(target, "succeeded", "")] += 1
            elif isinstance(event, AttemptFailed):
                self.ended[(target, "failed", event.cause.value)] += 1
            elif isinstance(event, RetryScheduled):
                self.retries[target] += 1

    def collect(self) -> Iterable[Metric]:
        yield _counters(
            "ricochet_attempts_started",
            "Attempts started (their AttemptStarted confirmed and first on the log)",
            ["target"],
            (((target,), n) for target, n in self.started.items()),
        )
        yield _counters(
            "ricochet_attempts_ended",
            "Attempts ended, by outcome (succeeded, failed) and failure cause",
            ["target", "outcome", "cause"],
            self.ended.items(),
        )
        yield _counters(
            "ricochet_retries_scheduled",
            "Retries scheduled",
            ["target"],
            (((target,), n) for target, n in self.retries.items()),
        )
        yield _histograms(
            "ricochet_retry_lateness_seconds",
            "How late a retry started: start time minus due time",
            self.lateness,
        )
        yield _histograms(
            "ricochet_attempt_duration_seconds", "How long an attempt's function ran", self.duration
        )


class CommitMetrics(Collector):
    """Group commit: stream messages published, and how many events each carried."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = 0
        self.events = Buckets(EVENTS_BUCKETS)
        registry.register(self)

    def confirmed(self, events: int) -> None:
        self.messages += 1
        self.events.observe(events)

    def collect(self) -> Iterable[Metric]:
        yield _counter("ricochet_log_messages", "Event-log messages confirmed", self.messages)
        family = HistogramMetricFamily(
            "ricochet_log_events_per_message",
            "Events in one confirmed event-log message (group commit)",
        )
        family.add_metric([], self.events.cumulative(), self.events.total)
        yield family


def _buckets(by_target: dict[str, Buckets], target: str, bounds: Sequence[float]) -> Buckets:
    found = by_target.get(target)
    if found is None:
        found = by_target[target] = Buckets(bounds)
    return found


def _counters(
    name: str, documentation: str, labels: list[str], values: Iterable[tuple[tuple[str, ...], int]]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for label_values, value in sorted(values):
        family.add_metric(list(label_values), value)
    return family


def _histograms(name: str, documentation: str, by_target: dict[str, Buckets]) -> Metric:
    family = HistogramMetricFamily(name, documentation, labels=["target"])
    for target, buckets in sorted(by_target.items()):
        family.add_metric([target], buckets.cumulative(), buckets.total)
    return family


class SupervisorView(Protocol):
    """What the supervisor metrics read, at scrape time."""

    active: bool
    takeovers: int
    attempts_lost: int

    @property
    def unrecoverable(self) -> int: ...

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
        yield _counter(
            "ricochet_supervisor_unrecoverable",
            "Executions whose work the log cannot rebuild (no request): reported and left",
            supervisor.unrecoverable,
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


Dropped = Mapping[tuple[str, str], int]
"""Stream messages not believed, by (stream, reason): ``amqp.trust.EventGate.dropped``."""


class UntrustedCollector(Collector):
    """Stream messages this process's readers dropped because their writer is not among
    ``event_writers``: anything but zero means someone who may write to the log is not
    who they should be (or a writer is missing from the setting)."""

    def __init__(self, dropped: Callable[[], Dropped]) -> None:
        self._dropped = dropped

    def collect(self) -> Iterable[Metric]:
        yield untrusted_family(self._dropped())


def untrusted_family(dropped: Dropped) -> CounterMetricFamily:
    return _counters(
        "ricochet_untrusted_events",
        "Event or checkpoint stream messages dropped as not written by an event writer,"
        " by stream and reason (missing_user_id, not_a_writer); each counted once",
        ["stream", "reason"],
        dropped.items(),
    )


class ProjectorView(Protocol):
    """What the projector metrics read, at scrape time."""

    @property
    def offset(self) -> int | None: ...

    @property
    def untrusted(self) -> Dropped: ...

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
        yield untrusted_family(projector.untrusted)


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

    def watch_untrusted(self, dropped: Callable[[], Dropped]) -> None:
        self.registry.register(UntrustedCollector(dropped))
