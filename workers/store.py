"""The projector's store: execution states and the stream offset they include, in SQLite.

States and the offset are written in one transaction, so after a crash the
store is a fold of the log up to exactly its offset: a restart resumes at
offset + 1. A lock file keeps a second projector off the same store.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import IO

from pydantic import TypeAdapter

from engine import ExecutionState, Projection

STATE = TypeAdapter(ExecutionState)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    target TEXT,
    requested_at TEXT,
    ended_at TEXT,
    state BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS executions_status ON executions (status);
CREATE INDEX IF NOT EXISTS executions_target ON executions (target);
"""


class StoreLocked(RuntimeError):
    """Another projector holds this store."""


class ProjectionStore:
    """One SQLite file, held by one projector at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_file: IO[str] | None = None
        self._db: sqlite3.Connection | None = None

    def open(self) -> ProjectionStore:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = self._take_lock()
        self._db = sqlite3.connect(self.path)
        self._db.executescript(SCHEMA)
        self._db.execute("PRAGMA journal_mode=WAL")
        return self

    def _take_lock(self) -> IO[str]:
        lock = Path(f"{self.path}.lock").open("a+")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            lock.close()
            raise StoreLocked(f"{self.path} is in use by projector {holder}") from err
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        return lock

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
        if self._lock_file is not None:
            self._lock_file.close()

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "open() first"
        return self._db

    def load(self) -> tuple[Projection, int | None]:
        """The stored projection and the last offset it includes (None: nothing folded yet)."""
        projection = Projection()
        for (blob,) in self.db.execute("SELECT state FROM executions"):
            state = STATE.validate_json(blob)
            projection.executions[state.execution_id] = state
        row = self.db.execute("SELECT value FROM meta WHERE key = 'offset'").fetchone()
        return projection, None if row is None else int(row[0])

    def save(self, states: Iterable[ExecutionState], offset: int | None) -> None:
        """Write changed states and the offset they include, atomically."""
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO executions VALUES (?, ?, ?, ?, ?, ?)",
                [_row(state) for state in states],
            )
            if offset is not None:
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('offset', ?)", (str(offset),))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _row(state: ExecutionState) -> tuple[str, str, str | None, str | None, str | None, bytes]:
    iso = _iso
    return (
        state.execution_id,
        state.status.value,
        state.target,
        iso(state.requested_at),
        iso(state.ended_at),
        STATE.dump_json(state),
    )
