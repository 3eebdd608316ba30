"""A PostgreSQL store: batch workers on several machines share one checkpoint.

``checkpoint="postgresql://user@host/db"`` (``pip install 'plait[postgres]'``:
psycopg 3 and its connection pool). The tables are ``plait_*`` in the
connection's schema (set one with ``?options=-csearch_path%3Dname``), created
on first use under an advisory lock, so workers may start together. Leases
are one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` each: the row lock it
takes makes a take atomic, and expiry is judged by the server's clock, so
workers' clocks need not agree. Each call is one round trip (about 100 µs on
a local server); :meth:`PostgresCheckpointer.call` runs it in a worker thread
so the event loop goes on meanwhile.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import anyio

from plait.durable._base import (SCHEMA_VERSION, Checkpointer, Payload, StoredNode, StoredRun, checked_run,
                                 decode_group, encode_group)
from plait.errors import CheckpointError, ConfigError

__all__ = ["PostgresCheckpointer", "redact"]

T = TypeVar("T")
_LOCK_ID = 0x706C616974  # "plait": serializes schema creation among workers starting together
_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS plait_meta (key text PRIMARY KEY, value text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS plait_runs (run_id text PRIMARY KEY, graph text NOT NULL, fingerprint text NOT NULL, "
    "input bytea NOT NULL, model text NOT NULL, status text NOT NULL, output bytea, error text, "
    "created double precision NOT NULL, updated double precision NOT NULL)",
    "CREATE TABLE IF NOT EXISTS plait_node_groups (seq bigserial PRIMARY KEY, run_id text NOT NULL, "
    "entries text NOT NULL)",
    "CREATE INDEX IF NOT EXISTS plait_node_groups_by_run ON plait_node_groups (run_id, seq)",
    "CREATE TABLE IF NOT EXISTS plait_records (key text PRIMARY KEY, value bytea NOT NULL)",
    "CREATE TABLE IF NOT EXISTS plait_leases (key text PRIMARY KEY, owner text NOT NULL, "
    "expires timestamptz NOT NULL)",
]
_RUN_COLUMNS = "run_id, graph, fingerprint, input, model, status, output, error, created, updated"
_PUT_RUN = (f"INSERT INTO plait_runs ({_RUN_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (run_id) "
            "DO UPDATE SET graph = EXCLUDED.graph, fingerprint = EXCLUDED.fingerprint, input = EXCLUDED.input, "
            "model = EXCLUDED.model, status = EXCLUDED.status, output = EXCLUDED.output, error = EXCLUDED.error, "
            "created = EXCLUDED.created, updated = EXCLUDED.updated")
_EXPIRES = "clock_timestamp() + make_interval(secs => %s)"
_TAKE = (f"INSERT INTO plait_leases (key, owner, expires) VALUES (%s, %s, {_EXPIRES}) ON CONFLICT (key) DO UPDATE "
         "SET owner = EXCLUDED.owner, expires = EXCLUDED.expires "
         "WHERE plait_leases.owner = EXCLUDED.owner OR plait_leases.expires <= clock_timestamp()")


def redact(url: str) -> str:
    """The URL without its password (for messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _tag(value: Payload | None) -> bytes | None:
    """A payload as bytea, its type kept in the first byte (b: bytes, s: UTF-8 text)."""
    if value is None:
        return None
    return b"s" + value.encode() if isinstance(value, str) else b"b" + value


def _untag(value: Any, where: str, what: str) -> Any:
    if value is None:
        return None
    if isinstance(value, (bytes, memoryview)):
        value = bytes(value)
        if value[:1] == b"b":
            return value[1:]
        if value[:1] == b"s":
            try:
                return value[1:].decode()
            except UnicodeDecodeError:
                pass
    raise CheckpointError(f"{where} holds {what} that plait did not write; it was not used "
                          "(the database was changed by something else)")


class PostgresCheckpointer(Checkpointer):
    """A checkpoint in a PostgreSQL database (see the module docstring). Group commit as in SQLite."""

    def __init__(self, url: str, *, group_commit: float = 0.002, pool_size: int = 4, connect_timeout: float = 10.0):
        if group_commit < 0:
            raise ConfigError(f"group_commit must be >= 0 seconds, got {group_commit}")
        self._where = f"checkpoint {redact(url)}"
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError:
            raise CheckpointError(f"{self._where} needs psycopg 3 and psycopg-pool, which are not installed: "
                                  "pip install 'plait[postgres]'") from None
        self._errors = psycopg.Error
        self.group_commit = group_commit
        self._pending: dict[str, list[StoredNode]] = {}
        self._lock = threading.Lock()  # guards _pending
        self._flush_lock = threading.Lock()  # one flush at a time, so groups keep the order they were saved in
        try:
            with psycopg.connect(url, connect_timeout=max(int(connect_timeout), 1), autocommit=True) as conn:
                self._create_schema(conn)
        except psycopg.Error as exc:
            raise CheckpointError(f"cannot open {self._where}: {_first_line(exc)}") from None
        self._pool: Any = ConnectionPool(url, min_size=1, max_size=pool_size, timeout=connect_timeout,
                                         kwargs={"autocommit": True}, name="plait", open=True)

    def _create_schema(self, conn: Any) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute("INSERT INTO plait_meta VALUES ('schema_version', %s) ON CONFLICT DO NOTHING",
                         (str(SCHEMA_VERSION),))
            version = conn.execute("SELECT value FROM plait_meta WHERE key = 'schema_version'").fetchone()[0]
        if version != str(SCHEMA_VERSION):
            raise CheckpointError(f"{self._where} has schema version {str(version)[:20]}; this plait reads "
                                  f"version {SCHEMA_VERSION}: finish its runs with the plait that wrote it")

    async def call(self, method: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(functools.partial(method, *args))

    # -- statements -------------------------------------------------------------------------------
    def _connection(self) -> Any:
        if self._pool is None:
            raise CheckpointError(f"{self._where} is closed")
        return self._pool.connection()

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        if self._pending:
            self.flush()
        try:
            with self._connection() as conn:
                return conn.execute(sql, args).fetchall()
        except self._errors as exc:
            raise CheckpointError(f"{self._where}: {_first_line(exc)}") from None

    def _write(self, sql: str | None, args: tuple = ()) -> int:
        """One transaction: the buffered node completions, then ``sql``; its row count."""
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
            try:
                with self._connection() as conn:
                    if not pending:  # one statement is its own transaction: one round trip
                        return conn.execute(sql, args).rowcount if sql is not None else 0
                    groups = (f"INSERT INTO plait_node_groups (run_id, entries) VALUES "
                              f"{', '.join(['(%s, %s)'] * len(pending))}",
                              tuple(v for run_id, nodes in pending.items() for v in (run_id, encode_group(nodes))))
                    if sql is None:
                        conn.execute(*groups)
                        return 0
                    with conn.transaction():
                        conn.execute(*groups)
                        return conn.execute(sql, args).rowcount
            except BaseException as exc:
                with self._lock:  # not written: keep them for the next attempt, before anything saved since
                    for run_id, nodes in pending.items():
                        self._pending[run_id] = nodes + self._pending.get(run_id, [])
                if isinstance(exc, self._errors):
                    raise CheckpointError(f"cannot write {self._where}: {_first_line(exc)}") from None
                raise

    def flush(self) -> None:
        if self._pending:
            self._write(None)

    def get_run(self, run_id: str) -> StoredRun | None:
        rows = self._read(f"SELECT {_RUN_COLUMNS} FROM plait_runs WHERE run_id = %s", (run_id,))
        return self._run(rows[0]) if rows else None

    def _run(self, columns: tuple) -> StoredRun:
        row = list(columns)
        row[3], row[6] = _untag(row[3], self._where, "a run input"), _untag(row[6], self._where, "a run output")
        return checked_run(row, self._where)

    def put_run(self, run: StoredRun) -> None:
        now = time.time()
        self._write(_PUT_RUN, (run.run_id, run.graph, run.fingerprint, _tag(run.input), run.model, run.status,
                               _tag(run.output), run.error, run.created or now, now))

    def list_runs(self, prefix: str = "") -> list[StoredRun]:
        rows = self._read(f"SELECT {_RUN_COLUMNS} FROM plait_runs WHERE starts_with(run_id, %s) ORDER BY run_id",
                          (prefix,))
        return [self._run(r) for r in rows]

    def delete_run(self, run_id: str) -> None:
        self.flush()
        self._write("DELETE FROM plait_node_groups WHERE run_id = %s", (run_id,))
        self._write("DELETE FROM plait_runs WHERE run_id = %s", (run_id,))

    def load_nodes(self, run_id: str) -> dict[str, StoredNode]:
        rows = self._read("SELECT entries FROM plait_node_groups WHERE run_id = %s ORDER BY seq", (run_id,))
        return {node.key: node for (entries,) in rows for node in decode_group(entries, self._where)}

    def save_node(self, run_id: str, node: StoredNode) -> None:
        with self._lock:
            self._pending.setdefault(run_id, []).append(node)

    def get_record(self, key: str) -> Payload | None:
        rows = self._read("SELECT value FROM plait_records WHERE key = %s", (key,))
        return _untag(rows[0][0], self._where, "a recorded response") if rows else None

    def put_record(self, key: str, value: Payload) -> None:
        self._write("INSERT INTO plait_records (key, value) VALUES (%s, %s) ON CONFLICT DO NOTHING", (key, _tag(value)))

    def take_lease(self, key: str, owner: str, ttl: float) -> bool:
        return self._write(_TAKE, (key, owner, ttl)) == 1

    def renew_lease(self, key: str, owner: str, ttl: float) -> bool:
        return self._write(f"UPDATE plait_leases SET expires = {_EXPIRES} WHERE key = %s AND owner = %s",
                           (ttl, key, owner)) == 1

    def release_lease(self, key: str, owner: str) -> None:
        self._write("DELETE FROM plait_leases WHERE key = %s AND owner = %s", (key, owner))

    def close(self) -> None:
        if getattr(self, "_pool", None) is None:
            return
        pool = self._pool
        try:
            self.flush()
        finally:
            self._pool = None
            pool.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
