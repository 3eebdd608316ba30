"""The embedded store: one SQLite file, shared safely by every process on one machine."""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
from pathlib import Path

from plait._retry import RetryDeadlineError, RetryPolicy, retry_blocking
from plait.durable._base import (SCHEMA_VERSION, Checkpointer, Payload, StoredNode, StoredRun, checked_payload,
                                 checked_run, decode_group, encode_group)
from plait.errors import CheckpointError, ConfigError

__all__ = ["SQLiteCheckpointer"]

_CONTENDED_SWITCH = RetryPolicy(attempts=sys.maxsize, backoff=0.005, multiplier=2.0, max_backoff=0.1, jitter=0.0,
                                retry_on=(sqlite3.OperationalError,))
"""Retrying a switch to WAL mode that another process contends: 5 ms doubling to 100 ms, until busy_timeout."""

_TABLES = {
    "meta": "key TEXT PRIMARY KEY, value TEXT NOT NULL",
    "runs": "run_id TEXT PRIMARY KEY, graph TEXT NOT NULL, fingerprint TEXT NOT NULL, input BLOB NOT NULL, "
            "model TEXT NOT NULL, status TEXT NOT NULL, output BLOB, error TEXT, created REAL NOT NULL, "
            "updated REAL NOT NULL",
    "node_groups": "seq INTEGER PRIMARY KEY, run_id TEXT NOT NULL, entries TEXT NOT NULL",
    "records": "key TEXT PRIMARY KEY, value BLOB NOT NULL",
    "leases": "key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL",
}
_RUN_COLUMNS = "run_id, graph, fingerprint, input, model, status, output, error, created, updated"
_TAKE = ("INSERT INTO leases (key, owner, expires) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
         "owner = excluded.owner, expires = excluded.expires "
         "WHERE leases.owner = excluded.owner OR leases.expires <= ?")


class SQLiteCheckpointer(Checkpointer):
    """A checkpoint in one SQLite file (created if absent).

    The file is checked before anything is written: a file that is not an
    SQLite database, is corrupt or truncated, belongs to something else, is
    read-only, or was written by another schema version (older plaits stored
    pickles, which are never read) raises :class:`~plait.CheckpointError` and
    is left untouched. Every write is one ``BEGIN IMMEDIATE`` transaction, so
    processes sharing the file (batch workers) see each other's commits and
    take leases atomically; WAL mode keeps readers off the writers' backs.

    An SQLite transaction costs 35 to 130 microseconds here, several times
    the runtime's whole cost per node, so node completions are committed in
    groups: a node that ran for ``group_commit`` seconds (default 2 ms) or
    more, or that called an LLM or a tool, is committed before its dependants
    start; cheaper nodes are committed together, at most ``group_commit``
    seconds after they finish. A killed process loses at most that window of
    sub-millisecond work, which runs again on resume. ``group_commit=0``
    commits every node on its own.
    """

    def __init__(self, path: str | Path, *, group_commit: float = 0.002, busy_timeout: float = 30.0):
        if group_commit < 0:
            raise ConfigError(f"group_commit must be >= 0 seconds, got {group_commit}")
        self.path = Path(path)
        self.group_commit = group_commit
        self._where = f"checkpoint {self.path}"
        self._pending: dict[str, list[StoredNode]] = {}
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        existed = self._check_file()
        try:
            self._db = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None,
                                       check_same_thread=False)
            if existed:  # checked before anything is written to it
                if (check := self._db.execute("PRAGMA quick_check").fetchone()[0]) != "ok":
                    raise CheckpointError(f"{self._where} is corrupt ({check}); it was left untouched: "
                                          "move it away or restore a copy")
                self._check_schema()
            self._use_wal(busy_timeout)
            self._db.execute("PRAGMA synchronous=NORMAL")  # in WAL mode: durable across a killed process
            self._db.execute("BEGIN IMMEDIATE")  # another process may be creating the schema right now
            try:
                if not self._check_schema():
                    self._create_schema()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            self._close_quietly()
            raise self._error(exc) from None
        except BaseException:
            self._close_quietly()
            raise

    def _use_wal(self, busy_timeout: float) -> None:
        """Switch the file to WAL mode, waiting out other processes opening it at the same moment.

        SQLite answers a contended journal-mode switch with "database is locked" at once, without
        calling its busy handler, so two workers starting on a new file would fail by chance.
        """

        def switch(number: int) -> None:
            self._connected().execute("PRAGMA journal_mode=WAL").fetchone()

        try:
            retry_blocking(_CONTENDED_SWITCH, switch, deadline=time.monotonic() + busy_timeout,
                           retryable=lambda exc: "locked" in str(exc))
        except RetryDeadlineError as exc:
            raise exc.error from None

    def _check_file(self) -> bool:
        """Whether the file exists with content; refuse what cannot be a checkpoint before SQLite touches it."""
        path = self.path
        if path.exists() and not path.is_file():
            raise CheckpointError(f"{self._where} is not a regular file (a directory or a device); "
                                  "give the path of a file")
        existed = path.exists() and path.stat().st_size > 0
        folder = path.parent if str(path.parent) else Path(".")
        if existed:
            try:
                with path.open("rb") as f:
                    header = f.read(16)
            except OSError as exc:
                raise CheckpointError(f"cannot read {self._where}: {exc.strerror or exc}") from None
            if header != b"SQLite format 3\x00":
                raise CheckpointError(f"{path} is not a plait checkpoint (not an SQLite database); "
                                      "it was left untouched: choose another file")
            if not os.access(path, os.W_OK) or not os.access(folder, os.W_OK):
                raise CheckpointError(f"{self._where} is read-only (the file or its directory cannot be "
                                      "written); make it writable, or copy it somewhere writable")
        elif not folder.is_dir():
            raise CheckpointError(f"cannot create {self._where}: directory {str(folder)!r} does not exist")
        elif not os.access(folder, os.W_OK):
            raise CheckpointError(f"cannot create {self._where}: directory {str(folder)!r} is read-only")
        return existed

    def _connected(self) -> sqlite3.Connection:
        if self._db is None:
            raise CheckpointError(f"{self._where} is closed")
        return self._db

    def _create_schema(self) -> None:
        db = self._connected()
        for name, columns in _TABLES.items():
            db.execute(f"CREATE TABLE {name} ({columns})")
        db.execute("CREATE INDEX node_groups_by_run ON node_groups (run_id, seq)")
        db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def _check_schema(self) -> bool:
        """False for a database without tables (new, or being created by another process); else check it."""
        db = self._connected()
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return False
        if not {"meta", "runs", "node_groups", "records"} <= tables:
            raise CheckpointError(f"{self.path} is an SQLite database but not a plait checkpoint "
                                  f"(tables: {', '.join(sorted(tables))[:200]}); choose another file")
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = row[0] if row else None
        if version == "1":
            raise CheckpointError(f"{self._where} was written by an older plait (schema version 1), which stored "
                                  "pickles; they are not read, as unpickling can run code: finish its runs with "
                                  "that plait, or start a new checkpoint file")
        if version != str(SCHEMA_VERSION) or "leases" not in tables:
            raise CheckpointError(f"{self._where} has schema version {str(version)[:20]}; this plait reads "
                                  f"version {SCHEMA_VERSION}: finish its runs with the plait that wrote it")
        return True

    def _error(self, exc: sqlite3.Error) -> CheckpointError:
        """One line saying what went wrong with the file and what to do."""
        text = str(exc)
        if "readonly" in text or "read-only" in text:
            return CheckpointError(f"{self._where} is read-only ({text}); make it writable, or copy it somewhere "
                                   "writable")
        if "full" in text or "I/O error" in text:
            return CheckpointError(f"cannot write {self._where} ({text}): free disk space, then run again "
                                   "(work committed so far is kept)")
        if "locked" in text:
            return CheckpointError(f"{self._where} stayed locked by another process ({text}); try again")
        if type(exc) is sqlite3.DatabaseError or "malformed" in text or "not a database" in text:
            return CheckpointError(f"{self._where} is corrupt or truncated ({text}); it was left untouched: "
                                   "move it away or restore a copy")
        return CheckpointError(f"{self._where}: {text}")

    def _close_quietly(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- one transaction per write ---------------------------------------------------------------
    def _execute(self, sql: str | None, args: tuple = (), *, write: bool = False) -> tuple[list[tuple], int]:
        """Run one statement; a write (or anything while node completions are buffered) in one transaction."""
        with self._lock:
            db = self._db
            if db is None:
                raise CheckpointError(f"{self._where} is closed")
            try:
                if sql is not None and not write and not self._pending:
                    cursor = db.execute(sql, args)
                    return cursor.fetchall(), cursor.rowcount
                db.execute("BEGIN IMMEDIATE")
                try:
                    if self._pending:  # one row per run, however many completions it holds
                        db.executemany("INSERT INTO node_groups (run_id, entries) VALUES (?, ?)",
                                       [(run_id, encode_group(nodes)) for run_id, nodes in self._pending.items()])
                    rows, count = ([], 0)
                    if sql is not None:
                        cursor = db.execute(sql, args)
                        rows, count = cursor.fetchall(), cursor.rowcount
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
                self._pending = {}
                return rows, count
            except sqlite3.Error as exc:
                raise self._error(exc) from None

    def flush(self) -> None:
        if self._pending:
            self._execute(None, write=True)

    def get_run(self, run_id: str) -> StoredRun | None:
        rows, _ = self._execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        return checked_run(rows[0], self._where) if rows else None

    def put_run(self, run: StoredRun) -> None:
        now = time.time()
        self._execute(f"INSERT OR REPLACE INTO runs ({_RUN_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                      (run.run_id, run.graph, run.fingerprint, run.input, run.model, run.status, run.output,
                       run.error, run.created or now, now), write=True)

    def list_runs(self, prefix: str = "") -> list[StoredRun]:
        rows, _ = self._execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE substr(run_id, 1, ?) = ? ORDER BY run_id",
                                (len(prefix), prefix))
        return [checked_run(r, self._where) for r in rows]

    def delete_run(self, run_id: str) -> None:
        self.flush()
        self._execute("DELETE FROM node_groups WHERE run_id = ?", (run_id,), write=True)
        self._execute("DELETE FROM runs WHERE run_id = ?", (run_id,), write=True)

    def load_nodes(self, run_id: str) -> dict[str, StoredNode]:
        rows, _ = self._execute("SELECT entries FROM node_groups WHERE run_id = ? ORDER BY seq", (run_id,))
        nodes: dict[str, StoredNode] = {}
        for (entries,) in rows:
            for node in decode_group(entries, self._where):
                nodes[node.key] = node  # a later activation record replaces an earlier one
        return nodes

    def save_node(self, run_id: str, node: StoredNode) -> None:
        with self._lock:
            self._pending.setdefault(run_id, []).append(node)

    def get_record(self, key: str) -> Payload | None:
        rows, _ = self._execute("SELECT value FROM records WHERE key = ?", (key,))
        return checked_payload(rows[0][0], self._where, "a recorded response") if rows else None

    def put_record(self, key: str, value: Payload) -> None:
        self._execute("INSERT OR IGNORE INTO records (key, value) VALUES (?, ?)", (key, value), write=True)

    def take_lease(self, key: str, owner: str, ttl: float) -> bool:
        now = time.time()
        return self._execute(_TAKE, (key, owner, now + ttl, now), write=True)[1] == 1

    def renew_lease(self, key: str, owner: str, ttl: float) -> bool:
        return self._execute("UPDATE leases SET expires = ? WHERE key = ? AND owner = ?",
                             (time.time() + ttl, key, owner), write=True)[1] == 1

    def release_lease(self, key: str, owner: str) -> None:
        self._execute("DELETE FROM leases WHERE key = ? AND owner = ?", (key, owner), write=True)

    def close(self) -> None:
        try:
            if self._db is not None and self._pending:
                self.flush()
        finally:
            with self._lock:
                db, self._db = self._db, None
            if db is not None:
                db.close()
