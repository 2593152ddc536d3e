"""Starting an execution: record ``ExecutionRequested``, then publish its first attempt.

Shared by the client (``submit``) and the trigger intake. The work is published
until confirmed, through broker trouble, so a request on the log is never left
without its work while the requester lives; the supervisor covers one that died.
The work message is published with ``mandatory``: when no queue serves the
target the broker returns it, and the execution is recorded as failed (cause
``rejected``) instead of waiting forever.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from aio_pika.abc import AbstractExchange
from aio_pika.exceptions import PublishError

from ricochet.contracts import (
    ATTEMPT_HEADER,
    DEFAULT_LIMITS,
    REQUESTED_AT_HEADER,
    ErrorInfo,
    Event,
    Limits,
    NotReadable,
    TooLarge,
    WorkMessage,
    check_args,
    encode,
)
from ricochet.contracts.limits import check_target
from ricochet.engine import Rejected, RejectExecution, RequestExecution, decide, fold, initial
from ricochet.engine.keys import execution_id_for_key
from ricochet.errors import DispatchInterrupted
from ricochet.workers.amqp.broker import TRANSIENT, persistent_message, publish_until_confirmed
from ricochet.workers.clock import Clock
from ricochet.workers.log.recorder import EventRecorder
from ricochet.workers.observe.tracing import TRACE_HEADER, current_traceparent


class Dispatcher:
    """Records requests and publishes their first attempt."""

    def __init__(
        self,
        recorder: EventRecorder,
        work: AbstractExchange,
        clock: Clock,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self._recorder = recorder
        self._work = work
        self._clock = clock
        self._limits = limits

    @property
    def limits(self) -> Limits:
        """What this dispatcher's requests must keep to."""
        return self._limits

    async def start(
        self,
        request: RequestExecution,
        also: tuple[Event, ...] = (),
        trace: str | None = None,
    ) -> tuple[Event, ...]:
        """The events recorded; the last is ``ExecutionFailed`` when no queue serves the target
        or the work could not be published at all. ``also``: facts recorded with the request,
        in the same stream message (a trigger's reply request). ``trace``: a W3C traceparent
        for the work message (by default the current span's), so every attempt joins the
        requester's trace.

        Raises ``LimitExceeded`` (a ``ValueError``), having recorded nothing, when the
        arguments break a limit or the target does not fit a routing key.
        """
        check_target(request.target)
        check_args(request.args, request.kwargs, self._limits)
        requested = decide(request, initial(request.execution_id))
        assert not isinstance(requested, Rejected), "a new execution is always accepted"
        body = self._work_body(request)
        await self._recorder.record(requested + also)
        headers = _first_attempt_headers(request, trace or current_traceparent())
        message = persistent_message(body, headers=headers)
        try:
            await publish_until_confirmed(self._work, message, request.target)
        except PublishError:
            return requested + await self._reject(requested, request.target)
        except TRANSIENT as err:  # closed for good while the broker was away
            raise DispatchInterrupted(request.execution_id) from err
        except Exception as err:  # the client refused to send it: it must not stay pending
            why = f"the work could not be published: {type(err).__name__}: {err}"
            return requested + await self._reject(requested, request.target, why)
        return requested

    def _work_body(self, request: RequestExecution) -> bytes:
        """The first attempt's work message, encoded; refused before anything is recorded."""
        work = WorkMessage(
            execution_id=request.execution_id,
            target=request.target,
            args=request.args,
            kwargs=request.kwargs,
            parent_id=request.parent_id,
        )
        try:
            body = encode(work)
        except TypeError as err:  # a target or id no JSON can carry (a lone surrogate, say)
            raise NotReadable(f"the work message cannot be written as JSON: {err}") from err
        if len(body) > self._limits.max_work_bytes:
            raise TooLarge(
                f"the work message is {len(body)} bytes, over the limit of"
                f" {self._limits.max_work_bytes}"
            )
        return body

    async def record(self, events: tuple[Event, ...]) -> None:
        """Record other facts about executions (a rerun's link back, say)."""
        await self._recorder.record(events)

    async def _reject(
        self, requested: tuple[Event, ...], target: str, why: str | None = None
    ) -> tuple[Event, ...]:
        error = (
            ErrorInfo(type="UnknownTarget", message=f"no worker queue serves {target!r}")
            if why is None
            else ErrorInfo(type="NotPublished", message=why)
        )
        decision = decide(RejectExecution(error, self._clock()), fold(requested))
        assert not isinstance(decision, Rejected), "a pending execution can always be rejected"
        await self._recorder.record(decision)
        return decision


def _first_attempt_headers(
    request: RequestExecution, traceparent: str | None
) -> dict[str, int | str]:
    """Attempt 1, the request time (where a retried parent looks for its children), and
    the trace to join."""
    headers: dict[str, int | str] = {
        ATTEMPT_HEADER: 1,
        REQUESTED_AT_HEADER: round(request.now.timestamp() * 1000),
    }
    if traceparent is not None:
        headers[TRACE_HEADER] = traceparent
    return headers


def execution_id_for(key: str | None) -> str:
    """Deterministic for an idempotency key (a second line of defence), random otherwise."""
    if key is None:
        return uuid.uuid4().hex
    return execution_id_for_key(key)


def rejected(events: Sequence[Event]) -> bool:
    """Did dispatching end the execution at once (unknown target)?"""
    return bool(events) and events[-1].type == "execution_failed.v1"
