"""A reconnect's restore failing under a caller that only waited for the connection.

aio-pika restores every channel, queue and consumer of a robust connection after
it comes back, and an operation that waits for the connection meanwhile (a
publish waiting to drain, say) receives whatever that restore raised. In a
cluster that can be another queue's trouble: restoring a stream consumer on a
node where the stream has no running replica raises ``PRECONDITION_FAILED``, a
classic queue whose home node is down ``NOT_FOUND``. The connection then moves
on to the next node, so for the waiting publish such an error is as passing as
a lost connection, not a verdict on what it published (cluster fault test: an
outcome whose publish got such an error went unrecorded, and its live attempt
was declared lost).
"""

from __future__ import annotations

import traceback

import aiormq

from ricochet.errors import RestoreFailed

RESTORING = frozenset({"restore", "_on_connected", "reopen", "_on_open"})
"""aio-pika's functions that restore a connection's channels, queues and consumers."""


def raised_by_restore(err: BaseException) -> bool:
    """Was ``err`` raised inside aio-pika's restoring of a reconnected connection?"""
    for frame, _ in traceback.walk_tb(err.__traceback__):
        code = frame.f_code
        if code.co_name in RESTORING and "aio_pika" in code.co_filename:
            return True
    return False


def as_passing(err: aiormq.exceptions.AMQPChannelError) -> BaseException:
    """``RestoreFailed`` (a ``ConnectionError``: retried like a lost connection) when a
    restore raised ``err``; else ``err`` itself."""
    if raised_by_restore(err):
        return RestoreFailed(f"restoring channels after a reconnect failed: {err}")
    return err
