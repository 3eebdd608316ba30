"""Where durable runs keep their state: a :class:`Checkpointer` and its two implementations.

A checkpointer stores three things, all as opaque bytes that the runtime
encodes (see ``plait.orchestrator._journal``):

* runs: id, graph name, graph fingerprint, input, model, status, output;
* node completions (one record per node activation), written in groups:
  one ``node_groups`` row holds the records one commit brought for a run;
* recorded responses: LLM samples (keyed by model, prompt, sampling
  parameters and sample index) and per-run tool results.

:class:`SQLiteCheckpointer` is the embedded default (one file, WAL mode, each
write its own transaction, so a killed process loses nothing it committed).
:class:`MemoryCheckpointer` keeps the same data in dicts, for tests.
"""

from __future__ import annotations

import abc
import dataclasses
import pickle
import sqlite3
import threading
import time
from pathlib import Path

from plait.errors import CheckpointError

__all__ = ["Checkpointer", "MemoryCheckpointer", "SQLiteCheckpointer", "StoredRun", "StoredNode", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1


@dataclasses.dataclass
class StoredRun:
    """One run as the checkpoint knows it. ``status``: running, ok, partial, failed, cancelled."""

    run_id: str
    graph: str
    fingerprint: str
    input: bytes
    model: str = ""
    status: str = "running"
    output: bytes | None = None
    error: str | None = None
    created: float = 0.0
    updated: float = 0.0

    @property
    def finished(self) -> bool:
        return self.status in ("ok", "partial", "failed")


@dataclasses.dataclass(slots=True)
class StoredNode:
    """One committed node activation (``key`` is ``node#activation``)."""

    key: str
    inputs_hash: bytes
    outcome: bytes
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    requests: int = 0
    duration: float = 0.0
    attempts: int = 1


class Checkpointer(abc.ABC):
    """Persistence for durable runs. Implement the abstract methods; all are synchronous and quick.

    ``save_node`` may buffer; :meth:`flush` makes everything saved so far
    durable. ``group_commit`` (seconds) tells the runtime how long a completed
    node that did less than that much work may wait in the buffer; nodes that
    did more, LLM responses, tool results and run rows are flushed at once.
    """

    group_commit: float = 0.0

    @abc.abstractmethod
    def get_run(self, run_id: str) -> StoredRun | None: ...

    @abc.abstractmethod
    def put_run(self, run: StoredRun) -> None:
        """Insert or replace a run's row."""

    @abc.abstractmethod
    def list_runs(self, prefix: str = "") -> list[StoredRun]: ...

    @abc.abstractmethod
    def load_nodes(self, run_id: str) -> dict[str, StoredNode]: ...

    @abc.abstractmethod
    def save_node(self, run_id: str, node: StoredNode) -> None:
        """Save one node activation (durable once :meth:`flush` returns)."""

    def flush(self) -> None:
        """Make every save so far durable (no-op for stores that do not buffer)."""

    @abc.abstractmethod
    def get_record(self, key: str) -> bytes | None:
        """A recorded response or tool result."""

    @abc.abstractmethod
    def put_record(self, key: str, value: bytes) -> None: ...

    def close(self) -> None:
        """Release the storage (idempotent)."""

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class MemoryCheckpointer(Checkpointer):
    """Keeps everything in this process's memory: for tests and throwaway runs."""

    def __init__(self) -> None:
        self.runs: dict[str, StoredRun] = {}
        self.nodes: dict[str, dict[str, StoredNode]] = {}
        self.records: dict[str, bytes] = {}

    def get_run(self, run_id: str) -> StoredRun | None:
        run = self.runs.get(run_id)
        return None if run is None else dataclasses.replace(run)

    def put_run(self, run: StoredRun) -> None:
        self.runs[run.run_id] = dataclasses.replace(run, updated=time.time())

    def list_runs(self, prefix: str = "") -> list[StoredRun]:
        return [dataclasses.replace(r) for k, r in sorted(self.runs.items()) if k.startswith(prefix)]

    def load_nodes(self, run_id: str) -> dict[str, StoredNode]:
        return dict(self.nodes.get(run_id, {}))

    def save_node(self, run_id: str, node: StoredNode) -> None:
        self.nodes.setdefault(run_id, {})[node.key] = node

    def get_record(self, key: str) -> bytes | None:
        return self.records.get(key)

    def put_record(self, key: str, value: bytes) -> None:
        self.records.setdefault(key, value)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, graph TEXT NOT NULL, fingerprint TEXT NOT NULL, input BLOB NOT NULL,
    model TEXT NOT NULL, status TEXT NOT NULL, output BLOB, error TEXT, created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS node_groups (seq INTEGER PRIMARY KEY, run_id TEXT NOT NULL, entries BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS node_groups_by_run ON node_groups (run_id, seq);
CREATE TABLE IF NOT EXISTS records (key TEXT PRIMARY KEY, value BLOB NOT NULL);
"""
_RUN_COLUMNS = "run_id, graph, fingerprint, input, model, status, output, error, created, updated"


class SQLiteCheckpointer(Checkpointer):
    """A checkpoint in one SQLite file (created if absent).

    The file is checked before anything is written: a file that is not an
    SQLite database, is corrupt or truncated, belongs to something else, or
    was written by another schema version raises :class:`~plait.CheckpointError`
    and is left untouched. Outputs are stored pickled: treat a checkpoint file
    like code, and open only files you trust.

    An SQLite transaction costs 35 to 130 microseconds here, several times
    the runtime's whole cost per node, so node completions are committed in
    groups: a node that ran for ``group_commit`` seconds (default 2 ms) or
    more, or that called an LLM or a tool, is committed before its dependants
    start; cheaper nodes are committed together, at most ``group_commit``
    seconds after they finish. A killed process loses at most that window of
    sub-millisecond work, which runs again on resume. ``group_commit=0``
    commits every node on its own.
    """

    def __init__(self, path: str | Path, *, group_commit: float = 0.002):
        if group_commit < 0:
            raise ValueError(f"group_commit must be >= 0 seconds, got {group_commit}")
        self.path = Path(path)
        self.group_commit = group_commit
        self._pending: dict[str, list[tuple]] = {}
        self._lock = threading.Lock()
        existed = self.path.exists() and self.path.stat().st_size > 0
        if existed:
            _check_header(self.path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise CheckpointError(f"cannot open checkpoint {self.path}: {exc}") from None
        try:
            if existed:
                self._check_existing()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # in WAL mode: durable across a killed process
            if not existed:
                self._db.executescript(_SCHEMA)
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise CheckpointError(f"checkpoint {self.path} is corrupt or truncated ({exc}); "
                                  "it was left untouched: move it away or restore a copy") from None
        except CheckpointError:
            self._db.close()
            raise

    def _check_existing(self) -> None:
        check = self._db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise CheckpointError(f"checkpoint {self.path} is corrupt ({check}); it was left untouched: "
                                  "move it away or restore a copy")
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "runs", "node_groups", "records"} <= tables:
            raise CheckpointError(f"{self.path} is an SQLite database but not a plait checkpoint "
                                  f"(tables: {', '.join(sorted(tables)) or 'none'}); choose another file")
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row else None
        if version != SCHEMA_VERSION:
            raise CheckpointError(f"checkpoint {self.path} has schema version {version}; this plait reads "
                                  f"version {SCHEMA_VERSION}: finish its runs with the plait that wrote it")

    def _query(self, sql: str | None, args: tuple = ()) -> list[tuple]:
        """Run one statement (None: none) in one transaction, together with any buffered node completions."""
        with self._lock:
            if self._db is None:
                raise CheckpointError(f"checkpoint {self.path} is closed")
            try:
                if not self._pending:
                    return [] if sql is None else self._db.execute(sql, args).fetchall()
                self._db.execute("BEGIN")
                try:
                    self._write_pending()
                    rows = [] if sql is None else self._db.execute(sql, args).fetchall()
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                return rows
            except sqlite3.Error as exc:
                raise CheckpointError(f"checkpoint {self.path}: {exc}") from None

    def _write_pending(self) -> None:
        """One ``node_groups`` row per run: its buffered completions, pickled together.

        A row per node would cost an SQLite insert (about 4 microseconds) per
        node; a group costs one insert however many nodes it holds.
        """
        pending, self._pending = self._pending, {}
        self._db.executemany("INSERT INTO node_groups (run_id, entries) VALUES (?, ?)",
                             [(run_id, pickle.dumps(entries, protocol=pickle.HIGHEST_PROTOCOL))
                              for run_id, entries in pending.items()])

    def flush(self) -> None:
        if self._pending:
            self._query(None)

    def get_run(self, run_id: str) -> StoredRun | None:
        rows = self._query(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        return StoredRun(*rows[0]) if rows else None

    def put_run(self, run: StoredRun) -> None:
        now = time.time()
        self._query(f"INSERT OR REPLACE INTO runs ({_RUN_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (run.run_id, run.graph, run.fingerprint, run.input, run.model, run.status, run.output,
                     run.error, run.created or now, now))

    def list_runs(self, prefix: str = "") -> list[StoredRun]:
        rows = self._query(f"SELECT {_RUN_COLUMNS} FROM runs WHERE substr(run_id, 1, ?) = ? ORDER BY run_id",
                           (len(prefix), prefix))
        return [StoredRun(*r) for r in rows]

    def load_nodes(self, run_id: str) -> dict[str, StoredNode]:
        rows = self._query("SELECT entries FROM node_groups WHERE run_id = ? ORDER BY seq", (run_id,))
        nodes: dict[str, StoredNode] = {}
        for (blob,) in rows:
            for entry in pickle.loads(blob):  # noqa: S301 - written by this class; see the class docstring
                nodes[entry[0]] = StoredNode(*entry)  # a later activation record replaces an earlier one
        return nodes

    def save_node(self, run_id: str, node: StoredNode) -> None:
        entry = (node.key, node.inputs_hash, node.outcome, node.prompt_tokens, node.completion_tokens,
                 node.cached_tokens, node.requests, node.duration, node.attempts)
        entries = self._pending.get(run_id)
        if entries is None:
            self._pending[run_id] = [entry]
        else:
            entries.append(entry)

    def get_record(self, key: str) -> bytes | None:
        rows = self._query("SELECT value FROM records WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def put_record(self, key: str, value: bytes) -> None:
        self._query("INSERT OR IGNORE INTO records (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        if getattr(self, "_db", None) is not None and self._pending:
            self.flush()
        with self._lock:
            db, self._db = getattr(self, "_db", None), None
        if db is not None:
            db.close()


def _check_header(path: Path) -> None:
    try:
        with path.open("rb") as f:
            header = f.read(16)
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from None
    if header != b"SQLite format 3\x00":
        raise CheckpointError(f"{path} is not a plait checkpoint (not an SQLite database); "
                              "it was left untouched: choose another file")
