"""Faults under load, counted: what ``test_faults*.py`` and ``tests/bench/bench_faults.py`` share.

The load is issue 15's: ``retries=0`` executions (``p.slow_quick``, a 0.1 s body)
and executions with ``retries=(2, 0.5)`` whose first attempt fails
(``p.fails_first``), interleaved, all submitted before the workers start, so a fault
injected once a part has run meets running attempts, queued work and retries waiting
in delay queues at once.

Every count comes from two independent sources: the log (a fresh fold after the run:
ended, stuck, attempts, when work flowed again) and the ledger the task bodies write
(``process_tasks.mark``: one line per body run, so an attempt run twice shows as two
lines, whatever the log says).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ricochet.contracts import (
    AttemptFailed,
    AttemptStarted,
    Event,
    ExecutionFailed,
    ExecutionRequested,
    RetryScheduled,
)
from ricochet.engine import ExecutionState, Status, project
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests.integration.harness import log_events
from tests.integration.processes import rabbitmqctl

ONCE = "p.slow_quick"
"""``retries=0``: its body must never run twice (SPEC 7.2)."""
RETRIED = "p.fails_first"
"""``retries=(2, 0.5)``, attempt 1 fails: its retry waits 0.5 s in a delay queue."""
RETRIES = {ONCE: 0, RETRIED: 2}
SUBMIT_CHUNK = 250


@dataclass(frozen=True, slots=True)
class Load:
    once: int = 2000
    retried: int = 500

    @property
    def executions(self) -> int:
        return self.once + self.retried


@dataclass(frozen=True, slots=True)
class Batch:
    """The executions submitted, by target."""

    once: tuple[str, ...]
    retried: tuple[str, ...]

    @property
    def ids(self) -> tuple[str, ...]:
        return self.once + self.retried


@dataclass(frozen=True, slots=True)
class Fault:
    """What was done to the broker, and when (wall clock, as the events' ``at``)."""

    name: str
    began: float
    ended: float


@dataclass(frozen=True, slots=True)
class Counts:
    """One fault's figures (times in seconds from the fault's start)."""

    fault: str
    executions: int
    ended: int
    stuck: int
    failed: int
    """Ended, but not succeeded: every body here succeeds by its last attempt, so a
    failure is a false loss (a live attempt declared ``worker_lost``) or worse."""
    double_runs: int
    """(execution, attempt) pairs whose body ran more than once (ledger)."""
    over_limit: int
    """Executions with more than 1 + retries attempts run (ledger)."""
    retries_due_in_fault: int
    """Delayed retries due between the fault's start and end (log)."""
    retries_run: int
    """``p.fails_first`` executions whose attempt 2 ran (ledger)."""
    fault_s: float
    """From the fault's start until the command that made it returned (for a broker
    restart: until ``start_app`` and ``await_startup`` returned)."""
    stall_s: float | None
    """How long until work flowed again: the longest pause between two attempt starts
    from the fault's start on (log)."""
    all_ended_s: float | None
    """Until the last execution ended (log)."""
    projector_matches: bool | None = None
    """The projector's states equal a fresh fold of the log (None: not checked)."""
    failures: tuple[str, ...] = ()
    """How each failed or stuck execution's attempts went, in words: what such a count
    needs to be understood from a CI log alone (not a column of the table)."""


RESTART_PAUSE_S = 5.0


def restore_broker() -> None:
    """Start the broker's application (a no-op if it runs) and wait until it serves."""
    rabbitmqctl("start_app")
    rabbitmqctl("await_startup")


async def restart_broker(pause_s: float = RESTART_PAUSE_S) -> Fault:
    """``rabbitmqctl stop_app; sleep 5; start_app``, restoring it whatever happens."""
    began = time.time()
    try:
        await asyncio.to_thread(rabbitmqctl, "stop_app")
        await asyncio.sleep(pause_s)
    finally:
        await asyncio.to_thread(restore_broker)
    return Fault(f"stop_app; sleep {pause_s:g}; start_app", began, time.time())


async def close_all_connections(vhost: str) -> Fault:
    """Every connection of ``vhost`` (only the run's: other runs share the broker)."""
    began = time.time()
    await asyncio.to_thread(
        rabbitmqctl, "close_all_connections", "--vhost", vhost, "fault test: cut them all"
    )
    return Fault("close_all_connections", began, time.time())


def interleaved(load: Load) -> list[str]:
    """The targets in submission order: the retried ones spread evenly among the rest."""
    order = []
    for index in range(load.executions):
        due = (
            index + 1
        ) * load.retried // load.executions - index * load.retried // load.executions
        order.append(RETRIED if due else ONCE)
    return order


async def submit(client: Client, load: Load) -> Batch:
    """Submit the whole load (many in flight at once); return the ids by target."""
    targets = interleaved(load)
    ids: list[str] = []
    for start in range(0, len(targets), SUBMIT_CHUNK):
        chunk = targets[start : start + SUBMIT_CHUNK]
        handles = await asyncio.gather(
            *(client.submit(t, [start + i]) for i, t in enumerate(chunk))
        )
        ids.extend(h.id for h in handles)
    once = tuple(i for i, t in zip(ids, targets, strict=True) if t == ONCE)
    retried = tuple(i for i, t in zip(ids, targets, strict=True) if t == RETRIED)
    return Batch(once, retried)


def bodies_run(batch: Batch, runs: Callable[[str], list[str]]) -> int:
    return sum(len(runs(i)) for i in batch.ids)


READ_TIMEOUT_S = 60.0


async def read_log(settings: Settings, tries: int = 30) -> list[Event]:
    """The whole log, read by a fresh connection, trying again while a node's stream
    replica is not running: a read that lands on a node during a leader election is
    refused with ``RESOURCE_ERROR`` (the connection closes) or ``PRECONDITION_FAILED``.
    The counts must not fail on the reading of them."""
    for attempt in range(tries):
        try:
            return await asyncio.wait_for(log_events(settings), READ_TIMEOUT_S)
        except asyncio.CancelledError:
            # aiormq cancels a closed connection's pending calls: that is the refusal,
            # unless this task itself is being cancelled.
            task = asyncio.current_task()
            if attempt == tries - 1 or (task is not None and task.cancelling()):
                raise
        except Exception:
            if attempt == tries - 1:
                raise
        await asyncio.sleep(1.0)
    raise AssertionError("unreachable")


async def until_ended(
    settings: Settings, batch: Batch, timeout: float, every: float = 1.0
) -> list[Event]:
    """The log once every execution of ``batch`` ended in a fresh fold, or at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        events = await read_log(settings)
        states = project(events).executions
        if all(_ended(states.get(i)) for i in batch.ids) or time.monotonic() > deadline:
            return events
        await asyncio.sleep(every)


def _ended(state: ExecutionState | None) -> bool:
    return state is not None and state.is_terminal


def count(
    fault: Fault, batch: Batch, events: Sequence[Event], runs: Callable[[str], list[str]]
) -> Counts:
    """The figures of one fault, from the log and the ledger."""
    states = project(events).executions
    ended = [states[i] for i in batch.ids if _ended(states.get(i))]
    mine = set(batch.ids)
    starts = sorted(
        e.at.timestamp() for e in events if isinstance(e, AttemptStarted) and e.execution_id in mine
    )
    gaps = [b - a for a, b in itertools.pairwise(starts) if b > fault.began]
    due_in_fault = [
        e
        for e in events
        if isinstance(e, RetryScheduled)
        and e.execution_id in mine
        and fault.began <= e.due_at.timestamp() <= fault.ended
    ]
    ledger = {i: [int(line.split()[0]) for line in runs(i)] for i in batch.ids}
    limits = {i: RETRIES[ONCE] for i in batch.once} | {i: RETRIES[RETRIED] for i in batch.retried}
    last_end = max((s.ended_at.timestamp() for s in ended if s.ended_at), default=None)
    return Counts(
        fault=fault.name,
        executions=len(batch.ids),
        ended=len(ended),
        stuck=len(batch.ids) - len(ended),
        failed=sum(1 for state in ended if state.status is not Status.SUCCEEDED),
        double_runs=sum(len(a) - len(set(a)) for a in ledger.values()),
        over_limit=sum(1 for i, a in ledger.items() if a and max(a) > 1 + limits[i]),
        retries_due_in_fault=len({(e.execution_id, e.next_attempt) for e in due_in_fault}),
        retries_run=sum(1 for i in batch.retried if 2 in ledger[i]),
        fault_s=round(fault.ended - fault.began, 2),
        stall_s=round(max(gaps), 2) if gaps else None,
        all_ended_s=round(last_end - fault.began, 2) if last_end is not None else None,
        failures=tuple(
            _story(i, events, fault.began)
            for i in batch.ids
            if not _ended(states.get(i)) or states[i].status is not Status.SUCCEEDED
        )[:FAILURES_TOLD],
    )


FAILURES_TOLD = 5


def _story(execution_id: str, events: Sequence[Event], began: float) -> str:
    """One execution's attempt events, with times from the fault's start: who started
    each attempt when, and how (and by whom) each ended."""
    told = []
    for event in events:
        if event.execution_id != execution_id or isinstance(event, ExecutionRequested):
            continue
        line = f"{event.at.timestamp() - began:+.2f}s {event.type} #{event.attempt}"
        line += f" by {event.worker}"
        if isinstance(event, AttemptFailed | ExecutionFailed):
            line += f" ({event.cause}: {event.error.message[:160]})"
        told.append(line)
    return f"{execution_id}: " + "; ".join(told)


COLUMNS = (
    ("fault", "fault"),
    ("executions", "executions"),
    ("ended", "ended"),
    ("stuck", "stuck"),
    ("failed", "failed"),
    ("double_runs", "attempts run twice"),
    ("over_limit", "over 1 + retries"),
    ("retries_due_in_fault", "retries due in the fault"),
    ("retries_run", "delayed retries run"),
    ("fault_s", "fault lasted, s"),
    ("stall_s", "no attempt started for, s"),
    ("all_ended_s", "all ended, s"),
    ("projector_matches", "projector = fresh fold"),
)


def render(rows: Sequence[Counts]) -> str:
    """A Markdown table, one row per fault."""
    head = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    rule = "|" + "|".join(" --- " for _ in COLUMNS) + "|"
    body = [
        "| " + " | ".join(_cell(getattr(row, name)) for name, _ in COLUMNS) + " |" for row in rows
    ]
    return "\n".join([head, rule, *body])


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
