"""Where durable runs keep their state: the in-memory store, and :func:`open_store` for a path or URL.

``checkpoint=`` takes a :class:`Checkpointer`, the path of an SQLite file
(:class:`SQLiteCheckpointer`, the embedded default) or a ``postgresql://``
URL (:class:`PostgresCheckpointer`, for workers on several machines; needs
``pip install 'plait[postgres]'``). :class:`MemoryCheckpointer` keeps the
same data in dicts, for tests and throwaway runs. Every store passes the one
conformance suite in ``tests/durable/test_store_conformance.py``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

from plait.durable._base import SCHEMA_VERSION, Checkpointer, Payload, StoredNode, StoredRun
from plait.durable._sqlite import SQLiteCheckpointer
from plait.errors import ConfigError

__all__ = ["Checkpointer", "MemoryCheckpointer", "SQLiteCheckpointer", "StoredRun", "StoredNode", "SCHEMA_VERSION",
           "open_store", "is_url"]


class MemoryCheckpointer(Checkpointer):
    """Keeps everything in this process's memory: for tests and throwaway runs."""

    def __init__(self) -> None:
        self.runs: dict[str, StoredRun] = {}
        self.nodes: dict[str, dict[str, StoredNode]] = {}
        self.records: dict[str, Payload] = {}
        self.leases: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()  # leases may be taken from several threads

    def get_run(self, run_id: str) -> StoredRun | None:
        run = self.runs.get(run_id)
        return None if run is None else dataclasses.replace(run)

    def put_run(self, run: StoredRun) -> None:
        now = time.time()
        self.runs[run.run_id] = dataclasses.replace(run, created=run.created or now, updated=now)

    def list_runs(self, prefix: str = "") -> list[StoredRun]:
        return [dataclasses.replace(r) for k, r in sorted(self.runs.items()) if k.startswith(prefix)]

    def delete_run(self, run_id: str) -> None:
        self.runs.pop(run_id, None)
        self.nodes.pop(run_id, None)

    def load_nodes(self, run_id: str) -> dict[str, StoredNode]:
        return dict(self.nodes.get(run_id, {}))

    def save_node(self, run_id: str, node: StoredNode) -> None:
        self.nodes.setdefault(run_id, {})[node.key] = node

    def get_record(self, key: str) -> Payload | None:
        return self.records.get(key)

    def put_record(self, key: str, value: Payload) -> None:
        self.records.setdefault(key, value)

    def take_lease(self, key: str, owner: str, ttl: float) -> bool:
        with self._lock:
            now = time.time()
            held = self.leases.get(key)
            if held is not None and held[0] != owner and held[1] > now:
                return False
            self.leases[key] = (owner, now + ttl)
            return True

    def renew_lease(self, key: str, owner: str, ttl: float) -> bool:
        with self._lock:
            held = self.leases.get(key)
            if held is None or held[0] != owner:
                return False
            self.leases[key] = (owner, time.time() + ttl)
            return True

    def release_lease(self, key: str, owner: str) -> None:
        with self._lock:
            if self.leases.get(key, ("",))[0] == owner:
                del self.leases[key]


def is_url(checkpoint: Any) -> bool:
    return isinstance(checkpoint, str) and checkpoint.startswith(("postgresql://", "postgres://"))


def open_store(checkpoint: Checkpointer | str | Path) -> tuple[Checkpointer, bool]:
    """The store ``checkpoint`` names, and whether the caller opened it (and so must close it)."""
    if isinstance(checkpoint, Checkpointer):
        return checkpoint, False
    if is_url(checkpoint):
        from plait.durable._postgres import PostgresCheckpointer

        return PostgresCheckpointer(str(checkpoint)), True
    if not isinstance(checkpoint, (str, Path)):
        raise ConfigError(f"checkpoint= takes a Checkpointer, a file path or a postgresql:// URL, "
                          f"not {type(checkpoint).__name__}")
    return SQLiteCheckpointer(checkpoint), True
