"""The graph laid out as a layered DAG, in Python, so the page only draws boxes and lines (no layout JS).

Layers by longest path over forward edges (the edge that closes a loop is drawn, not layered); within a
layer nodes sit in the order of their predecessors' mean position (one barycentre pass). A subgraph node
is a block holding its own layout, laid out as one big node of its parent. Linear in nodes plus edges,
whatever the shape says: a shape from a crafted trace (cycles, unknown names, deep nesting) still lays out.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

__all__ = ["layout", "json_list", "MAX_DEPTH"]

NODE_W, NODE_H = 168, 48
GAP_X, GAP_Y = 20, 44
PAD, HEADER = 10, 24
GROUP_W = 300  # room for a subgraph's name and its figures
GRID = 4  # nodes per row when the edges are unknown (a checkpoint)
MAX_DEPTH = 32


def _layers(names: list[str], edges: list[tuple[str, str]]) -> list[list[str]]:
    """Longest-path layers (Kahn's order); nodes on a cycle (only in a crafted shape) go last."""
    succ: dict[str, list[str]] = defaultdict(list)
    indegree = dict.fromkeys(names, 0)
    for src, dst in edges:
        succ[src].append(dst)
        indegree[dst] += 1
    layer = dict.fromkeys(names, 0)
    ready = [n for n in names if indegree[n] == 0]
    done = 0
    while ready:
        node = ready.pop()
        done += 1
        for nxt in succ[node]:
            layer[nxt] = max(layer[nxt], layer[node] + 1)
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    last = max(layer.values(), default=0) + 1
    rows: dict[int, list[str]] = defaultdict(list)
    for name in names:
        rows[layer[name] if indegree[name] == 0 else last].append(name)
    if not edges:  # nothing orders them: a grid reads better than one very wide row
        return [names[i:i + GRID] for i in range(0, len(names), GRID)]
    return [rows[i] for i in sorted(rows)]


def _block(shape: dict, prefix: str, extra: dict[str, list[str]], depth: int) -> dict:
    """Lay out one graph: ``{"w", "h", "items": [...], "edges": [...]}`` in coordinates local to the block."""
    names, sizes, inner = [], {}, {}
    for entry in json_list(shape.get("nodes")):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or \
                prefix + entry["name"] in sizes:
            continue
        full = prefix + entry["name"]
        names.append(full)
        sub = entry.get("graph")
        if not isinstance(sub, dict) and full + "/" in extra:  # a node that ran nodes of its own (plan steps)
            sub = {}
        if isinstance(sub, dict) and depth < MAX_DEPTH:
            inner[full] = _block(sub, full + "/", extra, depth + 1)
            sizes[full] = (max(GROUP_W, inner[full]["w"] + 2 * PAD), inner[full]["h"] + HEADER + PAD)
        else:
            sizes[full] = (NODE_W, NODE_H)
    for full in extra.pop(prefix, []):  # activations the shape does not name (or no shape at all)
        if full not in sizes:
            names.append(full)
            sizes[full] = (NODE_W, NODE_H)
    known = set(names)
    forward: list[tuple[str, str, str]] = []
    back: list[tuple[str, str, str]] = []
    for edge in json_list(shape.get("edges")):
        if not isinstance(edge, dict):
            continue
        src, dst = prefix + str(edge.get("src")), prefix + str(edge.get("dst"))
        if src in known and dst in known and src != dst:
            (back if edge.get("back") is True else forward).append((src, dst, str(edge.get("kind") or "plain")))
    layers = _layers(names, [(s, d) for s, d, _ in forward])
    preds: dict[str, list[str]] = defaultdict(list)
    for src, dst, _ in forward:
        preds[dst].append(src)
    order: dict[str, float] = {}
    rows, width = [], 0.0
    for layer in layers:
        if order:
            layer = sorted(layer, key=lambda n: sum(order.get(p, 0) for p in preds[n]) / len(preds[n])
                           if preds[n] else 0.0)
        order.update({n: i for i, n in enumerate(layer)})
        row_w = sum(sizes[n][0] for n in layer) + GAP_X * (len(layer) - 1)
        rows.append((layer, row_w))
        width = max(width, row_w)
    items, pos, y = [], {}, 0.0
    for layer, row_w in rows:
        x = (width - row_w) / 2
        for name in layer:
            w, h = sizes[name]
            pos[name] = (x, y, w, h)
            item = {"name": name, "x": x, "y": y, "w": w, "h": h}
            if name in inner:
                item["group"] = True
                items.append(item)
                items += _shifted(inner[name]["items"], x + (w - inner[name]["w"]) / 2, y + HEADER)
            else:
                items.append(item)
            x += w + GAP_X
        y += max(sizes[n][1] for n in layer) + GAP_Y
    edges = []
    for src, dst, kind in forward + [(s, d, "back") for s, d, _ in back]:
        (sx, sy, sw, sh), (dx, dy, dw, _) = pos[src], pos[dst]
        edges.append({"x1": sx + sw / 2, "y1": sy + sh, "x2": dx + dw / 2, "y2": dy, "kind": kind})
    for name, block in inner.items():
        bx, by, bw, _ = pos[name]
        edges += _shifted(block["edges"], bx + (bw - block["w"]) / 2, by + HEADER)
    return {"w": width, "h": max(0.0, y - GAP_Y), "items": items, "edges": edges}


def _shifted(things: list[dict], dx: float, dy: float) -> list[dict]:
    out = []
    for thing in things:
        moved = dict(thing)
        for key in ("x", "x1", "x2"):
            if key in moved:
                moved[key] += dx
        for key in ("y", "y1", "y2"):
            if key in moved:
                moved[key] += dy
        out.append(moved)
    return out


def layout(shape: dict | None, node_names: list[str]) -> dict[str, Any]:
    """Positions for the shape's nodes plus any of ``node_names`` it lacks: those named ``parent/child``
    (plan steps a node ran) are placed inside their parent, drawn as a group; others at the top level."""
    shape = shape or {}
    declared = set(_declared(shape, "", 0))
    extra: dict[str, list[str]] = defaultdict(list)
    for name in node_names:
        if name not in declared:
            parent = name.rsplit("/", 1)[0] if "/" in name else ""
            extra[parent + "/" if parent in declared else ""].append(name)
    block = _block(shape, "", extra, 0)
    leftover = [name for names in extra.values() for name in names]  # parents nested deeper than MAX_DEPTH
    if leftover:
        tail = _block({}, "", {"": leftover}, 0)
        dy = block["h"] + GAP_Y if block["items"] else 0.0
        block = {"w": max(block["w"], tail["w"]), "h": dy + tail["h"],
                 "items": block["items"] + _shifted(tail["items"], 0.0, dy), "edges": block["edges"]}
    return block


def json_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _declared(shape: dict, prefix: str, depth: int):
    for entry in json_list(shape.get("nodes")):
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            yield prefix + entry["name"]
            if isinstance(entry.get("graph"), dict) and depth < MAX_DEPTH:
                yield from _declared(entry["graph"], prefix + entry["name"] + "/", depth + 1)
