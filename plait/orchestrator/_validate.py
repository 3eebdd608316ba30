"""Build-time validation: resolve references, check structure and types, lay out the plan."""

from __future__ import annotations

import itertools
from types import GenericAlias
from typing import TYPE_CHECKING, Any

import networkx as nx

from plait.errors import GraphValidationError
from plait.orchestrator._graph import Edge, GraphNode, _name_of, _CompiledGraph
from plait.orchestrator._node import Node, Param
from plait.orchestrator._types import compatible, element_type, type_name

if TYPE_CHECKING:
    from plait.orchestrator._graph import Graph

_MAX_LISTED_CYCLES = 5


def compile_graph(graph: Graph) -> _CompiledGraph:
    problems: list[str] = []
    nodes = graph._nodes
    if not nodes:
        raise GraphValidationError(graph.name, ["the graph has no nodes; add some with graph.add() or @graph.node"])

    def resolve(ref: Any, role: str) -> str | None:
        name = ref.name if isinstance(ref, Node) else ref if isinstance(ref, str) else _name_of(ref)
        if name not in nodes:
            problems.append(f"{role} refers to unknown node {name!r} (known nodes: {', '.join(sorted(nodes))})")
            return None
        return name

    edges: list[Edge] = []
    for raw in graph._edges:
        label = f"edge {_name_of(raw.src)!r} -> {_name_of(raw.dst)!r}"
        src, dst = resolve(raw.src, label), resolve(raw.dst, label)
        if src is None or dst is None:
            continue
        param = _edge_param(raw.param, src, nodes[dst], graph, problems)
        if param is not None:
            edges.append(Edge(len(edges), src, dst, param, raw.kind, raw.key, raw.back,
                              raw.max_iterations, raw.on_limit, raw.halt))

    digraph = nx.DiGraph(name=graph.name)
    for name, node in nodes.items():
        digraph.add_node(name, kind=type(node).__name__, output=type_name(node.output_type))
    for e in edges:
        digraph.add_edge(e.src, e.dst, param=e.param, kind=e.kind, back=e.back, max_iterations=e.max_iterations)
    forward = nx.DiGraph()
    forward.add_nodes_from(nodes)
    forward.add_edges_from((e.src, e.dst) for e in edges if not e.back)

    if not nx.is_directed_acyclic_graph(forward):
        for cycle in itertools.islice(nx.simple_cycles(forward), _MAX_LISTED_CYCLES):
            path = " -> ".join([*cycle, cycle[0]])
            problems.append(f"cycle {path} has no bound; close it with graph.loop(..., max_iterations=N)")
    loop_body: dict[int, frozenset[str]] = {}
    for e in edges:
        if e.back:
            if e.dst != e.src and not (e.dst in forward and e.src in nx.descendants(forward, e.dst)):
                problems.append(f"loop {e.src!r} -> {e.dst!r} closes no cycle: {e.dst!r} does not lead to {e.src!r}")
                continue
            body = (nx.descendants(forward, e.dst) | {e.dst}) & (nx.ancestors(forward, e.src) | {e.src})
            loop_body[e.id] = frozenset(body)

    fwd_in: dict[str, list[Edge]] = {n: [] for n in nodes}
    out_edges: dict[str, list[Edge]] = {n: [] for n in nodes}
    bound: dict[str, set[str]] = {n: set() for n in nodes}
    mapped: dict[str, str] = {}
    for e in edges:
        out_edges[e.src].append(e)
        bound[e.dst].add(e.param)
        if not e.back:
            fwd_in[e.dst].append(e)
        if e.kind == "map":
            if e.dst in mapped and mapped[e.dst] != e.param:
                problems.append(f"node {e.dst!r} is mapped over two inputs ({mapped[e.dst]!r} and {e.param!r}); "
                                "map over one list")
            mapped[e.dst] = e.param

    _check_types(edges, nodes, mapped, problems)
    for e in edges:
        if e.back:
            fed = nodes[e.dst].params[e.param]
            fed_forward = any(f.param == e.param for f in fwd_in[e.dst])
            if fed.required and not fed_forward:
                problems.append(f"loop {e.src!r} -> {e.dst!r} feeds {e.dst}.{e.param}, which has no value on the "
                                f"first iteration: give it a default or feed it with a forward edge too")

    routed = {e.src for e in edges if e.kind == "route"}
    entries = [n for n in nodes if not fwd_in[n]]
    if graph._entries:
        starts = [s for ref in graph._entries if (s := resolve(ref, "start()")) is not None]
        reachable = set(starts)
        for s in starts:
            reachable |= nx.descendants(digraph, s)
        if starts:  # with no known start node, the unknown-node problem above says all there is to say
            for n in nodes:
                if n not in reachable:
                    problems.append(f"node {n!r} is unreachable from the start node(s) {', '.join(map(repr, starts))}")
            entries = [n for n in entries if n in reachable]

    inputs: dict[str, dict[str, Param]] = {}
    input_params: dict[str, Param] = {}
    for name, node in nodes.items():
        free = {p: spec for p, spec in node.params.items() if p not in bound[name]}
        if free:
            inputs[name] = free
        for p, spec in free.items():
            known = input_params.get(p)
            if known is None or (known.default is not spec.default and spec.required):
                input_params[p] = spec

    output = resolve(graph._output, "output()") if graph._output is not None else None
    sinks = [n for n in nodes if all(e.back for e in out_edges[n])]  # a loop without exit ends on its source
    if problems:
        raise GraphValidationError(graph.name, problems)
    return _CompiledGraph(graph.name, dict(nodes), edges, fwd_in, out_edges, dict(graph._route_by), routed, mapped,
                 inputs, input_params, entries, loop_body, output, sinks, digraph)


def _edge_param(param: str | None, src: str, dst: Node, graph: Graph, problems: list[str]) -> str | None:
    params = dst.params
    if param is not None:
        if param not in params:
            problems.append(f"edge {src!r} -> {dst.name!r}: {dst.name!r} has no input {param!r} "
                            f"(its inputs: {', '.join(params) or 'none'})")
            return None
        return param
    if len(params) == 1:
        return next(iter(params))
    if src in params:
        return src
    if not params:
        problems.append(f"edge {src!r} -> {dst.name!r}: {dst.name!r} takes no input; "
                        "add a parameter to receive the value or remove the edge")
    else:
        problems.append(f"edge {src!r} -> {dst.name!r}: {dst.name!r} has several inputs ({', '.join(params)}); "
                        f"say which one receives the output of {src!r} with param=...")
    return None


def _check_types(edges: list[Edge], nodes: dict[str, Node], mapped: dict[str, str], problems: list[str]) -> None:
    for e in edges:
        src, dst = nodes[e.src], nodes[e.dst]
        produced = GenericAlias(list, (src.output_type,)) if e.src in mapped else src.output_type  # list[T]
        expected = dst.params[e.param].annotation
        if e.kind == "map":
            item = element_type(produced)
            if item is None:
                problems.append(f"map {e.src!r} -> {e.dst!r}: {e.src!r} outputs {type_name(produced)}, "
                                "not a list to map over")
                continue
            produced = item
        if not compatible(produced, expected):
            problems.append(f"type mismatch on edge {e.src!r} -> {e.dst!r}: {e.src!r} outputs "
                            f"{type_name(produced)} but {e.dst}.{e.param} expects {type_name(expected)}")


__all__ = ["compile_graph", "GraphNode"]
