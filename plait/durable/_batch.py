"""Batch runs: one graph over many inputs, bounded concurrency, one result per input, resumable.

Input ``i`` runs as run ``BATCH/i`` on the shared backend. With a checkpoint,
an input whose run already finished is not run again (its recorded result is
reused), and a run cut short resumes from its committed nodes. A batch whose
checkpoint was written by another graph (or another version of it: other
nodes, edges or types) is refused, or with ``force=True`` its old results are
dropped. A failing input gets an error record and the batch goes on.

Several workers (processes, on several machines with PostgreSQL) may run one
batch together: each input is leased to one worker while it runs (see
``_leases``), so none runs twice, and a killed worker's inputs are taken over
when its leases expire. Every worker returns (and writes) every input's
result, those the others finished included. With ``executor=RayExecutor(...)``
the workers are Ray actors, each running this same loop (see ``_ray``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from pydantic_core import to_jsonable_python

from plait.durable._base import Checkpointer, StoredRun
from plait.durable._leases import LOST, Lease, LeasedStore, while_leased, worker_id
from plait.durable._results import ResultsFile, results_target
from plait.durable._store import open_store
from plait.errors import CheckpointMismatchError, ConfigError, PlaitError, RunError
from plait.orchestrator._runtime import Run
from plait.orchestrator._sync import call_sync

if TYPE_CHECKING:
    from plait.executors._base import Backend
    from plait.orchestrator._graph import Graph

__all__ = ["run_batch", "run_batch_sync", "BatchItem", "BatchResult", "InvalidInput"]

log = logging.getLogger("plait.durable")


@dataclasses.dataclass(frozen=True)
class InvalidInput:
    """Stands in for an input that could not even be read (e.g. a line of bad JSON)."""

    error: str


@dataclasses.dataclass
class BatchItem:
    """The result of one input. ``status``: ok, partial, failed, cancelled."""

    index: int
    id: Any
    status: str
    output: Any = None
    error: str | None = None
    retries: int = 0
    tokens: int = 0
    resumed: bool = False  # finished by an earlier batch or another worker

    def to_json(self) -> str:
        data = {"index": self.index, "id": self.id, "status": self.status, "output": self.output,
                "error": self.error, "retries": self.retries, "tokens": self.tokens}
        return json.dumps(to_jsonable_python(data, fallback=repr), ensure_ascii=False)


@dataclasses.dataclass
class BatchResult:
    """Every input's :class:`BatchItem`, in input order."""

    items: list[BatchItem]
    duration: float

    @property
    def ok(self) -> int:
        return sum(item.status in ("ok", "partial") for item in self.items)

    @property
    def failed(self) -> int:
        return sum(item.status == "failed" for item in self.items)

    @property
    def resumed(self) -> int:
        return sum(item.resumed for item in self.items)

    def summary(self) -> str:
        run = len(self.items) - self.resumed
        rate = run / self.duration if self.duration > 0 else 0.0
        return (f"batch: {len(self.items)} inputs, {self.ok} ok, {self.failed} failed "
                f"({self.resumed} finished earlier); {rate:.1f} inputs/s over {self.duration:.2f}s")


async def run_batch(graph: Graph, inputs: Iterable[Any], *, backend: Backend | None = None, concurrency: int = 4,
                    checkpoint: Checkpointer | str | Path | None = None, batch_id: str = "batch",
                    output: str | Path | None = None, id_field: str | None = None, progress: bool = False,
                    retry_failed: bool = False, on_item: Callable[[BatchItem], None] | None = None,
                    force: bool = False, lease: float = 30.0, executor: Any = None,
                    **run_options: Any) -> BatchResult:
    """Run ``graph`` over every input; see the module docstring.

    ``checkpoint``: a :class:`~plait.Checkpointer`, an SQLite file or a
    ``postgresql://`` URL. ``id_field`` names a key of dict inputs that
    identifies the input (it is removed from the input unless the graph takes
    it); otherwise the id is the input's index. ``retry_failed`` runs inputs
    whose recorded run failed again. ``force`` drops the results of runs
    recorded for another graph instead of refusing the batch. ``lease``:
    seconds a worker holds an input without renewing (a killed worker's inputs
    wait that long). ``executor``: where the inputs run, e.g. a
    :class:`~plait.durable.RayExecutor` (workers on a Ray cluster sharing the
    checkpoint; ``concurrency`` is then per worker); None runs them in this
    process. ``run_options`` go to each :class:`~plait.Run`.

    A coroutine: ``await run_batch(...)``; from a script or a notebook call
    :func:`run_batch_sync` with the same arguments.
    """
    Run.check_options(run_options)
    if concurrency < 1:
        raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
    if "/" in batch_id or not batch_id:
        raise ConfigError(f"batch_id must be non-empty and contain no '/', got {batch_id!r}")
    if not lease > 0:
        raise ConfigError(f"lease must be > 0 seconds, got {lease}")
    if output is not None:
        results_target(output)  # a directory or a device is refused before anything runs
    if executor is not None and run_options.get("backends"):
        raise ConfigError("with executor=RayExecutor(...) each worker builds its own backend; named backends "
                          "(backends=) run in this process: leave out executor= or backends=")
    if executor is not None:
        checkpoint = executor.check(checkpoint, backend)  # before anything runs: one workers can share
    items = list(inputs)
    store, owned = open_store(checkpoint) if checkpoint is not None else (None, False)
    try:
        batch = _Batch(graph, items, store, batch_id, id_field, retry_failed, lease, backend, run_options)
        return await batch.run(concurrency, output, progress, on_item, force, executor, checkpoint)
    finally:
        if owned and store is not None:
            store.close()


def run_batch_sync(graph: Graph, inputs: Iterable[Any], **options: Any) -> BatchResult:
    """:func:`run_batch` for synchronous code: a script, or a notebook cell (whose loop is already running)."""
    return call_sync(run_batch, graph, inputs, **options)


def _split(value: Any, index: int, id_field: str | None, graph: Graph) -> tuple[Any, Any]:
    """The input's id and what the graph receives."""
    if id_field is None or not isinstance(value, dict) or id_field not in value:
        return index, value
    ident = value[id_field]
    if id_field in graph.input_params:
        return ident, value
    return ident, {k: v for k, v in value.items() if k != id_field}


class _Batch:
    """One worker's view of a batch: which inputs are done, which to take, and running them."""

    def __init__(self, graph: Graph, items: list[Any], store: Checkpointer | None, batch_id: str,
                 id_field: str | None, retry_failed: bool, lease: float, backend: Backend | None, run_options: dict):
        from plait.orchestrator._journal import fingerprint

        self.graph, self.items, self.store, self.batch_id = graph, items, store, batch_id
        self.id_field, self.retry_failed, self.lease = id_field, retry_failed, lease
        self.backend, self.run_options = backend, run_options
        self.fingerprint = fingerprint(graph._compile())
        self.owner = worker_id()
        self.stale: dict[int, float] = {}  # failed runs to retry: when they were recorded
        self.results: list[BatchItem | None] = [None] * len(items)

    async def run(self, concurrency: int, output: str | Path | None, progress: bool,
                  on_item: Callable[[BatchItem], None] | None, force: bool, executor: Any = None,
                  checkpoint: Any = None) -> BatchResult:
        t0 = time.perf_counter()
        if self.store is not None:
            await self.store.call(self._finished_earlier, force)
        writer = ResultsFile(output, resume=self.store is not None) if output is not None else None
        if writer is not None:  # a kill may have come between a commit and its line
            for item in self.results:
                if item is not None and item.index not in writer.lines:
                    writer.add(item.index, item.to_json())
        pending = [i for i, item in enumerate(self.results) if item is None]
        display = _Progress(len(self.items), len(self.items) - len(pending)) if progress else None

        def settle(item: BatchItem) -> None:
            self.results[item.index] = item
            if writer is not None:
                writer.add(item.index, item.to_json())
            if display is not None:
                display.advance(item)
            if on_item is not None:
                on_item(item)

        try:
            if executor is None:
                await self.take_and_run(pending, concurrency, settle)
            else:
                await executor.run(self, checkpoint, pending, concurrency, settle)
        finally:
            if display is not None:
                display.close()
            if writer is not None:
                writer.close(sort=all(item is not None for item in self.results))
        return BatchResult([item for item in self.results if item is not None], time.perf_counter() - t0)

    async def take_and_run(self, pending: list[int], concurrency: int, settle: Callable[[BatchItem], None]) -> None:
        """Run ``pending`` inputs (in that order), ``concurrency`` at once, taking each by lease; ``settle`` each."""
        while pending:  # each pass runs what it can take; inputs other workers hold wait for the next
            todo, busy, errors = deque(pending), [], []

            async def worker(scope: anyio.CancelScope) -> None:
                try:
                    while todo:
                        i = todo.popleft()
                        item = await self._attempt(i)
                        if item is None:
                            busy.append(i)
                        else:
                            settle(item)
                except Exception as exc:  # the store or the results file failed: stop, report it plainly
                    errors.append(exc)
                    scope.cancel()

            async with anyio.create_task_group() as tg:
                for _ in range(min(concurrency, len(todo))):
                    tg.start_soon(worker, tg.cancel_scope)
            if errors:
                raise errors[0]
            pending = sorted(busy)
            if pending:
                await anyio.sleep(min(max(self.lease / 10, 0.05), 1.0))

    def _finished_earlier(self, force: bool) -> None:
        """Refuse a checkpoint of another graph (or drop its runs, ``force``); take over finished inputs."""
        store = self.store
        if store is None:
            return
        stored = {run.run_id: run for run in store.list_runs(f"{self.batch_id}/")}
        foreign = [run for run in stored.values() if not self._ours(run)]
        if foreign and not force:
            run = foreign[0]
            raise CheckpointMismatchError(
                f"batch {self.batch_id!r} in the checkpoint was run with another graph ({len(foreign)} of its "
                f"runs, e.g. {run.run_id!r}, were recorded for graph {run.graph!r} with different nodes, edges or "
                "types); use another batch_id=, or force=True to drop its old results")
        for run in foreign:
            log.warning("dropping run %r: it was recorded for another graph (force=True)", run.run_id)
            store.delete_run(run.run_id)
            del stored[run.run_id]
        for i in range(len(self.items)):
            earlier = stored.get(f"{self.batch_id}/{i}")
            if earlier is not None:
                self.results[i] = self._finished(i, earlier, at_start=True)

    def _ours(self, run: StoredRun) -> bool:
        return run.graph == self.graph.name and run.fingerprint == self.fingerprint

    def _finished(self, i: int, stored: StoredRun | None, *, at_start: bool = False) -> BatchItem | None:
        """Input ``i``'s recorded result, if its run finished (and is not a failure to retry) for this input."""
        value, store = self.items[i], self.store
        if (store is None or stored is None or not stored.finished or isinstance(value, InvalidInput)
                or not self._ours(stored)):
            return None
        if stored.status == "failed" and self.retry_failed:
            if at_start:
                self.stale[i] = stored.updated
                return None
            if self.stale.get(i) == stored.updated:
                return None  # still the failure this batch set out to retry
        from plait.durable._codec import digest, load_inputs, load_json
        from plait.orchestrator._runtime import bind_inputs

        ident, given = _split(value, i, self.id_field, self.graph)
        plan = self.graph._compile()
        try:
            recorded = load_inputs(plan.input_params, stored.input, f"recorded input of run {stored.run_id!r}")
            if digest(recorded) != digest(bind_inputs(self.graph, plan, given)):
                return None  # the input changed: running it reports the mismatch as this input's error
            output = load_json(stored.output, f"recorded output of run {stored.run_id!r}")
        except PlaitError:
            return None
        tokens = sum(n.prompt_tokens + n.completion_tokens for n in store.load_nodes(stored.run_id).values())
        return BatchItem(i, ident, stored.status, output, stored.error, 0, tokens, resumed=True)

    async def _attempt(self, i: int) -> BatchItem | None:
        """Run input ``i`` under its lease; None if another worker holds it (or took it over)."""
        store = self.store
        if store is None or isinstance(self.items[i], InvalidInput):
            return await self._run_one(i)
        key = f"{self.batch_id}/{i}"
        if not await store.call(store.take_lease, key, self.owner, self.lease):
            return None

        lease = Lease(store, key, self.owner, self.lease)

        async def work() -> BatchItem:  # another worker may have finished it before we took the lease
            done = await store.call(lambda: self._finished(i, store.get_run(key)))
            return done if done is not None else await self._run_one(i, LeasedStore(store, lease))

        item = await while_leased(lease, work)
        return None if item is LOST else item

    async def _run_one(self, i: int, store: Checkpointer | None = None) -> BatchItem:
        """Run input ``i``, its writes going to ``store`` (the batch's store seen through the input's lease)."""
        value = self.items[i]
        if isinstance(value, InvalidInput):
            return BatchItem(i, i, "failed", error=value.error)
        ident, given = _split(value, i, self.id_field, self.graph)
        options = dict(self.run_options, keep_events=False)
        if store is not None:
            options.update(checkpoint=store, run_id=f"{self.batch_id}/{i}")
        try:
            result = await self.graph.run(given, backend=self.backend, **options)
        except RunError as exc:
            partial = exc.partial
            retries = sum(r.retries for r in partial.nodes.values()) if partial else 0
            tokens = partial.tokens.total if partial else 0
            status = "cancelled" if partial is not None and partial.status == "cancelled" else "failed"
            return BatchItem(i, ident, status, None, _first_line(exc), retries, tokens)
        except (PlaitError, ValueError) as exc:  # input that does not fit, a mismatched checkpoint
            return BatchItem(i, ident, "failed", None, f"{type(exc).__name__}: {_first_line(exc)}")
        retries = sum(r.retries for r in result.nodes.values())
        error = "; ".join(f"{n}: {e}" for n, e in result.failures.items()) or None
        return BatchItem(i, ident, result.status, result.output, error, retries, result.tokens.total)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _Progress:
    """A rich progress bar on stderr: done/total, inputs per second, ETA, failures."""

    def __init__(self, total: int, done: int):
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.failed = 0
        self.started = time.perf_counter()
        self.done_at_start = done
        self.progress = Progress(TextColumn("batch"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]} inputs/s"), TimeElapsedColumn(),
                                 TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[failed]} failed"),
                                 console=Console(stderr=True), transient=False)
        self.task = self.progress.add_task("batch", total=total, completed=done, rate="-", failed=0)
        self.progress.start()

    def advance(self, item: BatchItem) -> None:
        self.failed += item.status == "failed"
        task = self.progress.tasks[0]
        ran = task.completed + 1 - self.done_at_start
        rate = ran / max(time.perf_counter() - self.started, 1e-9)
        self.progress.update(self.task, advance=1, rate=f"{rate:.1f}", failed=self.failed)

    def close(self) -> None:
        self.progress.stop()
