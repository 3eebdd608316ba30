"""Event sinks that ship with plait: a JSONL trace file and a rich progress display."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from typing import IO, Any

from plait.orchestrator._events import Event, NodeFinished, NodeStarted, RunFinished

__all__ = ["JsonlTrace", "RichProgress", "open_sinks", "read_trace"]


class JsonlTrace:
    """Writes every event as one JSON line. Use as a context manager, or pass ``trace=path`` to a run."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        self._file: IO[str] | None = None

    def __enter__(self) -> JsonlTrace:
        self._file = open(self.path, "w", encoding="utf-8")
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __call__(self, event: Event) -> None:
        if self._file is None:
            raise RuntimeError("JsonlTrace is closed; use it inside `with JsonlTrace(path) as trace:`")
        self._file.write(json.dumps(event.to_dict(), default=repr) + "\n")
        if isinstance(event, RunFinished):
            self._file.flush()


def read_trace(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Load a JSONL trace back as a list of dicts."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class RichProgress:
    """A live terminal display: nodes finished out of total, what is running, tokens spent."""

    def __init__(self, total_nodes: int, console: Any = None):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TextColumn("{task.fields[running]}"),
                                  console=console or Console(stderr=True), transient=False)
        self._task = self._progress.add_task("plait", total=total_nodes, running="")
        self._running: dict[str, None] = {}

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._progress.stop()

    def __call__(self, event: Event) -> None:
        if isinstance(event, NodeStarted):
            self._running[event.node] = None
        elif isinstance(event, NodeFinished):
            self._running.pop(event.node, None)
            if "/" not in event.node and "[" not in event.node:
                self._progress.advance(self._task)
        elif isinstance(event, RunFinished):
            self._running.clear()
        running = ", ".join(list(self._running)[:4])
        self._progress.update(self._task, running=running)


@contextlib.contextmanager
def open_sinks(trace: Any, progress: bool, plan: Any) -> Iterator[list[Callable[[Event], None]]]:
    with contextlib.ExitStack() as stack:
        sinks: list[Callable[[Event], None]] = []
        if trace is not None:
            sinks.append(stack.enter_context(JsonlTrace(trace)))
        if progress:
            sinks.append(stack.enter_context(RichProgress(len(plan.nodes))))
        yield sinks
