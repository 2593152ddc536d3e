"""Every error Ricochet raises, in one place, under one base class.

``except ricochet.RicochetError`` catches all of them. Each also keeps the
built-in base a caller would have caught before (``ValueError`` for bad input,
``LookupError`` for something not found, ``ConnectionError`` for the broker), so
code written against those keeps working.

This module imports nothing of Ricochet's at run time: every layer may use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ricochet.contracts.failure import ErrorInfo


class RicochetError(Exception):
    """The base of every error Ricochet raises."""


# -- bad input: never retried -------------------------------------------------------------


class DecodeError(RicochetError, ValueError):
    """The bytes are not JSON, or not the expected shape: bad input, never retried."""


class LimitExceeded(RicochetError, ValueError):
    """A value breaks one of the shared limits; the message is one line saying which."""


class TooLarge(LimitExceeded):
    """The value is readable, but bigger in bytes than its limit."""


class NotReadable(LimitExceeded):
    """The value could be written but not read back as it was (or not written at all)."""


class InvalidRetryPolicy(RicochetError, ValueError):
    """A ``retries=`` value that makes no sense; raised when the task is declared."""

    def __init__(self, task_name: str, value: object, why: str) -> None:
        super().__init__(f"task {task_name!r}: invalid retries={value!r}: {why}")
        self.task_name = task_name
        self.value = value


class InvalidTimeout(RicochetError, ValueError):
    """A ``timeout=`` that is not a positive number of seconds."""


class InvalidRetryFilter(RicochetError, ValueError):
    """A ``retry_on=``/``dont_retry=`` that is not a tuple of exception classes; raised
    when the task is declared."""

    def __init__(self, task_name: str, argument: str, value: object, why: str) -> None:
        super().__init__(f"task {task_name!r}: invalid {argument}={value!r}: {why}")
        self.task_name = task_name
        self.value = value


class DuplicateTarget(RicochetError, ValueError):
    """Two different functions were declared under one target name."""


class BadMessage(RicochetError, ValueError):
    """A work message that can never be processed: dead-letter it, never retry."""


class InvalidTrigger(RicochetError, ValueError):
    """A trigger that can never start anything: dead-letter it with this reason."""


class BadPosition(RicochetError, ValueError):
    """A --from/--until that is none of first, an offset, an ISO time or an interval."""


class BadLogLine(RicochetError, ValueError):
    """A line of an exported log that cannot be read, met with ``--strict``: one line
    saying the file, the line number and why."""


class BadQuery(RicochetError, ValueError):
    """A query parameter the API cannot use: answered with 400 and this message."""


class BadPasswords(RicochetError, ValueError):
    """A ``ricochet roles --passwords`` file line that is not ``RICOCHET_PASSWORD_<ROLE>=...``."""


class TokenFileError(RicochetError, ValueError):
    """``projector_token_file`` cannot be read, or does not hold a usable token."""


class AddressError(RicochetError, ValueError):
    """``RICOCHET_AMQP_URL`` cannot be read as a list of broker addresses."""


class UnreadableCheckpoint(RicochetError, ValueError):
    """The bytes are not a checkpoint this version can trust."""


# -- results a function returned ----------------------------------------------------------


class ResultNotSerialisable(RicochetError, TypeError):
    """The function returned something that is not JSON."""


class ResultNotReadable(RicochetError, ValueError):
    """The function returned JSON that would not read back as it was (see ``contracts.limits``)."""


class ResultTooLarge(RicochetError, ValueError):
    """The function returned JSON over the result size limit."""


# -- not found ----------------------------------------------------------------------------


class UnknownTarget(RicochetError, LookupError):
    """No worker queue is bound to this target: the broker returned the work message."""


class CannotDebug(RicochetError, LookupError):
    """The execution, its target or the attempt cannot be found."""


class UnknownExecution(RicochetError, LookupError):
    """No request for this execution id is in the log (a typo, or older than its retention)."""


# -- a command that does not apply -------------------------------------------------------


class CannotCancel(RicochetError, ValueError):
    """The execution has already ended (succeeded, failed or cancelled): nothing to stop."""


# -- the broker and the process -----------------------------------------------------------


class BrokerUnreachable(RicochetError, ConnectionError):
    """No broker address answered. The message is one line a person can act on: each
    address (its URL without the password, host, port and vhost) and why it failed, in
    words (refused, name not found, timed out, login refused, no such vhost, TLS);
    ``causes`` holds those reasons alone, in address order, for log lines. Raised by
    every connect at start (CLI commands print it and exit 2); a connection lost later
    is not this: it reconnects by itself."""

    def __init__(self, message: str, causes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.causes = causes


class RestoreFailed(RicochetError, ConnectionError):
    """A channel error that a reconnect's restore raised (another queue's trouble, such as
    a stream with no running replica on the new node), met by an operation that only
    waited for the connection: retried like a lost connection (``workers.amqp.restores``)."""


class TopologyMissing(RicochetError, LookupError):
    """A queue or exchange this process only checks for (it may not, or need not, declare
    it) is not on the broker. One line naming it, the vhost, and the fix: declare the
    topology first (``ricochet topology``, as a user with the ``topology`` role). CLI
    commands print it and exit 2, like ``BrokerUnreachable``."""

    def __init__(self, kind: str, name: str, vhost: str) -> None:
        super().__init__(
            f"{kind} {name!r} does not exist in vhost {vhost!r}: run `ricochet topology` first"
        )
        self.kind = kind
        self.name = name
        self.vhost = vhost


class TopologyMismatch(RicochetError, RuntimeError):
    """A queue exists with other arguments than the settings give (RabbitMQ answers
    PRECONDITION_FAILED: a queue's arguments are fixed when it is created). The message
    is one line: which queue, which argument differs and how, and what to do instead
    (keep the queue's value and use a policy, or a new namespace). CLI commands print
    it and exit 2."""


class StoreLocked(RicochetError, RuntimeError):
    """Another projector holds this store."""


class WrongStore(RicochetError, RuntimeError):
    """A projector store made for another broker, vhost or namespace: its offset and
    states mean nothing here, so it is refused (the CLI exits 3). A projector's API of
    another vhost or namespace is not an error: readers fold the log instead."""


class NoClient(RicochetError, RuntimeError):
    """``Task.submit`` was called with no open client."""


class DispatchInterrupted(RicochetError, RuntimeError):
    """The request is on the log, but its work may not have reached a queue: the
    connection closed for good before the broker confirmed it. The execution exists
    under ``execution_id``; the supervisor publishes the work of requests that never
    start (``orphan_after_s``), so it still runs, once."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(
            f"execution {execution_id} was recorded but its work may not have been published"
            " (the connection closed); the supervisor will dispatch it if it never starts"
        )
        self.execution_id = execution_id


# -- what a waiting caller hears ----------------------------------------------------------


class RemoteError(RicochetError):
    """An execution's final error, re-raised where someone waited for it."""

    def __init__(self, execution_id: str, error: ErrorInfo) -> None:
        super().__init__(f"{error.type}: {error.message}")
        self.execution_id = execution_id
        self.remote_type = error.type
        self.remote_message = error.message
        self.remote_traceback = error.traceback


class Cancelled(RemoteError):
    """The execution was cancelled before it ended (``ricochet cancel``)."""
