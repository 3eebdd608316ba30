"""The critical path of a run: the chain of activations that decided its wall time, outlined on the timeline.

From the activation that ended last, step back to the activation of a predecessor node (an edge of the graph,
or, for a subgraph's first node, an edge into the subgraph) that ended latest before it started; repeat.
Each node's activations are sorted by end time once, so a step is a binary search: a crafted trace of
many activations stays fast, and the walk is bounded by the number of activations.
"""

from __future__ import annotations

import bisect
from collections import defaultdict

from plait.viewer._layout import MAX_DEPTH, json_list

__all__ = ["critical_path"]

_SLACK = 1e-6  # seconds: a dependant may be stamped as starting a hair before its input's end event


def _predecessors(shape: dict | None, prefix: str = "", depth: int = 0) -> dict[str, set[str]]:
    preds: dict[str, set[str]] = defaultdict(set)
    for edge in json_list((shape or {}).get("edges")):
        if isinstance(edge, dict) and isinstance(edge.get("src"), str) and isinstance(edge.get("dst"), str) \
                and edge.get("back") is not True:
            preds[prefix + edge["dst"]].add(prefix + edge["src"])
    for entry in json_list((shape or {}).get("nodes")):
        if isinstance(entry, dict) and isinstance(entry.get("name"), str) and isinstance(entry.get("graph"), dict) \
                and depth < MAX_DEPTH:
            for dst, srcs in _predecessors(entry["graph"], prefix + entry["name"] + "/", depth + 1).items():
                preds[dst] |= srcs
    return preds


def critical_path(acts: list[dict], shape: dict | None) -> list[int]:
    """Indices of the activations on the critical path, last first ([] when nothing ran)."""
    ran = [i for i, a in enumerate(acts) if a["status"] != "skipped"]
    if not ran:
        return []
    preds = _predecessors(shape)
    ends: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for i in ran:
        ends[acts[i]["node"]].append((acts[i]["end"], i))
    for items in ends.values():
        items.sort()
    current = max(ran, key=lambda i: acts[i]["end"])
    path, seen = [current], {current}
    while len(path) <= len(ran):
        node, start = acts[current]["node"], acts[current]["start"]
        sources = set(preds.get(node, ()))
        parent = node
        while not sources and "/" in parent:  # a subgraph's first node waits for what feeds the subgraph
            parent = parent.rsplit("/", 1)[0]
            sources = set(preds.get(parent, ()))
        best = None
        for src in sources:
            items = ends.get(src, [])
            k = bisect.bisect_right(items, (start + _SLACK, len(acts))) - 1
            if k >= 0 and (best is None or items[k] > best):
                best = items[k]
        if best is None or best[1] in seen:
            break
        current = best[1]
        path.append(current)
        seen.add(current)
    return path
