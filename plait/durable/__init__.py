"""Durable runs: checkpoints, resume, replay, and batch runs that lose nothing.

``graph.run(input, checkpoint="runs.db", run_id="r1")`` commits every node
completion to an SQLite file (or a ``postgresql://`` database); running it again with the same id restores the
finished nodes and runs only the rest. ``replay=True`` re-runs a recorded run
from its recorded LLM responses and tool results. :func:`run_batch` runs a
graph over many inputs with bounded concurrency, resumably, alone or with
other workers sharing the checkpoint.
"""

from plait.durable._batch import BatchItem, BatchResult, InvalidInput, run_batch
from plait.durable._postgres import PostgresCheckpointer
from plait.durable._store import Checkpointer, MemoryCheckpointer, SQLiteCheckpointer, StoredNode, StoredRun

__all__ = ["Checkpointer", "MemoryCheckpointer", "SQLiteCheckpointer", "PostgresCheckpointer", "StoredNode",
           "StoredRun", "run_batch", "BatchItem", "BatchResult", "InvalidInput"]
