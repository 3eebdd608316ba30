"""Running a validated plan: each step starts as soon as the steps it references are done.

In parallel mode the plan becomes a small plait :class:`~plait.Graph` (one
node per step, an edge per reference, a collector at the end) run as a
subgraph of the calling node, so independent steps overlap and every step
shows up in the run record and trace like any other node. Sequential mode
runs the steps one at a time in plan order (the baseline the benchmark
compares against).

References are substituted as typed values (see :mod:`plait.planners._plan`).
A step whose tool fails, or whose reference points at a failed step, gets a
:class:`~plait.executors.ToolFailure` as its evidence; the run goes on.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from plait._deprecation import refuse_unknown, renamed_keyword
from plait._json import clip
from plait.errors import RunError
from plait.executors._base import Request, SamplingParams
from plait.executors._tool_runner import ToolFailure, ToolRunner
from plait.orchestrator._context import RunContext
from plait.orchestrator._graph import Graph
from plait.orchestrator._node import Node, Param, Signature
from plait.orchestrator._runtime import run_subgraph
from plait.planners._budget_split import fit, owned
from plait.planners._plan import LLM_TOOL, Plan, PlanStep, UnresolvedReference, resolve_args

__all__ = ["execute_plan", "run_step"]

_LLM_SAMPLING = SamplingParams(max_tokens=128)


async def execute_plan(
    plan: Plan,
    runner: ToolRunner,
    ctx: RunContext,
    *,
    evidence: Mapping[str, Any] | None = None,
    parallel: bool = True,
    llm_sampling: SamplingParams | None = None,
    **renamed: Any,
) -> dict[str, Any]:
    """Run ``plan``; return the evidence (earlier ``evidence`` plus one entry per step).

    ``llm_sampling``: sampling options of the plan's ``llm`` steps (default: 128 tokens at most).
    """
    llm_sampling = renamed_keyword("execute_plan", renamed, "llm_params", "llm_sampling", llm_sampling) or _LLM_SAMPLING
    refuse_unknown("execute_plan", renamed)
    known = dict(evidence or {})
    if not parallel:
        for step in plan.steps:
            known[step.id] = await run_step(step, known, runner, ctx, llm_sampling)
        return known
    graph = _plan_graph(plan, known, runner, llm_sampling, name=f"plan_{plan.ids[0]}")
    results = await run_subgraph(graph, {}, ctx)
    known.update(results)
    return known


async def run_step(
    step: PlanStep, evidence: Mapping[str, Any], runner: ToolRunner, ctx: RunContext,
    llm_sampling: SamplingParams = _LLM_SAMPLING,
) -> Any:
    """Resolve one step's references against ``evidence`` and run it; failures come back as values."""
    started = time.perf_counter()
    ctx.emit("plan_step_started", step=step.id, tool=step.tool)
    args: dict[str, Any] | None = None
    try:
        args = resolve_args(step.args, evidence)
    except UnresolvedReference as exc:
        value: Any = ToolFailure(step.tool, f"not run: {exc}", attempts=0)
    else:
        if step.tool.lower() == LLM_TOOL:
            value = await _llm_step(step, args, ctx, llm_sampling)
        else:
            value = await runner.call(step.tool, args)
    ctx.emit("plan_step_finished", step=step.id, tool=step.tool, args=args,
             ok=not isinstance(value, ToolFailure), result=clip(str(value), 200),
             seconds=round(time.perf_counter() - started, 6))
    return value


async def _llm_step(step: PlanStep, args: dict[str, Any], ctx: RunContext, sampling: SamplingParams) -> Any:
    prompt = str(args.get("prompt", "")).strip()
    if not prompt:
        return ToolFailure(LLM_TOOL, "an llm step needs a non-empty 'prompt' argument", attempts=0)
    try:  # inside a node with a budget: cut to what it has left, not run when nothing is
        completion = await ctx.generate(fit(ctx, Request(prompt=prompt, params=sampling), f"node {ctx.node!r}"))
    except RunError as exc:
        if owned(ctx, exc):
            return ToolFailure(LLM_TOOL, "not run: the node's token budget is spent", attempts=0)
        raise  # the run's budget, deadline, cancellation: the run itself must stop
    except Exception as exc:
        return ToolFailure(LLM_TOOL, f"{type(exc).__name__}: {exc}")
    return completion.text.strip()


class _StepNode(Node):
    """One plan step as a graph node; its inputs are the results of the steps it references."""

    def __init__(self, step: PlanStep, deps: set[str], known: Mapping[str, Any], runner: ToolRunner,
                 llm_sampling: SamplingParams):
        self.step, self.deps, self.known = step, sorted(deps), known
        self.runner, self.llm_sampling = runner, llm_sampling
        # not committed on its own: its tool results and model samples are recorded where they happen
        super().__init__(step.id, durable=False)

    def signature(self) -> Signature:
        return Signature({d: Param(d, Any) for d in self.deps}, Any, "ctx")

    async def invoke(self, ctx: RunContext, kwargs: dict[str, Any]) -> Any:
        return await run_step(self.step, {**self.known, **kwargs}, self.runner, ctx, self.llm_sampling)


class _Collect(Node):
    """Gathers every step's result into the evidence dict."""

    def __init__(self, ids: list[str]):
        self.ids = ids
        super().__init__("evidence", durable=False)

    def signature(self) -> Signature:
        return Signature({i: Param(i, Any) for i in self.ids}, dict[str, Any], None)

    async def invoke(self, ctx: RunContext, kwargs: dict[str, Any]) -> Any:
        return {i: kwargs[i] for i in self.ids}


def _plan_graph(plan: Plan, known: Mapping[str, Any], runner: ToolRunner, llm_sampling: SamplingParams,
                name: str) -> Graph:
    graph = Graph(name)
    deps = plan.dependencies()
    for step in plan.steps:
        graph.add(_StepNode(step, deps[step.id], known, runner, llm_sampling))
    for step in plan.steps:
        for d in deps[step.id]:
            graph.edge(d, step.id, param=d)
    collect = graph.add(_Collect(plan.ids))
    graph.join({i: i for i in plan.ids}, collect)
    graph.output(collect)
    return graph
