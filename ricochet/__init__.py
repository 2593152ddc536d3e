"""Ricochet: an event-sourced retry engine for Python on RabbitMQ.

Most code needs only this::

    from ricochet import task, workflow, Client, Settings, current_attempt

The rest lives in layers, each importing only the ones below it:
``ricochet.errors`` (every error) <- ``ricochet.contracts`` (wire formats, no I/O)
<- ``ricochet.engine`` (pure rules, no I/O, no clock) <- ``ricochet.workers`` (aio-pika,
processes, the CLI). The names below are loaded on first use, so that importing
``ricochet.engine`` alone brings no broker client along.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ricochet.errors import (
    BrokerUnreachable,
    Cancelled,
    CannotCancel,
    DispatchInterrupted,
    InvalidRetryFilter,
    InvalidRetryPolicy,
    NoClient,
    RemoteError,
    RicochetError,
    UnknownExecution,
    UnknownTarget,
)

if TYPE_CHECKING:
    from ricochet.workers.client.client import Client
    from ricochet.workers.client.handle import Handle
    from ricochet.workers.runtime.context import AttemptContext, current_attempt
    from ricochet.workers.runtime.tasks import Task, task, workflow
    from ricochet.workers.settings import Settings

_LAZY = {
    "AttemptContext": "ricochet.workers.runtime.context",
    "Client": "ricochet.workers.client.client",
    "Handle": "ricochet.workers.client.handle",
    "Settings": "ricochet.workers.settings",
    "Task": "ricochet.workers.runtime.tasks",
    "current_attempt": "ricochet.workers.runtime.context",
    "task": "ricochet.workers.runtime.tasks",
    "workflow": "ricochet.workers.runtime.tasks",
}

__all__ = [
    "AttemptContext",
    "BrokerUnreachable",
    "Cancelled",
    "CannotCancel",
    "Client",
    "DispatchInterrupted",
    "Handle",
    "InvalidRetryFilter",
    "InvalidRetryPolicy",
    "NoClient",
    "RemoteError",
    "RicochetError",
    "Settings",
    "Task",
    "UnknownExecution",
    "UnknownTarget",
    "current_attempt",
    "task",
    "workflow",
]


def __getattr__(name: str) -> Any:
    """Load the I/O layer's public names on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ricochet' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
