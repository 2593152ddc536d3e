"""The projector's store: execution states and the stream offset they include, in SQLite.

States and the offset are written in one transaction, so after a crash the
store is a fold of the log up to exactly its offset: a restart resumes at
offset + 1. A lock file keeps a second projector off the same store, and the
broker, vhost and namespace recorded in it keep a projector of another
deployment off it (its offset would mean nothing there).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from pydantic import TypeAdapter

from ricochet.engine import ExecutionState, Projection, Status
from ricochet.errors import StoreLocked, WrongStore
from ricochet.workers.logs import get_logger
from ricochet.workers.read.provenance import Provenance, store_mismatch

log = get_logger(__name__)
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


class ProjectionStore:
    """One SQLite file, held by one projector at a time, for one broker, vhost and namespace.

    ``provenance`` is what the opener folds: the store records it on first open
    and refuses another after that. None opens whatever the file holds, to read it.
    """

    def __init__(self, path: Path, provenance: Provenance | None = None) -> None:
        self.path = path
        self.provenance = provenance
        self._lock_file: IO[str] | None = None
        self._db: sqlite3.Connection | None = None

    def open(self) -> ProjectionStore:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = self._take_lock()
        self._db = sqlite3.connect(self.path)
        try:
            self._db.executescript(SCHEMA)
            self._db.execute("PRAGMA journal_mode=WAL")
            if self.provenance is not None:
                self._claim(self.provenance)
        except BaseException:
            self.close()
            raise
        return self

    def recorded(self) -> Provenance | None:
        """The broker, vhost and namespace this store folds (None: not recorded yet)."""
        rows = dict(
            self.db.execute(
                "SELECT key, value FROM meta WHERE key IN ('broker', 'vhost', 'namespace')"
            )
        )
        if len(rows) < 3:
            return None
        return Provenance(rows["broker"], rows["vhost"], rows["namespace"])

    def _claim(self, current: Provenance) -> None:
        """Record ``current`` in a store that has no record; refuse a store of another.

        A store written before stores kept this record is taken over as it is
        (it cannot say whose it was), and a log line says so. A broker listed
        otherwise but sharing a node is the same one: its new list is recorded.
        """
        recorded = self.recorded()
        if recorded is not None:
            self._refuse_another(recorded, current)
        elif self.offset() is not None or self.count():
            log.warning("store.adopted", path=str(self.path), **current.as_dict())
        if recorded != current:  # new, adopted, or the same cluster listed otherwise
            with self.db:
                self.db.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)", current.as_dict().items()
                )

    def _refuse_another(self, recorded: Provenance, current: Provenance) -> None:
        differs = store_mismatch(recorded, current)
        if differs:
            raise WrongStore(
                f"{self.path} was made for another {' and '.join(differs)}"
                f" ({recorded.describe()}); this projector folds {current.describe()}:"
                " use another --store, or remove this one to fold the log afresh"
            )

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
            self._db = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "open() first"
        return self._db

    def offset(self) -> int | None:
        """The last stream offset the stored states include (None: nothing folded yet)."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'offset'").fetchone()
        return None if row is None else int(row[0])

    def get(self, execution_id: str) -> ExecutionState | None:
        row = self.db.execute(
            "SELECT state FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
        return None if row is None else STATE.validate_json(row[0])

    def ids(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT id FROM executions")]

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM executions").fetchone()[0])

    def matching(
        self, status: Status | None, target: str | None, since: datetime | None, limit: int
    ) -> list[ExecutionState]:
        """Executions with this status and target, requested since, newest first, up to limit.

        Times are stored as UTC ISO strings (events hold UTC times only), which
        sort as the times do; an execution with no request time comes last.
        """
        clauses: list[str] = ["1 = 1"]
        values: list[str | int] = []
        for column, value in (("status", status and status.value), ("target", target)):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        if since is not None:
            clauses.append("requested_at >= ?")
            values.append(since.astimezone(UTC).isoformat())
        query = (
            f"SELECT state FROM executions WHERE {' AND '.join(clauses)}"  # columns are ours
            " ORDER BY requested_at IS NULL, requested_at DESC, id LIMIT ?"
        )
        rows = self.db.execute(query, (*values, limit))
        return [STATE.validate_json(blob) for (blob,) in rows]

    def load(self) -> tuple[Projection, int | None]:
        """The stored projection and the last offset it includes (None: nothing folded yet)."""
        projection = Projection()
        for (blob,) in self.db.execute("SELECT state FROM executions"):
            state = STATE.validate_json(blob)
            projection.executions[state.execution_id] = state
        row = self.db.execute("SELECT value FROM meta WHERE key = 'offset'").fetchone()
        return projection, None if row is None else int(row[0])

    def save(self, states: Iterable[ExecutionState], offset: int | None) -> dict[str, int]:
        """Write changed states and the offset they include, atomically.

        Returns each state's size as stored (its JSON), which a cache of states
        can count against its budget without measuring objects.
        """
        rows = [_row(state) for state in states]
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO executions VALUES (?, ?, ?, ?, ?, ?)", rows)
            if offset is not None:
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('offset', ?)", (str(offset),))
        return {row[0]: len(row[5]) for row in rows}


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
