"""The durable side of one run: the :class:`~plait.orchestrator._journal.Journal` protocol over a checkpoint store.

Each node activation has a key, ``node#k`` (the k-th activation of that node
in this run: loops and map items get distinct keys). Before a node runs, the
journal looks the key up; if it was committed with the same inputs (their
canonical-JSON digest), its outcome is loaded back with the node's output type
instead of run. After a node succeeds, its outcome is committed, as JSON,
before its dependants start; a node with ``durable=False`` is neither restored
nor committed. LLM requests are recorded and replayed by the
:class:`~plait.durable._replay.RecordingBackend` that :meth:`StoreJournal.begin`
hands the run; tool results (``ctx.remember``) are recorded per run.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic_core import to_json

from plait.durable._codec import digest, dump_inputs, dump_outcome, dump_value, load_inputs, load_outcome, load_value
from plait.durable._identities import read_identities, sample_identity, write_identities
from plait.durable._replay import RecordingBackend
from plait.durable._store import Checkpointer, StoredNode, StoredRun, open_store
from plait.errors import CheckpointError, CheckpointMismatchError, ConfigError, ReplayMissError
from plait.executors._base import Backend
from plait.orchestrator._journal import Restored, fingerprint
from plait.orchestrator._node import Node

if TYPE_CHECKING:
    from plait.orchestrator._graph import Graph, _CompiledGraph

__all__ = ["StoreJournal", "open_journal"]


def open_journal(graph: Graph, plan: _CompiledGraph, checkpoint: Any, *, run_id: str | None, replay: bool,
                 cache: bool) -> StoreJournal:
    """The opener ``plait.durable`` registers with the orchestrator: ``checkpoint`` is a Checkpointer or a path."""
    return StoreJournal(graph, plan, checkpoint, run_id=run_id, replay=replay, cache=cache)


class StoreJournal:
    """One run's journal over a :class:`Checkpointer` (see the module docstring)."""

    def __init__(self, graph: Graph, plan: _CompiledGraph, checkpoint: Any, *, run_id: str | None, replay: bool,
                 cache: bool):
        if replay and not run_id:
            raise ConfigError("replay=True needs run_id= of a recorded run")
        self.store, self.owned = open_store(checkpoint)
        self.graph, self.plan, self.replay, self.cache = graph.name, plan, replay, cache or replay
        self.fingerprint = fingerprint(plan)
        self.run_id = run_id or f"{graph.name}-{uuid.uuid4().hex[:12]}"
        self._activations: dict[str, int] = {}
        self._occurrences: dict[str, int] = defaultdict(int)
        self._labels: dict[str, str] = {}  # "output of node NAME", formatted once per node
        self._window = self.store.group_commit
        self._oldest_unflushed: float | None = None
        try:
            self.stored = self.store.get_run(self.run_id)
            if replay and self.stored is None:
                raise CheckpointError(f"no run {run_id!r} in checkpoint {checkpoint}; nothing to replay")
            if self.stored is not None and (self.stored.graph != self.graph or
                                            self.stored.fingerprint != self.fingerprint):
                raise CheckpointMismatchError(
                    f"run {self.run_id!r} in the checkpoint was recorded for graph {self.stored.graph!r} with "
                    f"different nodes, edges or types than graph {self.graph!r} has now; use a new run_id= "
                    "(or a new checkpoint file)")
            self.restorable = {} if replay or self.stored is None else self.store.load_nodes(self.run_id)
        except BaseException:
            self.close()
            raise

    # -- the run -----------------------------------------------------------------------------------------------
    def recorded_input(self) -> dict[str, Any] | None:
        if self.stored is None:
            return None
        return load_inputs(self.plan.input_params, self.stored.input, f"recorded input of run {self.run_id!r}")

    def begin(self, inputs: dict[str, Any], backends: dict[str, Backend]) -> dict[str, Backend]:
        try:
            blob = dump_inputs(self.plan.input_params, inputs, f"run {self.run_id!r}: input")
            if self.stored is not None and digest(self.recorded_input()) != digest(inputs):
                raise CheckpointMismatchError(
                    f"run {self.run_id!r} in the checkpoint was started with a different input; resume it with "
                    "the same input (or none, to reuse the recorded one), or use a new run_id=")
            if self.replay:
                assert self.stored is not None, "__init__ refuses to replay a run the checkpoint lacks"
                recorded = read_identities(self.stored.model, self.run_id)
                return {name: RecordingBackend(None, self.store, sample_identity(name, identity), self.run_id)
                        for name, identity in recorded.items()}
            identities = {name: backend.identity for name, backend in backends.items()}
            created = self.stored.created if self.stored else 0.0
            self.store.put_run(StoredRun(self.run_id, self.graph, self.fingerprint, blob,
                                         write_identities(identities), created=created))
            if not self.cache:
                return backends
            return {name: RecordingBackend(backend, self.store, sample_identity(name, identities[name]), self.run_id)
                    for name, backend in backends.items()}
        except BaseException:
            self.close()
            raise

    def finish(self, output: Any, status: str, error: BaseException | str | None) -> None:
        try:
            if not self.replay:
                self.store.flush()
                run = self.store.get_run(self.run_id)
                if run is None:
                    raise CheckpointError(f"run {self.run_id!r} was deleted from the checkpoint while it ran "
                                          "(another worker forced the batch?); start it again")
                try:
                    out: bytes | None = to_json(output)
                except Exception:  # the run's output is for reports only: nodes were checked at commit
                    out = None
                self.store.put_run(StoredRun(self.run_id, run.graph, run.fingerprint, run.input, run.model, status,
                                             out, None if error is None else str(error), run.created))
        finally:
            self.close()

    def close(self) -> None:
        if self.owned:
            self.store.close()

    # -- nodes -------------------------------------------------------------------------------------------------
    def lookup(self, node: Node, name: str, kwargs: dict[str, Any]) -> tuple[Any, Restored | None]:
        k = self._activations.get(name, 0)
        self._activations[name] = k + 1
        if self.replay or not getattr(node, "durable", True):
            return None, None
        try:
            inputs_hash = digest(kwargs)
        except (TypeError, ValueError):  # inputs from a node that is not durable: run again, do not commit
            return None, None
        key = f"{name}#{k}"
        stored = self.restorable.get(key) if self.restorable else None
        if stored is None or stored.inputs_hash != inputs_hash:
            return (key, inputs_hash), None
        outcome = load_outcome(stored.outcome, node.output_type, f"output of node {name!r}")
        return (key, inputs_hash), Restored(outcome, stored.prompt_tokens, stored.completion_tokens,
                                            stored.cached_tokens, stored.requests, stored.attempts)

    def commit(self, key: Any, node: Node, outcome: Any, tokens: Any, duration: float, attempts: int) -> None:
        """Save an activation; commit at once unless it was cheap work (group commit, see SQLiteCheckpointer)."""
        if key is None:
            return
        key, inputs_hash = key
        name = key.rsplit("#", 1)[0]
        label = self._labels.get(name)
        if label is None:
            label = self._labels[name] = f"output of node {name!r}"
        blob = dump_outcome(outcome, node.output_type, label)
        if tokens is None:
            self.store.save_node(self.run_id, StoredNode(key, inputs_hash, blob, 0, 0, 0, 0, duration, attempts))
            if duration < self._window:
                now = time.perf_counter()
                if self._oldest_unflushed is None:
                    self._oldest_unflushed = now
                    return
                if now - self._oldest_unflushed < self._window:
                    return
        else:  # it called the model: commit now
            self.store.save_node(self.run_id, StoredNode(
                key, inputs_hash, blob, tokens.prompt_tokens, tokens.completion_tokens, tokens.cached_tokens,
                tokens.requests, duration, attempts))
        self._oldest_unflushed = None
        self.store.flush()

    # -- recorded side effects -----------------------------------------------------------------------------------
    async def remember(self, kind: str, key: str, compute: Callable[[], Awaitable[Any]], returns: Any = Any) -> Any:
        """Run ``compute`` once per position in this run; later runs of the same id (resume, replay) reuse it."""
        base = f"{kind}:{self.run_id}:{hashlib.blake2b(key.encode(), digest_size=16).hexdigest()}"
        k = self._occurrences[base]
        self._occurrences[base] = k + 1
        record_key = f"{base}:{k}"
        what = f"recorded {kind} result for {key[:80]!r}"
        self._oldest_unflushed = None
        self.store.flush()
        blob = self.store.get_record(record_key)
        if blob is not None:
            return load_value(blob, returns, what)
        if self.replay:
            raise ReplayMissError(f"run {self.run_id!r} has no {what}")
        value = await compute()
        self.store.put_record(record_key, dump_value(value, returns, what))
        return value
