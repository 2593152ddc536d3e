"""OpenTelemetry traces across retries: one span per attempt, in the requester's trace.

The W3C ``traceparent`` a trigger came with (an AMQP header), or the current
span's at ``submit`` or at a child call, travels on the work message as a
header of the same name, and on every retry of it (``delivery.settle``). Each
attempt is a span whose parent is that context, so every retry of one
execution shares the trace. Without the ``tracing`` extra the import fails
quietly and everything here is a no-op; with it but no tracer provider set, the
API makes a (non-recording) span only for an attempt whose work carries a trace
context, so that its child calls carry it on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ricochet.contracts import WorkMessage
from ricochet.workers.amqp.topology import DELAY_HEADER

TRACE_HEADER = "traceparent"

try:  # the optional extra: pip install 'ricochet-retries[tracing]'
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace import Span, SpanKind, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - exercised where the extra is not installed
    otel_trace = None  # type: ignore[assignment]

ENABLED = otel_trace is not None
_PROPAGATOR = TraceContextTextMapPropagator() if ENABLED else None
_TRACER = otel_trace.get_tracer("ricochet") if ENABLED else None
"""A proxy until a tracer provider is set, then the provider's tracer: made once, as
making one per attempt costs as much as the span."""


def traceparent_of(headers: Mapping[str, Any] | None) -> str | None:
    """The W3C trace context carried in AMQP ``headers``, if any (a string; anything else
    is ignored, since headers come from other services)."""
    value = (headers or {}).get(TRACE_HEADER)
    return value if isinstance(value, str) and len(value) <= 128 else None


def current_traceparent() -> str | None:
    """The current span's context as a ``traceparent``, to carry on a new work message."""
    if _PROPAGATOR is None:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(TRACE_HEADER)


class AttemptSpan:
    """The span of one attempt (or nothing, with tracing off)."""

    def __init__(self, span: Span | None) -> None:
        self._span = span

    def ended(self, ran: object) -> None:
        """Record how the attempt ended: ``ran`` is the runner's ``Returned`` or ``Raised``."""
        if self._span is None:
            return
        cause = getattr(ran, "cause", None)
        if cause is None:
            self._span.set_attribute("ricochet.outcome", "succeeded")
            return
        error = getattr(ran, "error", None)
        self._span.set_attribute("ricochet.outcome", "failed")
        self._span.set_attribute("ricochet.cause", str(getattr(cause, "value", cause)))
        message = getattr(error, "message", "") if error is not None else ""
        self._span.set_status(StatusCode.ERROR, str(message)[:512])


NO_SPAN = AttemptSpan(None)


def _provider_set() -> bool:
    """Has the process set a tracer provider (the SDK's, say)? Until then spans record
    nothing, and an attempt with no trace context to pass on needs none."""
    return not isinstance(otel_trace.get_tracer_provider(), otel_trace.ProxyTracerProvider)


@contextmanager
def attempt_span(
    headers: Mapping[str, Any] | None, work: WorkMessage, attempt: int, due_at: float | None
) -> Iterator[AttemptSpan]:
    """A span around one attempt's run, the child of the context its work message carries."""
    carried = traceparent_of(headers)
    if _PROPAGATOR is None or _TRACER is None or (carried is None and not _provider_set()):
        yield NO_SPAN  # nothing would record it, and there is no trace to carry on
        return
    parent = _PROPAGATOR.extract({TRACE_HEADER: carried}) if carried else None
    with _TRACER.start_as_current_span(
        f"attempt {work.target}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes=_attributes(headers, work, attempt, due_at),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield AttemptSpan(span)


def _attributes(
    headers: Mapping[str, Any] | None, work: WorkMessage, attempt: int, due_at: float | None
) -> dict[str, str | int | float]:
    attributes: dict[str, str | int | float] = {
        "ricochet.execution_id": work.execution_id,
        "ricochet.attempt": attempt,
        "ricochet.target": work.target,
    }
    delay_ms = (headers or {}).get(DELAY_HEADER)
    if isinstance(delay_ms, int) and not isinstance(delay_ms, bool):
        attributes["ricochet.delay_waited_s"] = delay_ms / 1000
    elif due_at is not None:
        attributes["ricochet.delay_waited_s"] = 0.0
    if work.parent_id is not None:
        attributes["ricochet.parent_id"] = work.parent_id
    return attributes
