"""From one run's events (the dicts of a JSONL trace) to what the page draws: activations, nodes, totals.

Events are read as hostile input: a field of the wrong type counts as absent (a name that is not a string,
a time that is not a finite number), so a crafted trace yields a page, or a one-line error, never a crash
in the browser. Activations are keyed by the event's node name (``node[i]`` for a map item,
``parent/child`` inside a subgraph); a graph node gathers every activation whose name is its own once
the ``[i]`` indices are dropped.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["build_run", "base_name", "STATUSES"]

STATUSES = ("ok", "failed", "skipped", "cancelled", "restored", "interrupted", "not run")
_INDEX = re.compile(r"\[\d+\]")


def base_name(name: str) -> str:
    """The graph node an activation belongs to: ``a[2]/b[0]`` -> ``a/b``."""
    return _INDEX.sub("", name)


_LIMIT = 1e9  # seconds; beyond this a time is junk, and clamping keeps every difference finite


def _num(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return min(max(float(value), -_LIMIT), _LIMIT)
    return 0.0


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _activations(events: list[dict], run_status: str) -> tuple[list[dict], dict[str, dict]]:
    """One dict per activation, in start order, and token totals per model."""
    acts: list[dict] = []
    current: dict[str, dict] = {}  # activation name -> its latest activation
    models: dict[str, dict] = {}

    def new(name: str, start: float) -> dict:
        act = {"label": name, "node": base_name(name), "start": start, "end": start, "status": "running",
               "attempts": 0, "retries": [], "inputs": None, "output": None, "error": None, "route": None,
               "tokens": [0, 0, 0]}
        acts.append(act)
        current[name] = act
        return act

    for event in events:
        kind, name, t = event.get("kind"), _str(event.get("node")), _num(event.get("t"))
        act = current.get(name)
        if kind == "node_started" and name:
            if act is None or act["status"] != "running" or _int(event.get("attempt")) <= 1:
                act = new(name, t)
                act["inputs"] = event.get("inputs")
            act["attempts"] += 1
        elif kind == "node_finished" and name:
            if act is None or act["status"] != "running":
                act = new(name, max(-_LIMIT, t - _num(event.get("duration"))))
            restored = event.get("restored") is True
            act.update(status="restored" if restored else "ok", end=t, output=event.get("output"),
                       route=event.get("route") if isinstance(event.get("route"), str) else None, error=None)
            act["attempts"] = act["attempts"] or _int(event.get("attempts")) or 1
        elif kind == "node_failed" and name:
            act = act or new(name, t)
            act.update(status="failed", end=t, error=_str(event.get("error")) or "failed")
            act["attempts"] = act["attempts"] or 1
        elif kind == "node_retried" and act is not None:
            act["retries"].append({"attempt": _int(event.get("attempt")), "delay": _num(event.get("delay")),
                                   "error": _str(event.get("error"))})
            act["status"] = "running"
        elif kind == "node_skipped" and name:
            act = new(name, t)
            act.update(status="skipped", error=_str(event.get("reason")))
        elif kind == "node_cancelled" and name:
            act = act if act is not None and act["status"] == "running" else new(name, t)
            act.update(status="cancelled", end=t)
        elif kind == "tokens_used":
            counts = [_int(event.get(k)) for k in ("prompt_tokens", "cached_tokens", "completion_tokens")]
            if act is not None:
                act["tokens"] = [a + b for a, b in zip(act["tokens"], counts)]
            model = models.setdefault(_str(event.get("model")) or "(unnamed)", {"prompt": 0, "cached": 0,
                                                                               "generated": 0})
            for key, count in zip(("prompt", "cached", "generated"), counts):
                model[key] += count
    for act in acts:
        if act["status"] == "running":  # started, never ended: the run stopped around it
            act["status"] = "interrupted" if run_status == "interrupted" else "cancelled"
            act["error"] = act["error"] or ("waits for the answer to an interrupt" if run_status == "interrupted"
                                            else "did not finish before the run ended")
    return acts, models


def _node_status(statuses: set[str]) -> str:
    for status in ("failed", "interrupted", "cancelled"):
        if status in statuses:
            return status
    if statuses == {"restored"}:
        return "restored"
    if "ok" in statuses or "restored" in statuses:
        return "ok"
    return "skipped" if statuses else "not run"


def build_run(events: list[dict]) -> dict:
    """The page's data for one run: ``run`` (id, graph, status, times, input), ``acts``, ``nodes``, ``totals``.

    ``nodes`` maps each graph node name to its status, runs, busy seconds, tokens and activation indices;
    the graph's shape (``run_started.shape``) is returned as ``shape`` for the layout (None when absent).
    """
    started: dict[str, Any] = next((e for e in events if e.get("kind") == "run_started"), {})
    finished: dict[str, Any] = next((e for e in reversed(events) if e.get("kind") == "run_finished"), {})
    status = _str(finished.get("status")) or "unfinished"
    acts, models = _activations(events, status)
    nodes: dict[str, dict] = {}
    for index, act in enumerate(acts):
        node = nodes.setdefault(act["node"], {"runs": 0, "busy": 0.0, "tokens": 0, "acts": [], "statuses": set()})
        node["acts"].append(index)
        node["statuses"].add(act["status"])
        if act["status"] != "skipped":
            node["runs"] += 1
            node["busy"] += max(0.0, act["end"] - act["start"])
        node["tokens"] += act["tokens"][0] + act["tokens"][2]
    for node in nodes.values():
        node["status"] = _node_status(node.pop("statuses"))
    prompt = sum(m["prompt"] for m in models.values())
    cached = sum(m["cached"] for m in models.values())
    generated = sum(m["generated"] for m in models.values())
    wall = _num(finished.get("duration")) or max((a["end"] for a in acts), default=0.0)
    totals = {"prompt": prompt, "cached": cached, "generated": generated,
              "hit_rate": cached / prompt if prompt else 0.0, "wall": wall, "models": models}
    run = {"id": _str(started.get("run_id") or finished.get("run_id")), "graph": _str(started.get("graph")),
           "status": status, "error": finished.get("error") if isinstance(finished.get("error"), str) else None,
           "started_at": _num(started.get("started_at")), "inputs": started.get("inputs")}
    shape = started.get("shape") if isinstance(started.get("shape"), dict) else None
    return {"run": run, "acts": acts, "nodes": nodes, "totals": totals, "shape": shape}
