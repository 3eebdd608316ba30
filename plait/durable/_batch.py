"""Batch runs: one graph over many inputs, bounded concurrency, one result per input, resumable.

Input ``i`` runs as run ``BATCH/i`` on the shared backend. With a checkpoint,
an input whose run already finished is not run again (its recorded result is
reused), and a run cut short resumes from its committed nodes. A failing input
gets an error record and the batch goes on. The results file gets one JSON line
per input as it finishes; at the end it is rewritten in input order. A file
left by a killed batch (a torn last line, lines missing for runs the checkpoint
finished) is repaired on resume, so every input ends with exactly one line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import anyio
from pydantic_core import to_jsonable_python

from plait.durable._store import Checkpointer, SQLiteCheckpointer
from plait.errors import PlaitError, RunError

__all__ = ["run_batch", "BatchItem", "BatchResult", "InvalidInput"]


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
    resumed: bool = False  # finished by an earlier, interrupted batch

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


async def run_batch(graph: Any, inputs: Iterable[Any], *, backend: Any = None, concurrency: int = 4,
                    checkpoint: Checkpointer | str | Path | None = None, batch_id: str = "batch",
                    output: str | Path | None = None, id_field: str | None = None, progress: bool = False,
                    retry_failed: bool = False, on_item: Callable[[BatchItem], None] | None = None,
                    **run_options: Any) -> BatchResult:
    """Run ``graph`` over every input; see the module docstring.

    ``id_field`` names a key of dict inputs that identifies the input (it is
    removed from the input unless the graph takes it); otherwise the id is the
    input's index. ``retry_failed`` runs inputs whose recorded run failed again.
    ``run_options`` go to each :class:`~plait.Run` (deadline, token_budget...).
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    if "/" in batch_id or not batch_id:
        raise ValueError(f"batch_id must be non-empty and contain no '/', got {batch_id!r}")
    items_in = list(inputs)
    owned = checkpoint is not None and not isinstance(checkpoint, Checkpointer)
    store = SQLiteCheckpointer(checkpoint) if owned else checkpoint
    t0 = time.perf_counter()
    try:
        results: list[BatchItem | None] = [None] * len(items_in)
        for i, value in enumerate(items_in):
            results[i] = _finished_earlier(store, graph, batch_id, i, value, id_field, retry_failed)
        writer = _ResultsFile(output, resume=store is not None) if output is not None else None
        if writer is not None:
            writer.complete([r for r in results if r is not None])
        todo = deque(i for i, r in enumerate(results) if r is None)
        display = _Progress(len(items_in), len(items_in) - len(todo)) if progress else None

        async def worker() -> None:
            while todo:
                i = todo.popleft()
                item = await _run_one(graph, i, items_in[i], id_field, backend, store, batch_id, run_options)
                results[i] = item
                if writer is not None:
                    writer.add(item)
                if display is not None:
                    display.advance(item)
                if on_item is not None:
                    on_item(item)

        try:
            async with anyio.create_task_group() as tg:
                for _ in range(min(concurrency, len(todo))):
                    tg.start_soon(worker)
        finally:
            if display is not None:
                display.close()
            if writer is not None:
                writer.close(sort=all(r is not None for r in results))
        return BatchResult([r for r in results if r is not None], time.perf_counter() - t0)
    finally:
        if owned:
            store.close()


def _split(value: Any, index: int, id_field: str | None, graph: Any) -> tuple[Any, Any]:
    """The input's id and what the graph receives."""
    if id_field is None or not isinstance(value, dict) or id_field not in value:
        return index, value
    ident = value[id_field]
    if id_field in graph.input_params:
        return ident, value
    return ident, {k: v for k, v in value.items() if k != id_field}


def _finished_earlier(store: Checkpointer | None, graph: Any, batch_id: str, i: int, value: Any,
                      id_field: str | None, retry_failed: bool) -> BatchItem | None:
    if store is None or isinstance(value, InvalidInput):
        return None
    stored = store.get_run(f"{batch_id}/{i}")
    if stored is None or not stored.finished or (stored.status == "failed" and retry_failed):
        return None
    from plait.durable._codec import digest, load_inputs, load_json
    from plait.orchestrator._runtime import bind_inputs

    ident, given = _split(value, i, id_field, graph)
    plan = graph._compile()
    try:
        recorded = load_inputs(plan.input_params, stored.input, f"recorded input of run {stored.run_id!r}")
        if digest(recorded) != digest(bind_inputs(graph, plan, given)):
            return None  # the input changed: running it reports the mismatch as this input's error
        output = load_json(stored.output, f"recorded output of run {stored.run_id!r}")
    except PlaitError:
        return None
    tokens = sum(n.prompt_tokens + n.completion_tokens for n in store.load_nodes(stored.run_id).values())
    return BatchItem(i, ident, stored.status, output, stored.error, 0, tokens, resumed=True)


async def _run_one(graph: Any, i: int, value: Any, id_field: str | None, backend: Any, store: Any,
                   batch_id: str, run_options: dict[str, Any]) -> BatchItem:
    if isinstance(value, InvalidInput):
        return BatchItem(i, i, "failed", error=value.error)
    ident, given = _split(value, i, id_field, graph)
    options = dict(run_options, keep_events=False)
    if store is not None:
        options.update(checkpoint=store, run_id=f"{batch_id}/{i}")
    try:
        result = await graph.run(given, backend=backend, **options)
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


class _ResultsFile:
    """The JSONL results file: appended as inputs finish, repaired on resume, sorted at the end."""

    def __init__(self, path: str | Path, *, resume: bool):
        self.path = Path(path)
        self.lines: dict[int, str] = {}
        if resume and self.path.exists():
            self.lines = _read_results(self.path)
        self._rewrite(sorted(self.lines.items()))
        self.file = self.path.open("a", encoding="utf-8")

    def complete(self, items: list[BatchItem]) -> None:
        """Write lines for inputs the checkpoint finished but the file lacks (a kill came in between)."""
        for item in items:
            if item.index not in self.lines:
                self.add(item)

    def add(self, item: BatchItem) -> None:
        line = item.to_json()
        self.lines[item.index] = line
        self.file.write(line + "\n")
        self.file.flush()

    def close(self, *, sort: bool) -> None:
        self.file.close()
        if sort:
            self._rewrite(sorted(self.lines.items()))

    def _rewrite(self, lines: list[tuple[int, str]]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            f.writelines(line + "\n" for _, line in lines)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def _read_results(path: Path) -> dict[int, str]:
    """Complete, parseable lines by input index (the first line wins; a torn last line is dropped)."""
    lines: dict[int, str] = {}
    with path.open(encoding="utf-8", errors="replace") as f:
        for raw in f:
            if not raw.endswith("\n"):
                break
            try:
                index = json.loads(raw)["index"]
            except (ValueError, KeyError, TypeError):
                continue
            if isinstance(index, int):
                lines.setdefault(index, raw.rstrip("\n"))
    return lines


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
