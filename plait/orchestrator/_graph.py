"""Declaring graphs: nodes, edges, routes, loops, maps and subgraphs.

A :class:`Graph` is built by adding nodes and wiring edges; nothing is checked
until :meth:`Graph.validate` (called by ``run``), which collects *every*
problem and names the nodes involved. Edges carry data: the producer's output
becomes one input parameter of the consumer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from types import GenericAlias
from typing import TYPE_CHECKING, Any, Literal

import networkx as nx

from plait.errors import GraphError, GraphValidationError
from plait.orchestrator._halting import HaltRule, halting_rule
from plait.orchestrator._node import FunctionNode, Node, Param, Signature

if TYPE_CHECKING:
    from plait.orchestrator._context import RunContext
    from plait.orchestrator._record import RunResult
    from plait.orchestrator._runtime import Run

__all__ = ["Graph", "GraphNode"]

NodeRef = Any  # a Node, a function already added, or a node name
EdgeKind = Literal["plain", "route", "map"]


@dataclasses.dataclass(frozen=True)
class _Edge:
    src: NodeRef
    dst: NodeRef
    param: str | None = None
    kind: EdgeKind = "plain"
    key: Any = None  # route key (dict routes)
    back: bool = False  # closes a loop
    max_iterations: int = 0
    on_limit: Literal["raise", "exit"] = "raise"
    halt: HaltRule | None = None  # a back edge's fixed-point rule (see _halting.py)


@dataclasses.dataclass(eq=False)
class Edge:
    """A resolved edge (node names, the receiving parameter, its index)."""

    id: int
    src: str
    dst: str
    param: str
    kind: EdgeKind
    key: Any
    back: bool
    max_iterations: int
    on_limit: str
    halt: HaltRule | None = None


@dataclasses.dataclass
class _CompiledGraph:
    """A validated graph, laid out for the runtime."""

    name: str
    nodes: dict[str, Node]
    edges: list[Edge]
    fwd_in: dict[str, list[Edge]]
    out_edges: dict[str, list[Edge]]
    route_by: dict[str, Callable[[Any], Any] | None]
    routed: set[str]
    mapped: dict[str, str]  # node -> its mapped param
    inputs: dict[str, dict[str, Param]]  # node -> params fed from the run input
    input_params: dict[str, Param]
    entries: list[str]
    loop_body: dict[int, frozenset[str]]
    output: str | None
    sinks: list[str]
    digraph: nx.DiGraph
    shape: dict | None = None  # graph_shape(), cached
    halting_into: dict[str, list[Edge]] = dataclasses.field(init=False)  # back_to -> its loops with a halt rule

    def __post_init__(self) -> None:
        self.halting_into = {}
        for e in self.edges:
            if e.back and e.halt is not None:
                self.halting_into.setdefault(e.dst, []).append(e)


class Graph:
    """A reasoning graph. Add nodes, wire edges, then ``await graph.run(input)``.

    Example::

        g = Graph("qa")

        @g.node
        async def retrieve(question: str) -> list[str]: ...

        @g.node
        async def answer(docs: list[str], question: str, ctx: RunContext) -> str: ...

        g.edge(retrieve, answer, param="docs")   # `question` comes from the run input
        result = await g.run({"question": "..."}, backend=backend)
    """

    def __init__(self, name: str = "graph", *, description: str = ""):
        if not name or "/" in name:
            raise GraphError(f"graph name must be non-empty and contain no '/', got {name!r}")
        self.name = name
        self.description = description
        self._nodes: dict[str, Node] = {}
        self._by_callable: dict[int, Node] = {}
        self._edges: list[_Edge] = []
        self._route_by: dict[str, Callable[[Any], Any] | None] = {}
        self._entries: list[NodeRef] = []
        self._output: NodeRef | None = None
        self._compiled: _CompiledGraph | None = None

    # -- adding nodes ------------------------------------------------------
    def add(self, item: Node | Graph | Callable[..., Any], *, name: str | None = None, **policy: Any) -> Node:
        """Add a node (a Node, a plain function, or a Graph used as a subgraph) and return it."""
        if isinstance(item, Node):
            if name or policy:
                raise GraphError(f"node {item.name!r} is already a Node; set its name and policy when creating it")
            node = item
        elif isinstance(item, Graph):
            node = GraphNode(item, name=name, **policy)
        elif callable(item):
            known = self._by_callable.get(id(item))
            if known is not None and not name and not policy:
                return known
            node = FunctionNode(item, name=name, **policy)
            self._by_callable[id(item)] = node
        else:
            raise GraphError(f"graph {self.name!r}: cannot add {item!r}; give a Node, a function or a Graph")
        existing = self._nodes.get(node.name)
        if existing is node:
            return node
        if existing is not None:
            raise GraphError(
                f"graph {self.name!r} already has a node named {node.name!r}; pass name=... to tell them apart"
            )
        if "/" in node.name or "[" in node.name:
            raise GraphError(f"node name {node.name!r} may not contain '/' or '['")
        self._nodes[node.name] = node
        self._compiled = None
        return node

    def node(self, fn: Callable[..., Any] | None = None, /, **options: Any):
        """Decorator: ``@graph.node`` or ``@graph.node(name=..., timeout=..., retry=...)``."""
        if fn is not None:
            return self.add(fn)
        return lambda f: self.add(f, **options)

    @property
    def nodes(self) -> dict[str, Node]:
        return dict(self._nodes)

    # -- wiring --------------------------------------------------------------
    def _ref(self, ref: NodeRef) -> NodeRef:
        """A wiring argument as a node: a Node or Graph object is added; a plain function must be a node already."""
        if isinstance(ref, Node):
            return self.add(ref) if ref.name not in self._nodes else ref
        if isinstance(ref, Graph):
            return self.add(ref)
        if callable(ref):
            known = self._by_callable.get(id(ref))
            if known is None:
                name = getattr(ref, "__name__", repr(ref))
                raise GraphError(f"graph {self.name!r}: function {name!r} is not a node of this graph; declare it "
                                 f"with @graph.node or add it with graph.add({name}) before wiring it")
            return known
        return ref

    def _wire(self, edge: _Edge) -> Graph:
        self._edges.append(dataclasses.replace(edge, src=self._ref(edge.src), dst=self._ref(edge.dst)))
        self._compiled = None
        return self

    def edge(self, src: NodeRef, dst: NodeRef, *, param: str | None = None) -> Graph:
        """Send ``src``'s output to ``dst`` (into ``param``; inferred when ``dst`` has one input)."""
        return self._wire(_Edge(src, dst, param))

    def chain(self, *nodes: NodeRef) -> Graph:
        """Wire ``a -> b -> c ...`` in sequence."""
        for a, b in zip(nodes, nodes[1:]):
            self.edge(a, b)
        return self

    def fan_out(self, src: NodeRef, *dsts: NodeRef) -> Graph:
        """Send ``src``'s output to every node in ``dsts``; they run concurrently."""
        for dst in dsts:
            self.edge(src, dst)
        return self

    def join(self, srcs: Sequence[NodeRef] | Mapping[str, NodeRef], dst: NodeRef) -> Graph:
        """Fan in: ``dst`` runs once all ``srcs`` finished. Map ``{param: src}``, or a list matched by node name."""
        items = srcs.items() if isinstance(srcs, Mapping) else [(None, s) for s in srcs]
        for param, src in items:
            src = self._ref(src)
            name = param or (src.name if isinstance(src, Node) else str(src))
            self.edge(src, dst, param=name)
        return self

    def route(
        self,
        src: NodeRef,
        targets: Sequence[NodeRef] | Mapping[Any, NodeRef],
        *,
        by: Callable[[Any], Any] | None = None,
        param: str | None = None,
    ) -> Graph:
        """Conditional routing: ``src`` picks one target at run time.

        ``src`` returns :class:`Route` (``Route(target, value)``) or, with
        ``by``, a value from which ``by(value)`` computes a key of ``targets``.
        Targets not taken are skipped, and so is whatever depends only on them.
        """
        items = targets.items() if isinstance(targets, Mapping) else [(None, t) for t in targets]
        for key, dst in items:
            self._wire(_Edge(src, dst, param, kind="route", key=key))
        self._route_by[_name_of(self._ref(src))] = by
        return self

    def loop(
        self,
        src: NodeRef,
        back_to: NodeRef,
        *,
        exit: NodeRef | None = None,
        max_iterations: int,
        on_limit: Literal["raise", "exit"] = "raise",
        param: str | None = None,
        exit_param: str | None = None,
        by: Callable[[Any], Any] | None = None,
        until: Literal["fixed_point"] | None = None,
        normalize: Callable[[Any], Any] | None = None,
        similarity: float | None = None,
        halt: Callable[[Any, Any], bool] | None = None,
    ) -> Graph:
        """A bounded loop: ``src`` routes back to ``back_to`` (at most ``max_iterations`` times) or on to ``exit``.

        ``src`` returns ``Route(back_to, value)`` to go round again or
        ``Route(exit, value)`` to leave. ``max_iterations`` counts loop-backs,
        not body runs: with ``max_iterations=3`` the body runs at most 4 times
        (the first run, then 3 more). When ``src`` routes back once more,
        ``on_limit`` decides: ``"raise"`` (:class:`~plait.errors.LoopLimitError`)
        or ``"exit"`` (the value goes to ``exit``).

        ``until="fixed_point"`` also leaves (to ``exit``, or nowhere when there is
        none) as soon as a pass changes nothing: ``src``'s value equals the value
        the pass started from (what ``back_to`` received on ``param``: the previous
        pass's value, or on the first pass the forward edge's, if one feeds
        ``param``), after ``normalize`` when given, or, with ``similarity=x``, their
        texts' token Jaccard is at least ``x``. ``halt=f`` is a rule of your own:
        ``f(previous, current) -> True`` leaves. With a rule, ``src`` may return a
        plain value (meaning: go round again unless settled). Why the loop stopped
        (``"fixed_point"``, ``"exit"`` or ``"limit"``) is in ``src``'s record
        (``loop_stops``) and in a :class:`~plait.orchestrator.LoopStopped` event.
        """
        where = f"loop {_name_of(src)!r} -> {_name_of(back_to)!r}"
        if not isinstance(max_iterations, int) or max_iterations < 1:
            raise GraphError(f"{where}: max_iterations must be an int >= 1")
        if on_limit == "exit" and exit is None:
            raise GraphError(f"{where}: on_limit='exit' needs an exit node")
        rule = halting_rule(where, until, halt, normalize, similarity)
        self._wire(_Edge(src, back_to, param, kind="route", key="continue" if by else None, back=True,
                         max_iterations=max_iterations, on_limit=on_limit, halt=rule))
        if exit is not None:
            self._wire(_Edge(src, exit, exit_param, kind="route", key="exit" if by else None))
        self._route_by[_name_of(self._ref(src))] = by
        return self

    def map(self, src: NodeRef, dst: NodeRef, *, param: str | None = None) -> Graph:
        """Dynamic fan-out: ``src`` returns a list; ``dst`` runs once per item, concurrently.

        Nodes after ``dst`` receive the list of its outputs, in item order.
        """
        return self._wire(_Edge(src, dst, param, kind="map"))

    def start(self, *nodes: NodeRef) -> Graph:
        """Declare the entry nodes explicitly; any node not reachable from them is then an error."""
        self._entries.extend(self._ref(n) for n in nodes)
        self._compiled = None
        return self

    def output(self, node: NodeRef) -> Graph:
        """Declare which node's output is the run's output (default: the single sink, or a dict of sinks)."""
        self._output = self._ref(node)
        self._compiled = None
        return self

    # -- validation ----------------------------------------------------------
    def validate(self) -> nx.DiGraph:
        """Check the whole graph and return it as a networkx DiGraph; raise GraphValidationError listing every problem."""
        return self._compile().digraph

    def _compile(self) -> _CompiledGraph:
        if self._compiled is None:
            from plait.orchestrator._validate import compile_graph

            self._compiled = compile_graph(self)
        return self._compiled

    @property
    def input_params(self) -> dict[str, Param]:
        """Inputs a run must (or may) supply, by name."""
        return self._compile().input_params

    @property
    def output_type(self) -> Any:
        plan = self._compile()
        name = plan.output or (plan.sinks[0] if len(plan.sinks) == 1 else None)
        if name is None:
            return dict[str, Any]
        node = plan.nodes[name]
        return GenericAlias(list, (node.output_type,)) if name in plan.mapped else node.output_type  # list[T]

    # -- export --------------------------------------------------------------
    def to_mermaid(self) -> str:
        """The graph as Mermaid flowchart text."""
        from plait.orchestrator._export import to_mermaid

        return to_mermaid(self._compile())

    def to_dot(self) -> str:
        """The graph as Graphviz DOT text."""
        from plait.orchestrator._export import to_dot

        return to_dot(self._compile())

    # -- running ---------------------------------------------------------------
    async def run(self, input: Any = None, **options: Any) -> RunResult:
        """Run the graph and return its :class:`~plait.RunResult`. See :class:`~plait.Run` for options.

        A coroutine: ``await graph.run(...)``; from a script or a notebook call :meth:`run_sync`.
        """
        from plait.orchestrator._runtime import Run

        return await Run(self, input, **Run.check_options(options)).result()

    def run_sync(self, input: Any = None, **options: Any) -> RunResult:
        """:meth:`run` for synchronous code: a script, or a notebook cell (whose loop is already running)."""
        from plait.orchestrator._sync import call_sync

        return call_sync(self.run, input, **options)

    def stream(self, input: Any = None, **options: Any) -> Run:
        """A :class:`~plait.Run` to iterate for events: ``async for event in graph.stream(...)``."""
        from plait.orchestrator._runtime import Run

        return Run(self, input, **Run.check_options(options))

    def __repr__(self) -> str:
        return f"<Graph {self.name!r}: {len(self._nodes)} nodes, {len(self._edges)} edges>"


class GraphNode(Node):
    """A Graph used as a node of another graph. Its inputs are the subgraph's inputs."""

    runs_nodes = True

    def __init__(self, graph: Graph, name: str | None = None, **policy: Any):
        self.graph = graph
        super().__init__(name or graph.name, **policy)

    def signature(self) -> Signature:
        return Signature(dict(self.graph.input_params), self.graph.output_type, "ctx")

    async def invoke(self, ctx: RunContext, kwargs: dict[str, Any]) -> Any:
        from plait.orchestrator._runtime import run_subgraph

        return await run_subgraph(self.graph, kwargs, ctx)


def _name_of(ref: NodeRef) -> str:
    if isinstance(ref, Node):
        return ref.name
    if isinstance(ref, Graph):
        return ref.name
    return getattr(ref, "__name__", str(ref))


