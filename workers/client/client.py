"""The client: submit executions and wait for their results (see ``client.dispatch``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from types import TracebackType
from typing import Any

from aio_pika.abc import AbstractExchange, AbstractRobustConnection

from ricochet.contracts import Json, TooLarge, TriggerV1, check_args, encode
from ricochet.engine import ExecutionState, NoteRerun, Rejected, RequestExecution, decide
from ricochet.errors import NoClient, UnknownTarget
from ricochet.workers.amqp.broker import connect, persistent_message, publish, publishing_channel
from ricochet.workers.amqp.declaring import ensure_core
from ricochet.workers.amqp.topology import Names
from ricochet.workers.client.cancel import Canceller
from ricochet.workers.client.dispatch import Dispatcher, execution_id_for, rejected
from ricochet.workers.client.handle import Handle
from ricochet.workers.client.watcher import ExecutionWatcher
from ricochet.workers.clock import Clock, utc_now
from ricochet.workers.log.recorder import EventRecorder
from ricochet.workers.settings import Settings

_current: ContextVar[Client | None] = ContextVar("ricochet_client", default=None)


def current_client() -> Client:
    client = _current.get()
    if client is None:
        raise NoClient("no Ricochet client is open: use `async with Client(settings):`")
    return client


class Client:
    """An open connection for submitting work and waiting on it."""

    def __init__(self, settings: Settings, clock: Clock = utc_now, source: str = "api") -> None:
        self.settings = settings
        self.names = Names(settings.namespace)
        self._clock = clock
        self._source = source
        self._connection: AbstractRobustConnection | None = None
        self._dispatcher: Dispatcher | None = None
        self._triggers: AbstractExchange | None = None
        self._canceller: Canceller | None = None
        self._watcher = ExecutionWatcher(self.names)
        self._token: Any = None

    async def __aenter__(self) -> Client:
        self._connection = await connect(self.settings, "client")
        try:
            await self._open(self._connection)
        except BaseException:  # a robust connection left open would reconnect for ever
            await self._watcher.stop()
            await self._connection.close()
            raise
        self._token = _current.set(self)
        return self

    async def _open(self, connection: AbstractRobustConnection) -> None:
        """Declare the topology (or, as a ``client`` user, check it) and open what
        submitting and waiting need."""
        await ensure_core(connection, self.settings)
        channel = await publishing_channel(connection)
        limits = self.settings.limits
        recorder = await EventRecorder.open(channel, self.names, limits)
        work = await channel.get_exchange(self.names.work, ensure=False)
        self._dispatcher = Dispatcher(recorder, work, self._clock, limits)
        self._canceller = Canceller(connection, self.names, recorder, self._clock, self._source)
        self._triggers = await channel.get_exchange(self.names.triggers, ensure=False)
        await self._watcher.start(connection, "next")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._watcher.stop()
            if self._connection is not None:
                await self._connection.close()
        finally:
            self._forget_current()

    def _forget_current(self) -> None:
        """Undo ``__aenter__``'s ``current_client``. Closed from another task (as
        ``asyncio.wait_for`` does, with a copy of the context), the token cannot be
        reset there; that copy's variable is cleared instead, and the close goes on."""
        try:
            _current.reset(self._token)
        except ValueError:
            if _current.get() is self:
                _current.set(None)

    async def submit(
        self,
        target: str,
        args: Sequence[Json] = (),
        kwargs: Mapping[str, Json] | None = None,
        *,
        parent_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Handle:
        """Record the request, then publish attempt 1; raises ``UnknownTarget``.

        Arguments outside the shared limits (``contracts.limits``: nesting depth,
        64-bit integers, finite floats, bytes) raise ``LimitExceeded``, a
        ``ValueError``, and nothing is recorded or published.

        With an ``idempotency_key`` the request goes through the trigger intake, the
        one place that decides keys, and the handle is that key's execution (an
        unknown target then ends it failed with cause ``rejected``).
        """
        assert self._dispatcher is not None, "use `async with Client(...)`"
        if idempotency_key is not None:
            return await self._trigger(target, args, kwargs, idempotency_key)
        check_args(args, kwargs or {}, self.settings.limits)  # before watching: nothing to undo
        execution_id = uuid.uuid4().hex
        self._watcher.watch(execution_id)
        request = RequestExecution(
            execution_id,
            target,
            self._clock(),
            tuple(args),
            dict(kwargs or {}),
            parent_id,
            idempotency_key,
            self._source,
        )
        if rejected(await self._dispatcher.start(request)):
            raise UnknownTarget(f"no worker queue serves target {target!r}")
        return Handle(execution_id, self)

    async def _trigger(
        self,
        target: str,
        args: Sequence[Json],
        kwargs: Mapping[str, Json] | None,
        key: str,
    ) -> Handle:
        assert self._triggers is not None
        limits = self.settings.limits
        check_args(args, kwargs or {}, limits)
        trigger = TriggerV1(
            target=target, args=tuple(args), kwargs=dict(kwargs or {}), idempotency_key=key
        )
        body = encode(trigger)
        if len(body) > limits.max_trigger_bytes:
            raise TooLarge(
                f"the trigger is {len(body)} bytes, over the limit of {limits.max_trigger_bytes}"
            )
        handle = self.follow(execution_id_for(key))
        await publish(self._triggers, persistent_message(body), routing_key=target)
        return handle

    async def rerun(self, original: ExecutionState) -> Handle:
        """A new execution of the same target and inputs, linked both ways in the log:
        its request names the original, and the original records the rerun."""
        assert self._dispatcher is not None, "use `async with Client(...)`"
        assert original.target is not None, "the original's request is not in the log"
        execution_id = uuid.uuid4().hex
        self._watcher.watch(execution_id)
        request = RequestExecution(
            execution_id,
            original.target,
            self._clock(),
            original.args,
            dict(original.kwargs),
            source="rerun",
            rerun_of=original.execution_id,
        )
        if rejected(await self._dispatcher.start(request)):
            raise UnknownTarget(f"no worker queue serves target {original.target!r}")
        note = decide(NoteRerun(execution_id, self._clock()), original)
        assert not isinstance(note, Rejected)
        await self._dispatcher.record(note)
        return Handle(execution_id, self)

    async def cancel(self, execution_id: str, reason: str = "") -> ExecutionState:
        """Stop an execution: one waiting (to start, or for a retry) ends cancelled now;
        one running finishes its attempt and nothing runs after it (it then ends cancelled
        if that attempt fails, succeeded if it succeeds). Waiters get ``Cancelled``.

        Returns the state once the cancel is on the log. Raises ``UnknownExecution`` if
        the log has no such execution, ``CannotCancel`` if it has already ended. Reads
        the whole retained log once, as ``ricochet status`` does.
        """
        assert self._canceller is not None, "use `async with Client(...)`"
        return await self._canceller.cancel(execution_id, reason)

    def follow(self, execution_id: str) -> Handle:
        """A handle on an execution started elsewhere (a trigger, say), from now on."""
        self._watcher.watch(execution_id)
        return Handle(execution_id, self)

    def state(self, execution_id: str) -> ExecutionState | None:
        """What the log has said so far about an execution this client watches."""
        return self._watcher.state(execution_id)

    async def wait(self, execution_id: str, timeout: float | None = None) -> ExecutionState:
        """The terminal state of an execution this client submitted."""
        return await asyncio.wait_for(asyncio.shield(self._watcher.watch(execution_id)), timeout)
