"""OpenTelemetry traces across retries (issue 12): every attempt is a span in the trace of
whoever asked for the execution, however many retries it takes."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ricochet.workers.client.client import Client
from ricochet.workers.client.dispatch import execution_id_for
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import eventually, running_worker
from tests.integration.observing import publish_trigger

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The SDK's in-memory exporter behind the (once per process) global tracer provider."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(provider)
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


def attempts_of(exporter: InMemorySpanExporter, execution_id: str) -> list[ReadableSpan]:
    chosen = [
        span
        for span in exporter.get_finished_spans()
        if (span.attributes or {}).get("ricochet.execution_id") == execution_id
    ]
    return sorted(chosen, key=lambda span: str((span.attributes or {})["ricochet.attempt"]))


async def test_a_traced_trigger_gives_each_attempt_a_span_in_its_trace(
    settings: Settings, spans: InMemorySpanExporter
) -> None:
    """Given a trigger with a W3C traceparent, for a task that fails twice then succeeds
    (retries=(2, 0.5, 1)), then there are three attempt spans, each a child of the
    trigger's span in the trigger's trace, saying how each ended and what it waited."""
    async with running_worker(settings, tasks.ALL):
        body = orjson.dumps({"target": "t.backoff", "idempotency_key": "traced-1"})
        traceparent = f"00-{TRACE_ID}-{SPAN_ID}-01"
        await publish_trigger(settings, body, "t.backoff", {"traceparent": traceparent})
        execution_id = execution_id_for("traced-1")
        await eventually(lambda: len(attempts_of(spans, execution_id)) == 3, timeout=20)
    attempts = attempts_of(spans, execution_id)

    assert {TRACE_ID} == {format(s.context.trace_id, "032x") for s in attempts}
    assert {SPAN_ID} == {format(s.parent.span_id, "016x") for s in attempts if s.parent}
    assert [a.attributes for a in attempts] == [
        {
            "ricochet.execution_id": execution_id,
            "ricochet.attempt": number,
            "ricochet.target": "t.backoff",
            **({} if number == 1 else {"ricochet.delay_waited_s": waited}),
            **(
                {"ricochet.outcome": "failed", "ricochet.cause": "exception"}
                if number < 3
                else {"ricochet.outcome": "succeeded"}
            ),
        }
        for number, waited in ((1, 0.0), (2, 0.5), (3, 1.0))
    ]


async def test_submit_inside_a_span_joins_its_trace(
    settings: Settings, client: Client, spans: InMemorySpanExporter
) -> None:
    """Given ``submit`` called inside a span, every attempt (retries included) is in that
    span's trace, as its child."""
    async with running_worker(settings, tasks.ALL):
        with trace.get_tracer("test").start_as_current_span("caller") as caller:
            handle = await client.submit("t.twice_then_ok")
        await handle.wait(timeout=20)
        await eventually(lambda: len(attempts_of(spans, handle.id)) == 3)
    attempts = attempts_of(spans, handle.id)
    context = caller.get_span_context()
    assert {context.trace_id} == {s.context.trace_id for s in attempts}
    assert {context.span_id} == {s.parent.span_id for s in attempts if s.parent}


@pytest.mark.parametrize(
    ("workflow", "child_attempts"), [("w.calls_broken", 2), ("w.calls_flaky", 3)]
)
async def test_a_child_call_is_traced_under_its_parents_attempt(
    settings: Settings,
    client: Client,
    spans: InMemorySpanExporter,
    workflow: str,
    child_attempts: int,
) -> None:
    """Given a workflow (async, or sync in a thread) that calls a child with retries, the
    child's attempts are children of the parent attempt's span, in the same trace."""
    async with running_worker(settings, tasks.ALL):
        handle = await client.submit(workflow, [1] if workflow == "w.calls_flaky" else [])
        await handle.wait(timeout=30)
        await eventually(lambda: len(attempts_of(spans, handle.id)) == 1)
        parent = attempts_of(spans, handle.id)[0]
        children = [
            s
            for s in spans.get_finished_spans()
            if (s.attributes or {}).get("ricochet.parent_id") == handle.id
        ]
    assert len(children) == child_attempts
    assert {parent.context.trace_id} == {s.context.trace_id for s in children}
    assert {parent.context.span_id} == {s.parent.span_id for s in children if s.parent}
