"""Ricochet's I/O layer: tasks, workers, the projector, the client and the CLI.

``from workers import task, workflow`` is all most code needs.
"""

from workers.client import Client, Handle, RemoteError, UnknownTarget
from workers.context import AttemptContext, current_attempt
from workers.settings import Settings
from workers.tasks import Task, task, workflow

__all__ = [
    "AttemptContext",
    "Client",
    "Handle",
    "RemoteError",
    "Settings",
    "Task",
    "UnknownTarget",
    "current_attempt",
    "task",
    "workflow",
]
