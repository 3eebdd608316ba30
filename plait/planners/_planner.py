"""The planner: ask the model for a whole plan, parse it, validate it, repair it.

With ``fmt="json"`` the request carries a JSON-schema constraint generated
from the tool registry (arguments typed per tool), so a backend with
structured output can only write well-formed plans. ``fmt="text"`` asks for
the classic ReWOO format. A plan that fails to parse or validate is sent back
to the model with the list of problems, at most ``max_repairs`` times; then
:class:`~plait.errors.PlanError` is raised, carrying the last plan and its problems.
A plan longer than ``max_steps`` steps is one such problem; the list of
problems is capped (see :func:`~plait.planners._plan_check.cap_problems`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from plait._deprecation import refuse_unknown, renamed_keyword
from plait.errors import ConfigError, ParseError, PlanError
from plait.executors._base import Completion, JsonSchema, Request, SamplingParams
from plait.executors._reask import ask_until_usable
from plait.executors._tools import ToolRegistry
from plait.orchestrator._context import RunContext
from plait.planners._budget_split import fit, within_budget
from plait.planners._plan import Plan, PlanStep
from plait.planners._plan_check import MAX_STEPS, cap_problems, next_step_number, plan_json_schema, plan_problems
from plait.planners._plan_parse import parse_json_plan, parse_text_plan
from plait.planners._prompts import planner_prompt, repair_prompt
from plait.planners._streaming import StreamedPlanReader

__all__ = ["Planner", "PlanFormat"]

PlanFormat = Literal["json", "text"]


class Planner:
    """Writes validated plans for a task over a tool registry (see the module docstring)."""

    def __init__(self, tools: ToolRegistry, *, fmt: PlanFormat = "json", max_repairs: int = 2,
                 sampling: SamplingParams | None = None, examples: str = "", max_steps: int = MAX_STEPS,
                 **renamed: Any):
        sampling = renamed_keyword("Planner", renamed, "params", "sampling", sampling)
        refuse_unknown("Planner", renamed)
        sampling = sampling or SamplingParams(max_tokens=1024)
        if fmt not in ("json", "text"):
            raise ConfigError(f"plan format must be 'json' or 'text', got {fmt!r}")
        if max_repairs < 0:
            raise ConfigError(f"max_repairs must be >= 0, got {max_repairs}")
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ConfigError(f"max_steps must be an int >= 1 (the longest plan allowed), got {max_steps!r}")
        self.tools, self.fmt, self.max_repairs, self.examples = tools, fmt, max_repairs, examples
        self.max_steps = max_steps
        if fmt == "json":
            schema = plan_json_schema(tools, max_steps=max_steps, max_tokens=sampling.max_tokens)
            sampling = sampling.model_copy(update={"constraint": JsonSchema(schema=schema)})
        self.sampling = sampling

    def parse(self, text: str, known: Iterable[str] = ()) -> Plan:
        """Parse model output in this planner's format (ParseError when it cannot).

        ``known``: evidence ids of earlier rounds; unnumbered JSON steps continue after them.
        """
        if self.fmt == "json":
            return parse_json_plan(text, next_step_number(known))
        return parse_text_plan(text, self.tools)

    async def plan(self, task: str, ctx: RunContext, *, evidence: Mapping[str, Any] | None = None,
                   plans: Sequence[Plan] = (), reason: str | None = None,
                   repair: tuple[str, list[str]] | None = None) -> Plan:
        """A plan that passed validation; references to ``evidence`` ids (earlier rounds) are allowed.

        ``repair``: (raw text, problems) of an attempt already made (a streamed
        one); the first request then asks for its correction, and it counts
        against ``max_repairs``.
        """
        known = _producers(evidence or {}, plans)
        base = planner_prompt(task, self.tools, fmt=self.fmt, examples=self.examples,
                              evidence=evidence, plans=plans, reason=reason)
        first = int(repair is not None)  # a streamed attempt already made counts as the first

        def judge(request: Request, completion: Completion, call: int) -> tuple[Plan | None, list[str] | None]:
            plan: Plan | None = None
            try:
                read = self.parse(completion.text, known)
            except ParseError as exc:
                problems = cap_problems([str(exc)])
            else:
                plan, problems = read, plan_problems(read, self.tools, known, max_steps=self.max_steps)
            ctx.emit("plan", attempt=first + call - 1, format=self.fmt, valid=not problems, problems=problems,
                     steps=[s.model_dump() for s in plan.steps] if plan else None)
            return plan, problems or None

        def fix(request: Request, raw: str, problems: list[str]) -> Request:
            return Request(prompt=repair_prompt(base, raw, problems), params=self.sampling)

        if repair is not None and self.max_repairs == 0:  # the streamed attempt was the only one allowed
            problems, plan, raw = repair[1], None, repair[0]
        else:
            prompt = base if repair is None else repair_prompt(base, *repair)
            cut = within_budget(ctx)  # inside a node with a budget: each call cut to what it has left
            reply = await ask_until_usable(ctx, Request(prompt=prompt, params=self.sampling), judge,
                                           rounds=self.max_repairs + 1 - first, follow_up=fix, before=cut)
            if reply.problem is None:
                return reply.value
            if cut is not None:
                cut.raise_if_cut()
            problems, plan, raw = reply.problem, reply.value, reply.raw
        raise PlanError(f"the planner gave no valid plan in {self.max_repairs + 1} attempt(s); last plan's problems",
                        problems, plan=plan, raw=raw)

    async def stream_plan(self, task: str, ctx: RunContext, on_step: Callable[[PlanStep], None], *,
                          evidence: Mapping[str, Any] | None = None, plans: Sequence[Plan] = (),
                          reason: str | None = None) -> tuple[Plan, list[str], str]:
        """Stream a plan, calling ``on_step`` for each step as soon as it (and all before it) is valid.

        Returns the steps handed on, the problems of the rest (empty when the
        whole plan is valid) and the raw text.
        """
        reader = StreamedPlanReader(self.tools, _producers(evidence or {}, plans), on_step, fmt=self.fmt,
                                    max_steps=self.max_steps)
        prompt = planner_prompt(task, self.tools, fmt=self.fmt, examples=self.examples,
                                evidence=evidence, plans=plans, reason=reason)
        request = fit(ctx, Request(prompt=prompt, params=self.sampling), f"node {ctx.node!r}")
        raw = (await ctx.generate_stream(request, reader.feed)).text
        reader.close()
        problems = reader.problems
        if not problems and not reader.launched:
            try:
                self.parse(raw, list(evidence or {}))
            except ParseError as exc:
                problems = cap_problems([str(exc)])
            else:
                problems = ["the plan has no steps; give at least one step"]
        ctx.emit("plan", attempt=0, format=self.fmt, streamed=True, valid=not problems, problems=problems,
                 steps=[s.model_dump() for s in reader.launched])
        return reader.plan, problems, raw


def _producers(evidence: Mapping[str, Any], plans: Sequence[Plan]) -> dict[str, str]:
    """Each earlier evidence id with the tool that produced it, so references into it are type-checked."""
    tools = {s.id: s.tool for p in plans for s in p.steps}
    return {k: tools.get(k, "") for k in evidence}
