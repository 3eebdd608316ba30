"""Plan-then-execute (ReWOO / LLMCompiler style) as one graph node.

One model call writes the whole plan; the tools run as a parallel DAG with no
model call between them; one model call (the solver) writes the answer from
the task and the evidence. The solver may ask for a new plan (at most
``max_replans`` times); the new plan sees, and may reference, every result
already gathered, so nothing is fetched twice.

Events (``Custom``, via ``ctx.emit``): ``plan`` (each planner attempt, with its
steps and problems), ``plan_step_started`` / ``plan_step_finished`` (each
step, with resolved arguments and result), ``tool_cache_hit``, ``tool_retry``,
``replan`` and ``answer``.

Given ``budget=`` tokens (planner, ``llm`` steps and solver: every prompt and
reply), the node's calls run through one :class:`Spending`: each is cut to
what is left; an ``llm`` step with no room left becomes a ToolFailure, and
when the planner or the solver has no room the node ends with what it has
(``stopped="budget"``, the plans and evidence so far, an empty answer).
"""

from __future__ import annotations

import re
from typing import Any, Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field

from plait._deprecation import renamed_keyword
from plait.errors import BudgetExceededError, ConfigError
from plait.executors._base import Request, SamplingParams
from plait.executors._tool_runner import ToolRunner
from plait.executors._tools import Tool, ToolRegistry
from plait.orchestrator._context import RunContext
from plait.orchestrator._graph import Graph
from plait.orchestrator._models import check_model_name
from plait.orchestrator._node import Node, Param, Signature
from plait.planners._budget_split import Spending, check_budget, first_call_fits, fit
from plait.planners._dag import _LLM_SAMPLING, execute_plan
from plait.planners._plan import Plan
from plait.planners._plan_check import MAX_STEPS
from plait.planners._planner import PlanFormat, Planner
from plait.planners._prompts import planner_prompt, solver_prompt
from plait.planners._streaming import StreamingExecutor

__all__ = ["PlanAndExecute", "PlanResult", "plan_and_execute_graph"]

# Blanks are [ \t], not \s: a \s* after ^ runs across every following newline, quadratic on a reply of many.
_REPLAN = re.compile(r"^[ \t]*Replan[ \t]*:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)
_ANSWER = re.compile(r"Answer\s*:\s*(.*)", re.IGNORECASE | re.DOTALL)


class PlanResult(BaseModel):
    """What a plan-and-execute run produced: the answer, every plan, and the evidence by step id."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    answer: str
    plans: list[Plan]
    evidence: dict[str, Any] = Field(default_factory=dict)
    replans: int = 0
    stopped: Literal["answer", "budget"] = "answer"  # "budget": the node's budget ran out before an answer


class PlanAndExecute(Node):
    """A node that plans once, runs the plan's tool calls as a DAG, then solves.

    * ``tools``: a :class:`~plait.executors.ToolRegistry` or a list of tools / typed functions;
    * ``plan_format``: ``"json"`` (structured output, schema from the tools) or ``"text"`` (ReWOO lines);
    * ``parallel``: run independent steps concurrently (False: one at a time, in plan order);
    * ``max_steps``: the longest plan (default 24); a longer one is a problem sent back to the planner;
    * ``max_repairs``: re-asks of the planner per round when its plan is invalid;
    * ``max_replans``: how many times the solver may ask for a new plan;
    * ``planner_sampling`` / ``solver_sampling`` / ``llm_sampling``: sampling options for the planner,
      the solver, and ``llm`` steps inside the plan (by default at most 1024, 256 and 128 tokens);
    * ``planner_model`` / ``solver_model``: the run's backends (by name) that plan and solve
      (None: the node's ``model``, which also serves ``llm`` steps inside the plan);
    * ``examples``: few-shot plans to put in the planner prompt;
    * ``budget``: tokens for every call the node makes (see the module docstring);
    * ``input``: the name of the node's text input (default ``"task"``);
    * ``stream``: start steps while the planner is still writing them (implies
      parallel execution; a backend that cannot stream hands over the whole
      plan at once, which then runs as usual).

    The output is a :class:`PlanResult`.
    """

    def __init__(
        self,
        tools: ToolRegistry | list[Tool | Any],
        *,
        name: str = "plan_and_execute",
        plan_format: PlanFormat = "json",
        parallel: bool = True,
        max_steps: int = MAX_STEPS,
        max_repairs: int = 2,
        max_replans: int = 1,
        planner_sampling: SamplingParams | None = None,
        solver_sampling: SamplingParams | None = None,
        llm_sampling: SamplingParams | None = None,
        planner_model: str | None = None,
        solver_model: str | None = None,
        examples: str = "",
        input: str = "task",
        stream: bool = False,
        budget: int | None = None,
        **policy: Any,
    ):
        planner_sampling = renamed_keyword("PlanAndExecute", policy, "planner_params", "planner_sampling",
                                           planner_sampling)
        solver_sampling = renamed_keyword("PlanAndExecute", policy, "solver_params", "solver_sampling", solver_sampling)
        llm_sampling = renamed_keyword("PlanAndExecute", policy, "llm_params", "llm_sampling", llm_sampling)
        super().__init__(name, **policy)
        if max_replans < 0:
            raise ConfigError(f"max_replans must be >= 0, got {max_replans}")
        self.stream = stream
        self.budget = check_budget(f"PlanAndExecute {name!r}", budget)
        self.tools = ToolRegistry.of(tools)
        self.planner = Planner(self.tools, fmt=plan_format, max_repairs=max_repairs, sampling=planner_sampling,
                               examples=examples, max_steps=max_steps)
        self.parallel, self.max_replans = parallel, max_replans
        self.solver_sampling = solver_sampling or SamplingParams(max_tokens=256)
        self.llm_sampling = llm_sampling or _LLM_SAMPLING
        self.input = input
        self.planner_model = check_model_name(planner_model, name)
        self.solver_model = check_model_name(solver_model, name)

    def models_used(self) -> set[str]:
        return super().models_used() | {m for m in (self.planner_model, self.solver_model) if m}

    def signature(self) -> Signature:
        return Signature({self.input: Param(self.input, str)}, PlanResult, "ctx")

    async def invoke(self, ctx: RunContext, kwargs: dict[str, Any]) -> PlanResult:
        task = kwargs[self.input]
        runner = ToolRunner(self.tools, emit=ctx.emit, remember=ctx.remember)
        plans: list[Plan] = []
        evidence: dict[str, Any] = {}
        reason: str | None = None
        first = planner_prompt(task, self.tools, fmt=self.planner.fmt, examples=self.planner.examples)
        first_call_fits(f"PlanAndExecute {self.name!r}", self.budget, ctx.using(self.planner_model),
                        Request(prompt=first, params=self.planner.sampling))
        spend = Spending(ctx, limit=self.budget)
        round_ = 0
        try:
            for round_ in range(self.max_replans + 1):
                evidence = await self._plan_and_run(task, spend, runner, evidence, plans, reason)
                may_replan = round_ < self.max_replans
                answer, reason = await self.solve(task, plans, evidence, spend, may_replan=may_replan)
                if reason is None:
                    ctx.emit("answer", answer=answer, replans=round_)
                    return PlanResult(answer=answer, plans=plans, evidence=evidence, replans=round_)
                ctx.emit("replan", round=round_ + 1, reason=reason)
        except BudgetExceededError as exc:
            if not spend.owns(exc):
                raise
            ctx.emit("answer", answer="", replans=round_, stopped="budget")
            return PlanResult(answer="", plans=plans, evidence=evidence, replans=round_, stopped="budget")
        raise AssertionError("unreachable: the last round may not replan")  # pragma: no cover

    async def _plan_and_run(self, task: str, ctx: RunContext, runner: ToolRunner, evidence: dict[str, Any],
                            plans: list[Plan], reason: str | None) -> dict[str, Any]:
        """One round: get a plan (streamed or whole), run it, return the evidence; appends to ``plans``."""
        repair = None
        if self.stream:
            async with anyio.create_task_group() as tg:
                executor = StreamingExecutor(runner, ctx, tg, evidence=evidence, llm_sampling=self.llm_sampling)
                launched, problems, raw = await self.planner.stream_plan(
                    task, ctx.using(self.planner_model), executor.launch, evidence=evidence, plans=plans,
                    reason=reason)
            evidence = executor.evidence
            if launched.steps:
                plans.append(launched)
            if not problems:
                return evidence
            if launched.steps:  # keep what ran; ask for the rest
                reason = "the rest of the plan could not run: " + "; ".join(problems)
            else:
                repair = (raw, problems)
        plan = await self.planner.plan(task, ctx.using(self.planner_model), evidence=evidence, plans=plans,
                                       reason=reason, repair=repair)
        plans.append(plan)
        return await execute_plan(plan, runner, ctx, evidence=evidence, parallel=self.parallel,
                                  llm_sampling=self.llm_sampling)

    async def solve(self, task: str, plans: list[Plan], evidence: dict[str, Any], ctx: RunContext,
                    *, may_replan: bool) -> tuple[str, str | None]:
        """The solver's answer, or (when allowed and asked for) the reason for a new plan."""
        prompt = solver_prompt(task, plans, evidence, may_replan=may_replan)
        ctx = ctx.using(self.solver_model)
        request = fit(ctx, Request(prompt=prompt, params=self.solver_sampling), f"PlanAndExecute {self.name!r}")
        text = (await ctx.generate(request)).text
        replan = _REPLAN.search(text)
        if replan and may_replan:
            return "", replan.group(1).strip() or "the evidence was not enough"
        answer = _ANSWER.search(text)
        return (answer.group(1).strip() if answer else text.strip()), None


def plan_and_execute_graph(tools: ToolRegistry | list[Tool | Any], *, name: str = "plan_and_execute",
                           **options: Any) -> Graph:
    """A one-node :class:`~plait.Graph` running :class:`PlanAndExecute` (input ``task``), for ``plait run``."""
    graph = Graph(name, description="plan-then-execute: one plan, tools as a parallel DAG, one solver call")
    graph.output(graph.add(PlanAndExecute(tools, **options)))
    return graph
