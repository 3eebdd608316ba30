"""The durable side of one run: restoring committed nodes, committing new ones, recording responses.

A run given a checkpoint gets a :class:`RunJournal`. Each node activation has
a key, ``node#k`` (the k-th activation of that node in this run: loops and map
items get distinct keys). Before a node runs, the journal looks the key up; if
it was committed with the same inputs, its outcome is restored instead of run.
After a node succeeds, its outcome is committed before its dependants start.

LLM samples are recorded under (model, node, prompt, sampling parameters
with the seed, sample index), where the index counts identical requests of a
node within the run, so the eight samples of a width-8 fan-out stay eight
distinct samples, and two nodes asking the same thing never swap samples on
replay. The record is shared by runs: a later run asking the same node the
same thing gets the same samples (give a new ``seed``, or ``cache=False``, for
fresh ones). Tool results are recorded per run. A replay serves both from the
record and never reaches a model or a tool.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic_core import to_json

from plait.durable._store import StoredNode, StoredRun, open_store
from plait.errors import CheckpointError, CheckpointMismatchError, ReplayMissError
from plait.executors._base import Backend, Completion, Request, Sample

__all__ = ["RunJournal", "RunCheckpoint", "fingerprint", "encode", "decode", "digest"]

log = logging.getLogger("plait.durable")


def encode(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def decode(blob: bytes) -> Any:
    return pickle.loads(blob)  # noqa: S301 - checkpoints are trusted local files, documented as such


def digest(value: Any) -> bytes:
    """A stable fingerprint of node inputs: their pickle when short, else its 16-byte hash.

    What pickle refuses is hashed as JSON with reprs. (Sets of strings pickle
    in per-process order, so a node fed one may run again on resume.)
    """
    try:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        data = to_json(value, fallback=repr)
    return data if len(data) <= 32 else hashlib.blake2b(data, digest_size=16).digest()


def fingerprint(plan: Any) -> str:
    """What makes a checkpoint applicable: node names, kinds, input/output types and edges (not code)."""
    cached = plan.__dict__.get("_fingerprint")
    if cached is None:
        cached = plan.__dict__["_fingerprint"] = _fingerprint(plan)
    return cached


def _fingerprint(plan: Any) -> str:
    from plait.orchestrator._graph import GraphNode

    parts = []
    for name, node in sorted(plan.nodes.items()):
        params = ",".join(f"{p}:{_type_name(param.annotation)}" for p, param in sorted(node.params.items()))
        inner = fingerprint(node.graph._compile()) if isinstance(node, GraphNode) else ""
        parts.append(f"{name}|{type(node).__name__}|{params}|{_type_name(node.output_type)}|{inner}")
    for e in sorted(plan.edges, key=lambda e: (e.src, e.dst, e.param, e.kind)):
        parts.append(f"{e.src}->{e.dst}:{e.param}:{e.kind}:{e.back}")
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return f"{annotation.__module__}.{annotation.__qualname__}"
    return repr(annotation)


class RunJournal:
    """Checkpoint access for one run (see the module docstring)."""

    def __init__(self, store: Any, run_id: str, model: str, *, replay: bool = False, cache: bool = True):
        self.store = store
        self.run_id = run_id
        self.model = model
        self.replay = replay
        self.cache = cache or replay
        self.restorable = {} if replay else store.load_nodes(run_id)
        self._activations: dict[str, int] = {}
        self._occurrences: dict[str, int] = defaultdict(int)
        self._unpicklable: set[str] = set()
        self._window = getattr(store, "group_commit", 0.0)
        self._oldest_unflushed: float | None = None

    # -- nodes -----------------------------------------------------------------
    def lookup(self, node: str, kwargs: dict[str, Any]) -> tuple[str, bytes, StoredNode | None]:
        """Key and inputs digest of this activation of ``node``, and its committed record if it can be restored."""
        activations = self._activations
        k = activations.get(node, 0)
        activations[node] = k + 1
        key = f"{node}#{k}"
        inputs_hash = digest(kwargs)
        stored = self.restorable.get(key) if self.restorable else None
        if stored is not None and stored.inputs_hash != inputs_hash:
            stored = None
        return key, inputs_hash, stored

    def commit(self, key: str, inputs_hash: bytes, outcome: Any, tokens: Any, duration: float,
               attempts: int) -> None:
        """Save a node activation; commit at once unless it was cheap work (group commit, see SQLiteCheckpointer)."""
        if self.replay:
            return
        try:
            blob = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            self._not_picklable(key, exc)
            return
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
        self.flush()

    def _not_picklable(self, key: str, exc: Exception) -> None:
        name = key.rsplit("#", 1)[0]
        if name not in self._unpicklable:
            self._unpicklable.add(name)
            log.warning("output of node %r cannot be pickled (%s: %s); it is not checkpointed and runs "
                        "again on resume", name, type(exc).__name__, exc)

    def flush(self) -> None:
        """Commit every buffered node completion (group commit; see SQLiteCheckpointer)."""
        self._oldest_unflushed = None
        self.store.flush()

    # -- recorded responses ----------------------------------------------------
    async def generate(self, backend: Callable[[], Backend], batch: list[Request]) -> list[Completion]:
        """Serve ``batch`` from the record where possible; send the rest to the backend and record it."""
        self.flush()  # what led up to a model call is worth committing before it
        keys = [self._sample_keys(r) for r in batch]
        found = [[self.store.get_record(k) for k in ks] for ks in keys]
        missing = [i for i, blobs in enumerate(found) if any(b is None for b in blobs)]
        fresh: dict[int, Completion] = {}
        if missing:
            if self.replay:
                r = batch[missing[0]]
                raise ReplayMissError(f"run {self.run_id!r} has no recorded response for a request from node "
                                      f"{r.tag!r} (prompt starts {r.prompt_text()[:60]!r}); replay needs the "
                                      "same graph, input and prompts as the recorded run")
            completions = await backend().generate([batch[i] for i in missing])
            for i, completion in zip(missing, completions):
                fresh[i] = completion
                self._record_samples(keys[i], completion)
        out = []
        for i, request in enumerate(batch):
            if i in fresh:
                out.append(fresh[i])
            else:
                out.append(self._assemble([decode(b) for b in found[i]]))
        return out

    async def stream(self, backend: Callable[[], Backend], request: Request,
                     on_text: Callable[[str], Any]) -> Completion:
        self.flush()
        keys = self._sample_keys(request)
        blobs = [self.store.get_record(k) for k in keys]
        if all(b is not None for b in blobs):
            completion = self._assemble([decode(b) for b in blobs])
            result = on_text(completion.text)
            if hasattr(result, "__await__"):
                await result
            return completion
        if self.replay:
            raise ReplayMissError(f"run {self.run_id!r} has no recorded response for a streamed request from "
                                  f"node {request.tag!r}")
        completion = await backend().stream(request, on_text)
        self._record_samples(keys, completion)
        return completion

    async def remember(self, kind: str, key: str, compute: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``compute`` once per position in this run; later runs of the same id (resume, replay) reuse it."""
        base = f"{kind}:{self.run_id}:{hashlib.blake2b(key.encode(), digest_size=16).hexdigest()}"
        k = self._occurrences[base]
        self._occurrences[base] = k + 1
        record_key = f"{base}:{k}"
        self.flush()
        blob = self.store.get_record(record_key)
        if blob is not None:
            return decode(blob)
        if self.replay:
            raise ReplayMissError(f"run {self.run_id!r} has no recorded {kind} result for {key[:80]!r}")
        value = await compute()
        try:
            self.store.put_record(record_key, encode(value))
        except Exception as exc:  # an unpicklable result is simply not recorded
            log.warning("%s result for %r cannot be recorded: %s", kind, key[:80], exc)
        return value

    def _sample_keys(self, request: Request) -> list[str]:
        params = request.params
        body = to_json({"model": self.model, "node": request.tag, "prompt": request.prompt,
                        "params": params.model_dump(exclude={"n"}, mode="json")})
        base = "llm:" + hashlib.blake2b(body, digest_size=20).hexdigest()
        start = self._occurrences[base]
        self._occurrences[base] = start + params.n
        return [f"{base}:{start + i}" for i in range(params.n)]

    def _record_samples(self, keys: list[str], completion: Completion) -> None:
        for key, sample in zip(keys, completion.samples):
            self.store.put_record(key, encode((sample, completion.prompt_tokens, completion.cached_tokens,
                                               completion.model)))

    @staticmethod
    def _assemble(records: list[tuple[Sample, int, int, str]]) -> Completion:
        samples = tuple(r[0] for r in records)
        _, prompt_tokens, cached, model = records[0]
        return Completion(samples=samples, prompt_tokens=prompt_tokens, cached_tokens=cached, model=model)


def check_compatible(stored: Any, graph: str, fp: str, input_blob: bytes, run_id: str) -> None:
    """Refuse to apply a checkpointed run to a different graph or input."""
    if stored.graph != graph or stored.fingerprint != fp:
        raise CheckpointMismatchError(
            f"run {run_id!r} in the checkpoint was recorded for graph {stored.graph!r} with different nodes, "
            f"edges or types than graph {graph!r} has now; use a new --run-id (or a new checkpoint file)")
    if stored.input != input_blob and decode(stored.input) != decode(input_blob):
        raise CheckpointMismatchError(
            f"run {run_id!r} in the checkpoint was started with a different input; resume it with the same "
            "input (or none, to reuse the recorded one), or use a new --run-id")


class RunCheckpoint:
    """A run's link to its checkpoint: opens it, checks the run id fits, records the run's row."""

    def __init__(self, graph: Any, plan: Any, checkpoint: Any, run_id: str | None, replay: bool, cache: bool):
        if checkpoint is None:
            raise ValueError("run_id= and replay= need checkpoint= "
                             "(a Checkpointer, an SQLite file or a postgresql:// URL)")
        if replay and not run_id:
            raise ValueError("replay=True needs run_id= of a recorded run")
        self.store, self.owned = open_store(checkpoint)
        self.graph, self.replay, self.cache = graph.name, replay, cache
        self.fingerprint = fingerprint(plan)
        self.run_id = run_id or f"{graph.name}-{uuid.uuid4().hex[:12]}"
        self.stored = self.store.get_run(self.run_id)
        if replay and self.stored is None:
            self.close()
            raise CheckpointError(f"no run {run_id!r} in checkpoint {checkpoint}; nothing to replay")

    def begin(self, inputs: dict[str, Any], backend: Any) -> RunJournal:
        blob = encode(inputs)
        if self.stored is not None:
            check_compatible(self.stored, self.graph, self.fingerprint, blob, self.run_id)
        model = self.stored.model if self.replay else _model_id(backend)
        if not self.replay:
            created = self.stored.created if self.stored else 0.0
            self.store.put_run(StoredRun(self.run_id, self.graph, self.fingerprint, blob, model, created=created))
        return RunJournal(self.store, self.run_id, model, replay=self.replay, cache=self.cache)

    def finish(self, output: Any, status: str, error: Any) -> None:
        try:
            if not self.replay:
                self.store.flush()
                run = self.store.get_run(self.run_id)
                try:
                    out = encode(output)
                except Exception:
                    out = None
                self.store.put_run(StoredRun(self.run_id, run.graph, run.fingerprint, run.input, run.model, status,
                                             out, None if error is None else str(error), run.created))
        finally:
            self.close()

    def close(self) -> None:
        if self.owned:
            self.store.close()


def _model_id(backend: Any) -> str:
    if backend is None:
        return ""
    return str(getattr(backend, "model", "") or getattr(backend, "name", type(backend).__name__))
