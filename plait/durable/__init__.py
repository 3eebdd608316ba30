"""Durable runs: checkpoints, resume, replay, and batch runs that lose nothing.

``graph.run(input, checkpoint="runs.db", run_id="r1")`` commits every node
completion to an SQLite file (or a ``postgresql://`` database); running it again with the same id restores the
finished nodes and runs only the rest. ``replay=True`` re-runs a recorded run
from its recorded LLM responses and tool results. :func:`run_batch` runs a
graph over many inputs with bounded concurrency, resumably, alone or with
other workers sharing the checkpoint, or over Ray workers (:class:`RayExecutor`).

Checkpoints hold JSON data only (see ``_codec``): opening one runs no code.
Importing this package registers its journal with the orchestrator (see
``plait.orchestrator._journal``), which itself never imports it.
"""

from plait.durable._batch import BatchItem, BatchResult, InvalidInput, run_batch, run_batch_sync
from plait.durable._journal import open_journal
from plait.durable._postgres import PostgresCheckpointer
from plait.durable._ray import RayExecutor
from plait.durable._store import Checkpointer, MemoryCheckpointer, SQLiteCheckpointer, StoredNode, StoredRun
from plait.orchestrator._journal import set_journal_opener

# `Run(checkpoint=...)` opens its journal through this hook: the orchestrator never imports plait.durable.
set_journal_opener(open_journal)

__all__ = ["Checkpointer", "MemoryCheckpointer", "SQLiteCheckpointer", "PostgresCheckpointer", "StoredNode",
           "StoredRun", "run_batch", "run_batch_sync", "RayExecutor", "BatchItem", "BatchResult", "InvalidInput"]
