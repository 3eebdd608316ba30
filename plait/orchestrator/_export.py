"""Graph export as Mermaid and Graphviz DOT text."""

from __future__ import annotations

import re

from plait.orchestrator._graph import _CompiledGraph

__all__ = ["to_mermaid", "to_dot"]


def _id(name: str) -> str:
    return re.sub(r"\W", "_", name)


def _label(plan: _CompiledGraph, e) -> str:
    parts = []
    if e.kind == "map":
        parts.append("map")
    if e.kind == "route":
        parts.append(f"{e.key}" if e.key is not None else "route")
    if e.back:
        parts.append(f"loop ≤{e.max_iterations}")
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
