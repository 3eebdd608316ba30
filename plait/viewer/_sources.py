"""Reading what ``plait view`` is given: a JSONL trace, a checkpoint (SQLite file or postgresql:// URL), or a
batch results file. Each comes back as a list of runs, each run a list of trace-like event dicts.

A checkpoint keeps each committed node activation (its output, tokens, duration, attempts) and the run's
input, output and status, but not the graph's edges, start times, failed attempts or custom events: a page
made from one says so, draws the nodes without edges and leaves the timeline out. Given the graph that
wrote it, each run is instead replayed from its records (no model) with a trace, which has everything but
the original times. A results file keeps one line per input (status, output, error, tokens): its pages
show just that.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from plait.errors import ViewError

__all__ = ["SourceRun", "read_source"]

CHECKPOINT_NOTE = ("Made from a checkpoint, which keeps each finished node activation (output, tokens, "
                   "duration, attempts) but not the graph's edges, start times, failed attempts or reasoning "
                   "events: the graph is drawn without edges and there is no timeline. For the full page, give "
                   "the graph that wrote it (plait view DB --run-id ID --graph MODULE:GRAPH replays the run "
                   "from its records, no model needed), or view a trace (plait run --trace run.jsonl).")
REPLAY_NOTE = ("Made by replaying the checkpointed run: its recorded model responses and tool results were "
               "served again, so the graph, outputs, tokens and reasoning are the run's, but the times on the "
               "timeline are the replay's, not the original run's.")
RESULTS_NOTE = ("Made from a batch results file, which keeps each input's status, output, error and tokens, "
                "not its events. View the batch's checkpoint or a trace for the graph and timeline.")


@dataclasses.dataclass
class SourceRun:
    """One run to draw: its events, and a note saying what the source lacks (None for a trace)."""

    events: list[dict]
    note: str | None = None
    output: Any = None
    timeline: bool = True


def _json(text: str | bytes) -> Any:
    """JSON as data: NaN, Infinity and 1e999 stay strings (the browser's JSON.parse refuses them)."""
    return json.loads(text, parse_constant=str, parse_float=_finite_float)


def _finite_float(text: str) -> float | str:
    value = float(text)
    return value if math.isfinite(value) else text


def read_source(source: str | Path, run_id: str | None = None, graph: Any = None) -> list[SourceRun]:
    """The runs ``source`` holds (one with ``run_id``); ViewError with a one-line reason otherwise.

    ``graph``: the Graph a checkpoint was written by; its runs are then replayed with a trace (full pages).
    """
    text = str(source)
    if text.startswith(("postgresql://", "postgres://")):
        return _checkpoint(text, run_id, graph)
    path = Path(source)
    if not path.is_file():
        raise ViewError(f"{text!r} does not exist or is not a file; give a JSONL trace (plait run --trace), "
                         "a checkpoint or a batch results file")
    with path.open("rb") as f:
        head = f.read(16)
    if head == b"SQLite format 3\x00":
        return _checkpoint(path, run_id, graph)
    if graph is not None:
        raise ViewError(f"--graph replays a checkpoint's runs; {text!r} is not a checkpoint")
    lines = _lines(path)
    if lines and all("kind" in line for line in lines):
        return _trace(text, lines, run_id)
    if lines and all("index" in line for line in lines):
        if run_id is not None:
            raise ViewError(f"--run-id is for traces and checkpoints; {text!r} is a batch results file")
        return _results(lines)
    raise ViewError(f"{text!r} is not a JSONL trace, a batch results file or a checkpoint; "
                     "write a trace with plait run --trace run.jsonl")


def _lines(path: Path) -> list[dict]:
    """Each line as a JSON object; [] when any line is not one (the file is something else)."""
    out = []
    try:
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    value = _json(line)
                    if not isinstance(value, dict):
                        return []
                    out.append(value)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return []
    return out


def _trace(name: str, events: list[dict], run_id: str | None) -> list[SourceRun]:
    runs: dict[str, list[dict]] = {}
    current = ""
    for event in events:  # an event without a run id belongs to the run before it
        rid = event.get("run_id")
        current = rid if isinstance(rid, str) else current
        runs.setdefault(current, []).append(event)
    if run_id is not None:
        if run_id not in runs:
            raise ViewError(f"run {run_id!r} is not in {name!r}; it holds {_some(runs)}")
        return [SourceRun(runs[run_id])]
    return [SourceRun(run) for run in runs.values()]


def _some(ids: Any) -> str:
    ids = list(ids)
    shown = ", ".join(repr(i) for i in ids[:5])
    return f"runs {shown}" + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")


def _results(lines: list[dict]) -> list[SourceRun]:
    runs = []
    for line in sorted(lines, key=lambda x: x["index"] if isinstance(x["index"], int) else 0):
        ident = str(line.get("id", line["index"]))
        tokens = line.get("tokens") if isinstance(line.get("tokens"), int) else 0
        events = [{"kind": "run_started", "run_id": ident, "t": 0.0, "graph": "", "inputs": None},
                  {"kind": "run_finished", "run_id": ident, "t": 0.0, "status": line.get("status"),
                   "duration": None, "tokens": tokens, "error": line.get("error")}]  # a results file has no times
        runs.append(SourceRun(events, RESULTS_NOTE, line.get("output"), timeline=False))
    return runs


def _checkpoint(source: str | Path, run_id: str | None, graph: Any) -> list[SourceRun]:
    from plait.durable._store import open_store

    store, _ = open_store(source)
    try:
        if run_id is not None:
            stored = store.get_run(run_id)
            if stored is None:
                raise ViewError(f"run {run_id!r} is not in checkpoint {str(source)!r}; it holds "
                                f"{_some(r.run_id for r in store.list_runs())}")
            runs = [stored]
        else:
            runs = store.list_runs()
            if not runs:
                raise ViewError(f"checkpoint {str(source)!r} holds no runs")
        if graph is None:
            return [_stored_run(store, stored) for stored in runs]
    finally:
        store.close()
    return [_replayed(graph, source, stored.run_id) for stored in runs]


def _replayed(graph: Any, source: str | Path, run_id: str) -> SourceRun:
    """Replay a checkpointed run with a trace: its events, as the run emitted them, served from its records."""
    import tempfile

    import anyio

    from plait.errors import RunError

    with tempfile.TemporaryDirectory(prefix="plait-view-") as folder:
        trace = Path(folder) / "replay.jsonl"
        try:
            anyio.run(lambda: graph.run(checkpoint=source, run_id=run_id, replay=True, trace=trace,
                                        keep_events=False))
        except RunError:
            pass  # a run that failed replays as failed: the trace has it
        return SourceRun(_lines(trace), REPLAY_NOTE)


def _stored_run(store: Any, stored: Any) -> SourceRun:
    """A checkpointed run as events: one finished activation per committed node (no start times)."""
    rid = stored.run_id
    events: list[dict] = [{"kind": "run_started", "run_id": rid, "t": 0.0, "graph": stored.graph,
                           "started_at": stored.created, "inputs": _payload(stored.input)}]
    for key, node in store.load_nodes(rid).items():
        name = key.rsplit("#", 1)[0]
        outcome = _payload(node.outcome)
        value = outcome.get("value") if isinstance(outcome, dict) else outcome
        route = outcome.get("to") if isinstance(outcome, dict) and outcome.get("routed") else None
        events.append({"kind": "node_finished", "run_id": rid, "node": name, "t": node.duration,
                       "duration": node.duration, "output": value, "attempts": node.attempts,
                       "route": None if route is None else str(route)})
        events.append({"kind": "tokens_used", "run_id": rid, "node": name, "t": node.duration,
                       "prompt_tokens": node.prompt_tokens, "completion_tokens": node.completion_tokens,
                       "cached_tokens": node.cached_tokens, "model": stored.model})
    seconds = max(0.0, stored.updated - stored.created) if stored.created else 0.0
    events.append({"kind": "run_finished", "run_id": rid, "t": seconds, "status": stored.status,
                   "duration": seconds, "error": stored.error})
    return SourceRun(events, CHECKPOINT_NOTE, _payload(stored.output), timeline=False)


def _payload(data: Any) -> Any:
    if data is None:
        return None
    try:
        return _json(data)
    except (ValueError, RecursionError):
        return "(not JSON in the checkpoint)"
