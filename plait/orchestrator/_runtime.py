"""The dataflow runtime: runs a validated graph on anyio, one task per ready branch.

There is no superstep barrier. A node starts the moment every one of its
forward inputs has been resolved (a value, or a *skip* from a route not taken
or a failed branch). When a node finishes, the first successor it makes ready
runs on in the same task and the others get tasks of their own, so a long
chain costs no task creation and independent branches never wait for each
other. Loops reset the inputs of their body each time the back edge is taken.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import math
import os
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream
from pydantic import BaseModel, ValidationError

from plait._retry import retry
from plait.errors import (
    BudgetExceededError,
    CheckpointError,
    ConfigError,
    DeadlineExceededError,
    InputValidationError,
    LoopLimitError,
    NodeFailedError,
    NodeTimeoutError,
    RunCancelledError,
    RunError,
)
from plait.executors._base import Backend
from plait.orchestrator._budget import TokenBudget
from plait.orchestrator._context import RunContext
from plait.orchestrator._events import (
    Event,
    LoopIteration,
    LoopStopped,
    NodeCancelled,
    NodeFailed,
    NodeFinished,
    NodeRetried,
    NodeSkipped,
    NodeStarted,
    RunFinished,
    RunStarted,
)
from plait.orchestrator._export import graph_shape
from plait.orchestrator._graph import Edge, Graph, GraphNode, _CompiledGraph
from plait.orchestrator._interrupts import _Interrupted, check_answers
from plait.orchestrator._journal import NO_JOURNAL, Journal, Restored, open_journal
from plait.orchestrator._models import check_models, run_backends
from plait.orchestrator._node import MISSING, Node, Route
from plait.orchestrator._record import NodeRecord, RunResult, TokenUsage

__all__ = ["Run", "run_subgraph"]


class _Skip:
    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason


class _Paused(_Skip):
    """The outcome of a node stopped by ctx.interrupt(): its dependants are skipped, the run ends "interrupted"."""


_NOTHING = object()  # a loop pass that started without a value on the loop's param: nothing to compare with


class _Stop(Exception):
    """Internal: carries a RunError that ends an execution."""

    def __init__(self, error: RunError):
        super().__init__(str(error))
        self.error = error


_STOPPING = (BudgetExceededError, DeadlineExceededError, RunCancelledError)

_RUN_PREFIX = os.urandom(3).hex()
_RUN_COUNTER = itertools.count(1)
_CHECKPOINT_EVERY = 16  # inline continuations between yields to the event loop


class _RunState:
    """State shared by every node (and nested subgraph) of one run."""

    def __init__(self, graph: str, inputs: dict[str, Any], backends: dict[str, Backend], token_budget: int | None,
                 max_concurrency: int | None, sinks: list[Callable[[Event], None]], keep_events: bool,
                 run_id: str | None = None):
        self.run_id = run_id or f"{_RUN_PREFIX}-{next(_RUN_COUNTER)}"
        self.graph = graph
        self.inputs = inputs
        self.backends = backends  # by name; "default" is backend= (see _models.py)
        self.token_budget = token_budget
        self.tokens = TokenUsage()
        self.tokens_by_model: dict[str, TokenUsage] = {}
        self.budget = TokenBudget(token_budget, self.tokens)
        self.records: dict[str, NodeRecord] = {}
        self.events: list[Event] = []
        self.sinks = sinks
        self.keep_events = keep_events
        self.limiter = anyio.CapacityLimiter(max_concurrency) if max_concurrency else None
        self.node_limiters: dict[str, anyio.CapacityLimiter] = {}
        self.cancel_requested = False
        self.journal: Journal = NO_JOURNAL
        self.answers: dict[str, Any] = {}  # resume=: interrupt id -> answer
        self.interrupts: list[dict[str, Any]] = []  # pending interrupts, in the order they were asked
        self.activations: dict[str, int] = {}  # activations so far per full node name (interrupt ids)
        self.t0 = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def emit(self, cls: type[Event], **fields: Any) -> None:
        sinks = self.sinks
        if self.keep_events:
            event = cls(run_id=self.run_id, t=time.perf_counter() - self.t0, **fields)
            self.events.append(event)
        elif sinks:
            event = cls(run_id=self.run_id, t=time.perf_counter() - self.t0, **fields)
        else:
            return
        for sink in sinks:
            sink(event)


class _Execution:
    """One execution of one graph (the run's top graph, or a subgraph inside a node)."""

    def __init__(self, plan: _CompiledGraph, state: _RunState, inputs: dict[str, Any], prefix: str,
                 model: str | None = None, enclosing: RunContext | None = None):
        self.plan = plan
        self.enclosing = enclosing  # a subgraph's node context: its inner nodes' contexts are made within it
        self.state = state
        self.inputs = inputs
        self.prefix = prefix
        self.model = model  # the model of nodes that name none (a subgraph's: its node's)
        self.values: dict[str, dict[int, Any]] = {n: {} for n in plan.nodes}
        self.loop_counts: dict[int, int] = {}
        self.loop_starts: dict[int, Any] = {}  # back edge with a halt rule -> the value its current pass started from
        self.fatal: RunError | None = None
        self.tg: anyio.abc.TaskGroup | None = None
        for name in plan.nodes:
            state.records.setdefault(prefix + name, NodeRecord(prefix + name))

    async def execute(self, deadline: float | None = None) -> Any:
        """Run to completion; the first entry runs in the calling task, the others get tasks."""
        ready: list[tuple[str, dict[str, Any]]] = []
        for name in self.plan.entries:
            self._make_ready(name, None, ready)
        async with anyio.create_task_group() as tg:
            self.tg = tg
            if deadline is not None:
                tg.cancel_scope.deadline = anyio.current_time() + deadline
            if self.state.cancel_requested:
                tg.cancel_scope.cancel()
            for name, kwargs in ready[1:]:
                tg.start_soon(self._activate, name, kwargs)
            if ready:
                await self._activate(*ready[0])
        if self.fatal is not None:
            raise self.fatal
        if tg.cancel_scope.cancelled_caught:
            if self.state.cancel_requested:
                raise RunCancelledError(f"run {self.state.run_id} of graph {self.state.graph!r} was cancelled")
            if deadline is not None:
                raise DeadlineExceededError(deadline)
        return self._output()

    def cancel(self) -> None:
        if self.tg is not None:
            self.tg.cancel_scope.cancel()

    # -- scheduling -------------------------------------------------------
    async def _activate(self, name: str, kwargs: dict[str, Any]) -> None:
        tg = self.tg
        assert tg is not None, "activations run inside execute()'s task group"
        steps = 0
        try:
            while True:
                outcome = await self._execute_node(name, kwargs)
                ready: list[tuple[str, dict[str, Any]]] = []
                self._propagate(name, outcome, ready)
                if not ready:
                    return
                for other in ready[1:]:
                    tg.start_soon(self._activate, *other)
                name, kwargs = ready[0]
                steps += 1
                if steps % _CHECKPOINT_EVERY == 0 or self.state.cancel_requested:
                    await anyio.lowlevel.checkpoint()
        except _Stop as stop:
            if self.fatal is None:
                self.fatal = stop.error
            tg.cancel_scope.cancel()

    def _propagate(self, name: str, outcome: Any, ready: list) -> None:
        edges = self.plan.out_edges[name]
        if isinstance(outcome, _Skip):
            for e in edges:
                if not e.back:
                    self._deliver(e, outcome, ready)
            return
        value = outcome.value if isinstance(outcome, Route) else outcome
        for e in edges:
            if e.kind != "route":
                self._deliver(e, value, ready)
        if name in self.plan.routed:
            self._take_route(name, outcome, value, ready)

    def _take_route(self, name: str, outcome: Any, value: Any, ready: list) -> None:
        routes = [e for e in self.plan.out_edges[name] if e.kind == "route"]
        by = self.plan.route_by.get(name)
        halting = next((e for e in routes if e.halt is not None), None)
        if isinstance(outcome, Route):
            target = outcome.to.name if isinstance(outcome.to, Node) else outcome.to
        elif by is not None:
            target = by(value)
        elif halting is not None:  # a plain value: go round again unless the pass settled
            target = halting.dst
        else:
            raise _Stop(NodeFailedError(self.prefix + name, TypeError(
                f"routing node returned {type(outcome).__name__}, not Route(target, value); "
                f"its targets are {[e.dst for e in routes]}")))
        chosen = next((e for e in routes if e.key is not None and e.key == target), None) or next(
            (e for e in routes if e.dst == target), None)
        if chosen is None:
            raise _Stop(NodeFailedError(self.prefix + name, ValueError(
                f"routed to {target!r}, which is not one of its declared targets "
                f"{sorted({e.dst for e in routes} | {e.key for e in routes if e.key is not None}, key=str)}")))
        taken = self.state.records[self.prefix + name].routes  # the routes taken, in order
        exits = [e for e in routes if not e.back]
        if chosen.back:
            if chosen.halt is not None and self._settled(name, chosen, value):
                self._stopped(name, chosen, "fixed_point")
                chosen = exits[0] if exits else None
            elif (count := self.loop_counts.get(chosen.id, 0) + 1) > chosen.max_iterations:
                self._stopped(name, chosen, "limit")
                if chosen.on_limit == "exit" and exits:
                    chosen = exits[0]
                else:
                    taken.append(chosen.dst)
                    raise _Stop(LoopLimitError(self.prefix + chosen.src, self.prefix + chosen.dst,
                                               chosen.max_iterations,
                                               exit=self.prefix + exits[0].dst if exits else None))
            else:
                taken.append(chosen.dst)
                self.loop_counts[chosen.id] = count
                self.state.emit(LoopIteration, source=self.prefix + name, target=self.prefix + chosen.dst,
                                iteration=count)
                self._reset_body(chosen)
                self._make_ready(chosen.dst, (chosen.param, value), ready)
                return
        else:
            for back in (e for e in routes if e.back):
                self._stopped(name, back, "exit")
        if chosen is not None:
            taken.append(chosen.dst)
        for e in exits:
            self._deliver(e, value if e is chosen else _Skip(f"route from {name!r} went to "
                                                             f"{chosen.dst if chosen else 'no exit'!r}"), ready)

    def _settled(self, name: str, back: Edge, value: Any) -> bool:
        """Whether this pass of a loop with a halt rule changed nothing (its value against the pass's start)."""
        previous = self.loop_starts.get(back.id, _NOTHING)
        if previous is _NOTHING:
            return False
        assert back.halt is not None, "only loops with a halt rule are checked"
        try:
            return bool(back.halt(previous, value))
        except Exception as exc:
            raise _Stop(NodeFailedError(self.prefix + name, exc)) from exc

    def _stopped(self, name: str, back: Edge, reason: str) -> None:
        """Record why the loop closed by ``back`` ended; its count starts again if the loop is entered again."""
        self.state.records[self.prefix + name].loop_stops.append(reason)
        self.state.emit(LoopStopped, source=self.prefix + name, target=self.prefix + back.dst,
                        iterations=self.loop_counts.pop(back.id, 0), reason=reason)
        self.loop_starts.pop(back.id, None)

    def _reset_body(self, back: Edge) -> None:
        body = self.plan.loop_body[back.id]
        for node in body:
            if node == back.dst:
                continue
            values = self.values[node]
            for e in self.plan.fwd_in[node]:
                if e.src in body:
                    values.pop(e.id, None)

    def _deliver(self, edge: Edge, value: Any, ready: list) -> None:
        values = self.values[edge.dst]
        values.pop(edge.id, None)
        values[edge.id] = value
        if len(values) == len(self.plan.fwd_in[edge.dst]):
            self._make_ready(edge.dst, None, ready)

    def _make_ready(self, name: str, back: tuple[str, Any] | None, ready: list) -> None:
        kwargs = self._kwargs(name, back)
        if isinstance(kwargs, _Skip):
            full = self.prefix + name
            record = self.state.records[full]
            if record.status == "pending":
                record.status = "skipped"
            self.state.emit(NodeSkipped, node=full, reason=kwargs.reason)
            self._propagate(name, kwargs, ready)
        else:
            for loop in self.plan.halting_into.get(name, ()):  # a loop's pass starts here: keep what it started from
                self.loop_starts[loop.id] = kwargs.get(loop.param, _NOTHING)
            ready.append((name, kwargs))

    def _kwargs(self, name: str, back: tuple[str, Any] | None) -> dict[str, Any] | _Skip:
        node = self.plan.nodes[name]
        kwargs: dict[str, Any] = {}
        skipped: _Skip | None = None
        for edge_id, value in reversed(self.values[name].items()):
            edge = self.plan.edges[edge_id]
            if isinstance(value, _Skip):
                skipped = skipped or value
            elif edge.param not in kwargs:
                kwargs[edge.param] = value
        if back is not None:
            kwargs[back[0]] = back[1]
        for edge in self.plan.fwd_in[name]:
            if edge.param not in kwargs and node.params[edge.param].required:
                return skipped or _Skip(f"no value for input {edge.param!r}")
        for param in self.plan.inputs.get(name, ()):
            if param in self.inputs:
                kwargs[param] = self.inputs[param]
        return kwargs

    def _output(self) -> Any:
        plan, records = self.plan, self.state.records
        if plan.output is not None:
            return records[self.prefix + plan.output].output
        produced = {n: records[self.prefix + n].output for n in plan.sinks if records[self.prefix + n].outputs}
        if len(plan.sinks) == 1:
            return produced.get(plan.sinks[0])
        return produced

    # -- running one node -----------------------------------------------
    async def _execute_node(self, name: str, kwargs: dict[str, Any]) -> Any:
        node = self.plan.nodes[name]
        full = self.prefix + name
        record = self.state.records[full]
        try:
            kwargs = _validate_inputs(node, kwargs, self.plan.mapped.get(name))
        except ValueError as exc:
            return self._failed(node, full, record, exc)
        if name in self.plan.mapped:
            return await self._execute_mapped(node, full, record, kwargs, self.plan.mapped[name])
        outcome = await self._attempts(node, full, record, kwargs)
        if not isinstance(outcome, _Skip):
            value = outcome.value if isinstance(outcome, Route) else outcome
            record.outputs.append(value)
        return outcome

    async def _execute_mapped(self, node: Node, full: str, record: NodeRecord, kwargs: dict[str, Any],
                              param: str) -> Any:
        items = kwargs[param]
        results: list[Any] = [None] * len(items)
        failure: list[BaseException] = []
        paused: list[_Paused] = []

        async def one(i: int, tg: anyio.abc.TaskGroup) -> None:
            try:
                results[i] = await self._attempts(node, f"{full}[{i}]", record, {**kwargs, param: items[i]})
            except _Stop as stop:
                failure.append(stop)
                tg.cancel_scope.cancel()
                return
            if isinstance(results[i], _Paused):
                paused.append(results[i])  # the other items go on: their interrupts are collected too
            elif isinstance(results[i], _Skip):
                failure.append(results[i])
                tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            for i in range(len(items)):
                tg.start_soon(one, i, tg)
        if failure:
            if isinstance(failure[0], _Stop):
                raise failure[0]
            record.status = "failed"
            return failure[0]
        if paused:
            record.status = "interrupted"
            return paused[0]
        record.status = "ok"
        record.outputs.append(results)
        return results

    async def _attempts(self, node: Node, full: str, record: NodeRecord, kwargs: dict[str, Any]) -> Any:
        state = self.state
        journal = state.journal
        try:
            key, restored = journal.lookup(node, full, kwargs)
        except CheckpointError as exc:
            raise _Stop(NodeFailedError(full, exc)) from None
        activation = state.activations.get(full, 0)
        state.activations[full] = activation + 1
        if restored is not None:
            return self._restored(full, record, restored)
        record.status = "running"
        record.runs += 1
        if record.started is None:
            record.started = state.now()
        ctx = RunContext(state, full, record.runs - 1, activation, getattr(node, "model", None) or self.model)
        if self.enclosing is not None:
            ctx = self.enclosing._enclose(ctx)
        succeeded, duration = 0, 0.0  # the attempt that succeeded, and how long it took

        async def attempt(number: int) -> Any:
            nonlocal succeeded, duration
            record.attempts += 1
            state.emit(NodeStarted, node=full, attempt=number, inputs=kwargs if number == 1 else None)
            t0 = time.perf_counter()
            try:
                if node.timeout is None and not node.max_concurrency and (
                        state.limiter is None or isinstance(node, GraphNode)):
                    value = await node.invoke(ctx, kwargs)  # fast path: nothing to acquire
                else:
                    value = await self._call(node, full, ctx, kwargs)
            except anyio.get_cancelled_exc_class():
                record.busy += time.perf_counter() - t0
                record.status = "cancelled"
                state.emit(NodeCancelled, node=full)
                raise
            except _Stop:
                raise
            except _Interrupted as signal:
                record.busy += time.perf_counter() - t0
                record.status = "interrupted"
                if signal.pending is not None:
                    state.interrupts.append(signal.pending)
                return _Paused(f"node {full!r} waits for the answer to an interrupt")
            except _STOPPING as exc:
                record.status = "failed"
                state.emit(NodeFailed, node=full, error=record.note_error(exc), error_type=record.error_type,
                           attempt=number)
                raise _Stop(exc) from exc
            except Exception as exc:
                record.busy += time.perf_counter() - t0
                state.emit(NodeFailed, node=full, error=f"{type(exc).__name__}: {exc}", error_type=type(exc).__name__,
                           attempt=number)
                raise
            succeeded, duration = number, time.perf_counter() - t0
            return value

        def retried(exc: BaseException, number: int, delay: float) -> None:
            state.emit(NodeRetried, node=full, attempt=number + 1, delay=delay, error=f"{type(exc).__name__}: {exc}")

        try:
            value = await retry(node.retry, attempt, on_retry=retried,
                                retryable=lambda exc: not isinstance(exc, _Stop))
        except _Stop:
            raise
        except Exception as exc:
            return self._failed(node, full, record, exc)
        if isinstance(value, _Paused):
            return value
        record.busy += duration
        record.finished = state.now()
        record.status = "ok"
        route = None
        if isinstance(value, Route):
            route = value.to.name if isinstance(value.to, Node) else str(value.to)
        try:  # committed before any dependant starts
            journal.commit(key, node, value, ctx.tokens, duration, succeeded)
        except CheckpointError as exc:
            record.status = "failed"
            record.note_error(exc)
            raise _Stop(NodeFailedError(full, exc)) from None
        state.emit(NodeFinished, node=full, duration=duration,
                   output=value.value if isinstance(value, Route) else value, route=route)
        return value

    def _restored(self, full: str, record: NodeRecord, stored: Restored) -> Any:
        """Take a node's committed outcome from the checkpoint instead of running it again."""
        state = self.state
        value = stored.outcome
        record.status = "ok"
        record.runs += 1
        record.attempts += stored.attempts
        record.restored += 1
        now = state.now()
        record.started = now if record.started is None else record.started
        record.finished = now
        tokens = (stored.prompt_tokens, stored.completion_tokens, stored.cached_tokens)
        for usage in (record.tokens, state.tokens):
            usage.add(*tokens)
            usage.requests += stored.requests - 1
        route = str(value.to) if isinstance(value, Route) else None
        state.emit(NodeFinished, node=full, duration=0.0, output=value.value if isinstance(value, Route) else value,
                   route=route, restored=True)
        return value

    async def _call(self, node: Node, full: str, ctx: RunContext, kwargs: dict[str, Any]) -> Any:
        limiters = []
        if self.state.limiter is not None and not node.runs_nodes:
            limiters.append(self.state.limiter)
        if node.max_concurrency:
            key = self.prefix + node.name
            limiter = self.state.node_limiters.get(key)
            if limiter is None:
                limiter = self.state.node_limiters[key] = anyio.CapacityLimiter(node.max_concurrency)
            limiters.append(limiter)
        if not limiters and node.timeout is None:
            return await node.invoke(ctx, kwargs)
        async with AsyncExitStack() as stack:
            for limiter in limiters:
                await stack.enter_async_context(limiter)
            if node.timeout is None:
                return await node.invoke(ctx, kwargs)
            with anyio.CancelScope(deadline=anyio.current_time() + node.timeout) as scope:
                return await node.invoke(ctx, kwargs)
            if scope.cancelled_caught:
                raise NodeTimeoutError(full, node.timeout)
            raise RuntimeError("unreachable")  # pragma: no cover

    def _failed(self, node: Node, full: str, record: NodeRecord, exc: BaseException) -> Any:
        record.note_error(exc)
        if node.fallback is not MISSING:
            record.status = "ok"
            return node.fallback
        record.status = "failed"
        if node.on_error == "skip":
            return _Skip(f"node {full!r} failed: {record.error}")
        raise _Stop(NodeFailedError(full, exc))


def _validate_inputs(node: Node, kwargs: dict[str, Any], mapped: str | None) -> dict[str, Any]:
    params = node.params
    for name, value in kwargs.items():
        param = params[name]
        adapter = param.adapter
        if adapter is None:
            continue
        try:
            if name == mapped:
                if not isinstance(value, (list, tuple)):
                    raise ValueError(f"node {node.name!r} is mapped over {name!r} but got {type(value).__name__}, "
                                     "not a list")
                kwargs[name] = [v if type(v) is param.annotation else adapter.validate_python(v) for v in value]
            elif type(value) is not param.annotation:
                kwargs[name] = adapter.validate_python(value)
        except ValidationError as exc:
            raise ValueError(f"input {name!r} of node {node.name!r} is invalid: {_first_error(exc)}") from None
    return kwargs


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{first.get('msg')}{' at ' + where if where else ''}{more}"


def bind_inputs(graph: Graph, plan: _CompiledGraph, value: Any) -> dict[str, Any]:
    """Match the run input to the graph's input parameters, validating each one."""
    params = plan.input_params
    if value is None:
        given: dict[str, Any] = {}
    elif isinstance(value, BaseModel) and not (len(params) == 1 and _accepts(next(iter(params.values())), value)):
        given = dict(value)
    elif isinstance(value, Mapping) and value and all(isinstance(k, str) and k in params for k in value):
        given = dict(value)
    elif len(params) == 1 and not (isinstance(value, Mapping) and not _fits(next(iter(params.values())), value)):
        given = {next(iter(params)): value}
    elif isinstance(value, Mapping) and not value:
        given = {}  # like None: the required inputs are reported missing below
    elif isinstance(value, Mapping):
        unknown = sorted(str(k) for k in value if k not in params)
        raise InputValidationError(f"graph {graph.name!r} has no input(s) {', '.join(unknown)}; "
                                   f"its inputs are: {', '.join(params) or 'none'}")
    else:
        raise InputValidationError(f"graph {graph.name!r} takes several inputs ({', '.join(params)}); "
                                   "pass a dict of them")
    missing = [name for name, p in params.items() if p.required and name not in given]
    if missing:
        needers = sorted({n for n, ps in plan.inputs.items() for p in ps if p in missing})
        raise InputValidationError(f"graph {graph.name!r} is missing required input(s) {', '.join(missing)} "
                                   f"(needed by node(s) {', '.join(needers)})")
    bound = {}
    for name, v in given.items():
        adapter = params[name].adapter
        try:
            bound[name] = v if adapter is None else adapter.validate_python(v)
        except ValidationError as exc:
            raise InputValidationError(f"input {name!r} of graph {graph.name!r} is invalid: {_first_error(exc)}")
    return bound


def _fits(param: Any, value: Any) -> bool:
    adapter = param.adapter
    try:
        return adapter is None or adapter.validate_python(value) is not None
    except ValidationError:
        return False


def _accepts(param: Any, value: Any) -> bool:
    return isinstance(param.annotation, type) and isinstance(value, param.annotation)


async def run_subgraph(graph: Graph, kwargs: dict[str, Any], ctx: RunContext) -> Any:
    """Run ``graph`` as part of the run ``ctx`` belongs to (used by GraphNode)."""
    plan = graph._compile()
    state = ctx._state
    before = len(state.interrupts)
    output = await _Execution(plan, state, kwargs, ctx.node + "/", ctx.model, ctx).execute()
    if len(state.interrupts) > before:  # an inner node waits: so does this one (and it is not committed)
        raise _Interrupted(None)
    return output


@functools.cache
def _run_options() -> list[str]:
    return [p for p in inspect.signature(Run.__init__).parameters if p not in ("self", "graph", "input")]


class Run:
    """One run of a graph. ``await run.result()``, or iterate for events.

    Options:

    * ``backend``: the LLM :class:`~plait.Backend` nodes reach through ``ctx``;
    * ``backends``: more backends by name, ``{"small": b1, "large": b2}``: a
      node with ``model="small"`` (or a request ``ctx.generate(..., model="small")``)
      goes to ``b1``; nodes naming no model go to ``backend``. A name no
      backend has is refused before anything runs (see ``_models.py``);
    * ``max_concurrency``: cap on nodes running at once across the run;
    * ``deadline``: wall-clock seconds for the whole run;
    * ``token_budget``: total tokens (prompt + completion) the run may spend; each
      request reserves its worst case before it is sent (see ``_budget.py``);
    * ``trace``: path of a JSONL file that receives every event;
    * ``on_event``: a callable, or list of callables, called with each event;
    * ``progress``: show a live terminal progress display (rich);
    * ``keep_events``: keep events in ``RunResult.events`` (default True);
    * ``checkpoint``: a :class:`~plait.Checkpointer` or the path of an SQLite
      file: every node completion is committed, and a run started again with
      the same ``run_id`` restores finished nodes instead of running them;
      LLM responses are recorded and reused (``cache=False`` turns that off);
    * ``run_id``: the id to resume (with ``checkpoint``; generated if absent;
      ``input`` may then be left out to reuse the recorded one);
    * ``replay``: re-run the recorded run ``run_id`` from its recorded LLM
      responses and tool results, needing no backend and writing nothing;
    * ``resume``: answers to the pending interrupts of run ``run_id``, as
      ``{interrupt_id: answer}`` (see ``ctx.interrupt`` and ``_interrupts.py``).

    ``run.cancel()`` stops everything within one scheduling step and makes
    the run raise :class:`~plait.RunCancelledError` carrying partial results.
    Prefer ``async with graph.stream(...) as run: async for event in run``
    when you may stop iterating early.
    """

    def __init__(self, graph: Graph, input: Any = None, *, backend: Backend | None = None,
                 backends: Mapping[str, Backend] | None = None, max_concurrency: int | None = None,
                 deadline: float | None = None, token_budget: int | None = None, trace: Any = None,
                 on_event: Callable[[Event], None] | list[Callable[[Event], None]] | None = None,
                 progress: bool = False, keep_events: bool = True, checkpoint: Any = None,
                 run_id: str | None = None, replay: bool = False, cache: bool = True, resume: Any = None):
        if max_concurrency is not None and max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if deadline is not None and deadline <= 0:
            raise ConfigError(f"deadline must be > 0 seconds, got {deadline}")
        if token_budget is not None and token_budget < 0:
            raise ConfigError(f"token_budget must be >= 0, got {token_budget}")
        self.graph = graph
        self.plan = graph._compile()
        self.backends = run_backends(backend, backends)
        if not replay:  # a replay's backends are the recorded ones: checked once the journal has them
            check_models(self.plan, self.backends)
        self.answers = check_answers(resume, checkpoint, run_id, self.plan.nodes)
        self.journal = open_journal(graph, self.plan, checkpoint, run_id, replay, cache)
        try:
            recorded = self.journal.recorded_input() if input is None else None
            self.inputs = recorded if recorded is not None else bind_inputs(graph, self.plan, input)
        except BaseException:
            self.journal.close()
            raise
        self.backend, self.max_concurrency, self.deadline = backend, max_concurrency, deadline
        self.token_budget, self.trace, self.progress, self.keep_events = token_budget, trace, progress, keep_events
        self.sinks: list[Callable[[Event], None]] = (
            [] if on_event is None else list(on_event) if isinstance(on_event, list) else [on_event])
        self.run_result: RunResult | None = None  # the RunResult once the run has ended (result() waits for it)
        self.error: BaseException | None = None
        self._started = False
        self._done: anyio.Event | None = None
        self._execution: _Execution | None = None
        self._cancel_requested = False
        self._tg_cm: anyio.abc.TaskGroup | None = None
        self._receive: MemoryObjectReceiveStream[Event] | None = None

    @staticmethod
    def check_options(options: dict[str, Any]) -> dict[str, Any]:
        """Refuse an option Run does not take with a one-line ConfigError (``seed=`` says where seeds go)."""
        known = _run_options()
        for name in options:
            if name == "seed":
                raise ConfigError("a run takes no seed=: a seed belongs to each request, as SamplingParams(seed=7) "
                                  "on the node or request; for fresh samples from a checkpoint change that seed, "
                                  "or run with cache=False")
            if name not in known:
                raise ConfigError(f"unknown run option {name!r}; the options are: {', '.join(known)}")
        return options

    def cancel(self) -> None:
        """Stop the run; it raises RunCancelledError with the partial results."""
        self._cancel_requested = True
        if self._execution is not None:
            self._execution.state.cancel_requested = True
            self._execution.cancel()

    async def result(self) -> RunResult:
        """Run (if not started yet) and return the result, or raise the run's RunError."""
        if not self._started:
            await self._execute()
        elif self.run_result is None and self.error is None:
            await self._done_event().wait()
        if self.error is not None:
            raise self.error
        assert self.run_result is not None
        return self.run_result

    def _done_event(self) -> anyio.Event:
        if self._done is None:
            self._done = anyio.Event()
        return self._done

    async def _execute(self) -> None:
        self._started = True
        if self.trace is None and not self.progress:
            self._execute_with(self.sinks)
            await self._drive()
            return
        from plait.orchestrator._sinks import open_sinks

        with open_sinks(self.trace, self.progress, self.plan) as extra:
            self._execute_with(self.sinks + extra)
            await self._drive()

    def _execute_with(self, sinks: list[Callable[[Event], None]]) -> None:
        journal = self.journal
        backends = journal.begin(self.inputs, self.backends)
        try:
            check_models(self.plan, backends)
        except ConfigError:
            journal.close()
            raise
        state = _RunState(self.graph.name, self.inputs, backends, self.token_budget,
                          self.max_concurrency, sinks, self.keep_events, journal.run_id)
        state.journal = journal
        state.answers = self.answers
        state.cancel_requested = self._cancel_requested
        self._execution = _Execution(self.plan, state, self.inputs, "")
        state.emit(RunStarted, graph=self.graph.name, started_at=time.time(), inputs=self.inputs,
                   shape=graph_shape(self.plan))

    async def _drive(self) -> None:
        execution = self._execution
        assert execution is not None, "_drive runs after _execute_with"
        state = execution.state
        output, status, error = None, "ok", None
        try:
            output = await execution.execute(self.deadline)
            if state.interrupts:
                status = "interrupted"
            elif any(r.status == "failed" for r in state.records.values()):
                status = "partial"
        except RunError as exc:
            status = "cancelled" if isinstance(exc, RunCancelledError) else "failed"
            error = exc
            exc.partial = self._record(state, execution._output(), status)
        except anyio.get_cancelled_exc_class():
            self._finish(state, None, "cancelled", "cancelled from outside")
            raise
        except BaseExceptionGroup as group:  # sys.exit() or Ctrl-C inside a node: raised as itself, not a group
            stop = _first_leaf(group.subgroup((SystemExit, KeyboardInterrupt)))
            if stop is None:
                raise
            self._finish(state, None, "cancelled", f"stopped by {type(stop).__name__} in a node")
            raise stop from None
        self._finish(state, output, status, error)
        self.error = error

    def _finish(self, state: _RunState, output: Any, status: str, error: Any) -> None:
        self.journal.finish(output, status, error)
        self.run_result = self._record(state, output, status)
        state.emit(RunFinished, status=status, duration=state.now(), tokens=state.tokens.total,
                   error=None if error is None else str(error))
        self.run_result.duration = state.now()
        if self._done is not None:
            self._done.set()

    def _record(self, state: _RunState, output: Any, status: str) -> RunResult:
        return RunResult(state.run_id, self.graph.name, status, output, state.records, state.tokens,
                         state.now(), state.events, list(state.interrupts), state.tokens_by_model)

    # -- streaming -------------------------------------------------------------
    def _open_stream(self):
        send, self._receive = anyio.create_memory_object_stream[Event](math.inf)
        self.sinks.append(send.send_nowait)
        self._started = True
        self._done_event()

        async def drive() -> None:
            async with send:
                try:
                    await self._execute()
                except BaseException as exc:  # surfaced by result() and the iterator
                    if isinstance(exc, anyio.get_cancelled_exc_class()):
                        raise
                    self.error = self.error or exc
                    self._done_event().set()

        return drive

    async def __aenter__(self) -> Run:
        drive = self._open_stream()
        self._tg_cm = anyio.create_task_group()
        tg = await self._tg_cm.__aenter__()
        tg.start_soon(drive)
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        if self.run_result is None and self.error is None:
            self.cancel()
        assert self._tg_cm is not None, "__aexit__ follows __aenter__"
        await self._tg_cm.__aexit__(*exc_info)

    def __aiter__(self):
        if self._receive is not None:
            return self._receive.__aiter__()
        return self._iterate()

    async def _iterate(self):
        """Bare ``async for event in graph.stream(...)``.

        The run lives in one task that this generator owns: breaking out of
        the loop (or dropping the generator) cancels it, and with it every
        node, instead of leaving a cancel scope open across tasks.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("on this event loop, iterate inside `async with graph.stream(...) as run:`") from None
        task = loop.create_task(self._open_stream()())
        receive = self._receive
        assert receive is not None, "_open_stream opened it"
        try:
            async for event in receive:
                yield event
            await task
        finally:
            if not task.done():
                self.cancel()
                task.cancel()
                with anyio.CancelScope(shield=True):
                    await asyncio.wait([task])
        if self.error is not None:
            raise self.error


def _first_leaf(group: BaseExceptionGroup | None) -> BaseException | None:
    """The first exception inside ``group`` (nested groups opened), or None for no group."""
    leaf: BaseException | None = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf
