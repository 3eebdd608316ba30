"""Graph export as Mermaid and Graphviz DOT text, and as the JSON shape a trace carries (for ``plait view``)."""

from __future__ import annotations

import re

from plait.orchestrator._graph import GraphNode, _CompiledGraph

__all__ = ["to_mermaid", "to_dot", "graph_shape"]


def _id(name: str) -> str:
    return re.sub(r"\W", "_", name)


def _label(plan: _CompiledGraph, e) -> str:
    parts = []
    if e.kind == "map":
        parts.append("map")
    if e.kind == "route":
        parts.append(f"{e.key}" if e.key is not None else "route")
    if e.back:
        parts.append(f"loop ≤{e.max_iterations}" + (" until fixed point" if e.halt is not None else ""))
    if len(plan.nodes[e.dst].params) > 1:
        parts.append(e.param)
    return " ".join(parts)


def to_mermaid(plan: _CompiledGraph) -> str:
    lines = ["flowchart TD"]
    for name, node in plan.nodes.items():
        shape = ("{{", "}}") if name in plan.routed else ("[[", "]]") if name in plan.mapped else ("[", "]")
        lines.append(f'    {_id(name)}{shape[0]}"{name}"{shape[1]}')
    for e in plan.edges:
        label = _label(plan, e)
        arrow = "-.->" if e.kind == "route" else "==>" if e.kind == "map" else "-->"
        text = f"|{label}|" if label else ""
        lines.append(f"    {_id(e.src)} {arrow}{text} {_id(e.dst)}")
    return "\n".join(lines) + "\n"


def to_dot(plan: _CompiledGraph) -> str:
    lines = [f'digraph "{plan.name}" {{', "    rankdir=TB;", "    node [shape=box];"]
    for name in plan.nodes:
        shape = "diamond" if name in plan.routed else "box3d" if name in plan.mapped else "box"
        lines.append(f'    "{name}" [shape={shape}];')
    for e in plan.edges:
        attrs = []
        label = _label(plan, e)
        if label:
            attrs.append(f'label="{label}"')
        if e.kind == "route":
            attrs.append("style=dashed")
        if e.kind == "map":
            attrs.append("style=bold")
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f'    "{e.src}" -> "{e.dst}"{suffix};')
    lines.append("}")
    return "\n".join(lines) + "\n"


def graph_shape(plan: _CompiledGraph) -> dict:
    """Nodes and edges as JSON, subgraph nodes nested under ``graph``, computed once per compiled graph.

    Carried by the ``run_started`` event so that a trace alone can be drawn: node ``type`` (class name),
    ``mapped`` and ``routed`` flags; edges with their ``kind`` (plain, route, map), receiving ``param``, and
    ``back`` for the edge that closes a loop.
    """
    if plan.shape is None:
        nodes = []
        for name, node in plan.nodes.items():
            entry = {"name": name, "type": type(node).__name__, "mapped": name in plan.mapped,
                     "routed": name in plan.routed}
            if isinstance(node, GraphNode):
                entry["graph"] = graph_shape(node.graph._compile())
            nodes.append(entry)
        edges = [{"src": e.src, "dst": e.dst, "param": e.param, "kind": e.kind, "back": e.back} for e in plan.edges]
        plan.shape = {"name": plan.name, "nodes": nodes, "edges": edges, "output": plan.output}
    return plan.shape
