"""ReAct: the thought / action / observation loop, as a baseline node.

Each turn sends the whole transcript so far and gets one Thought plus either
one ``Action: tool[input]`` (run, its Observation appended) or a ``Final
Answer``. One model call per tool call, tools one at a time: the cost that
plan-then-execute avoids, kept here for comparison and for tasks where each
action truly depends on the last observation.

Given ``budget=`` tokens (every turn's prompt and reply), each turn reserves
its worst case against the budget and the last turn gets what is left; when
not even a one-token reply fits the agent stops as at its step limit
(``finished=False``, ``stopped="budget"``), with the steps it took.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from plait._deprecation import renamed_keyword
from plait.errors import BudgetExceededError, ConfigError
from plait.executors._base import Request, SamplingParams
from plait.executors._tool_runner import ToolFailure, ToolRunner
from plait.executors._tools import Tool, ToolRegistry
from plait.orchestrator._context import RunContext
from plait.orchestrator._node import Node, Param, Signature
from plait.planners._budget_split import Spending, check_budget, first_call_fits, fit
from plait.planners._plan import as_text
from plait.planners._plan_parse import parse_tool_call
from plait.planners._prompts import react_prompt

__all__ = ["ReAct", "ReActResult", "ReActStep"]

# One line at a time, blanks as [ \t]: ^\s* under MULTILINE ran across every following newline at each
# line start, quadratic (40,000 newlines took 4.4 s on the event loop).
_ACTION = re.compile(r"[ \t]*Action[ \t]*:[ \t]*([A-Za-z_]\w*)[ \t]*\[(.*)\][ \t]*")
_FINAL = re.compile(r"Final Answer\s*:\s*(.*)", re.IGNORECASE | re.DOTALL)
_THOUGHT = re.compile(r"Thought\s*:\s*(.*?)(?:\n|$)", re.IGNORECASE)


class ReActStep(BaseModel):
    """One turn that called a tool."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    thought: str
    tool: str
    args: dict[str, Any]
    observation: Any


class ReActResult(BaseModel):
    """The answer (empty when ``finished`` is False: the step limit or the budget was hit) and every step taken."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    answer: str
    steps: list[ReActStep] = Field(default_factory=list)
    finished: bool = True
    stopped: Literal["answer", "max_steps", "budget"] = "answer"  # why the loop ended


class ReAct(Node):
    """A ReAct agent node over ``tools``: at most ``max_steps`` model calls, within ``budget`` tokens if given.

    ``sampling`` should stop at ``"Observation:"`` (the default does) so the
    model does not invent tool results; its ``max_tokens`` bounds each turn.
    Output: :class:`ReActResult`.
    """

    def __init__(self, tools: ToolRegistry | list[Tool | Any], *, name: str = "react", max_steps: int = 8,
                 sampling: SamplingParams | None = None, examples: str = "", input: str = "task",
                 budget: int | None = None, **policy: Any):
        sampling = renamed_keyword("ReAct", policy, "params", "sampling", sampling)
        super().__init__(name, **policy)
        if max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {max_steps}")
        self.tools = ToolRegistry.of(tools)
        self.sampling = sampling or SamplingParams(max_tokens=256, stop=("Observation:",))
        self.max_steps, self.examples, self.input = max_steps, examples, input
        self.budget = check_budget(f"ReAct {name!r}", budget)

    def signature(self) -> Signature:
        return Signature({self.input: Param(self.input, str)}, ReActResult, "ctx")

    async def invoke(self, ctx: RunContext, kwargs: dict[str, Any]) -> ReActResult:
        task = kwargs[self.input]
        runner = ToolRunner(self.tools, emit=ctx.emit, remember=ctx.remember)
        transcript = ""
        steps: list[ReActStep] = []
        owner = f"ReAct {self.name!r}"
        spend = Spending(ctx, limit=self.budget)
        for turn in range(self.max_steps):
            request = Request(prompt=react_prompt(task, self.tools, transcript, examples=self.examples),
                              params=self.sampling)
            if turn == 0:
                first_call_fits(owner, self.budget, ctx, request)
            try:
                text = (await spend.generate(fit(spend, request, owner))).text
            except BudgetExceededError as exc:
                if not spend.owns(exc):
                    raise
                ctx.emit("react_gave_up", budget=self.budget, turns=turn)
                return ReActResult(answer="", steps=steps, finished=False, stopped="budget")
            text = text.split("Observation:", 1)[0].rstrip()
            action, final = _find_action(text), _FINAL.search(text)
            if final and (action is None or final.start() < action[2]):
                answer = final.group(1).strip()
                ctx.emit("react_answer", turn=turn, answer=answer)
                return ReActResult(answer=answer, steps=steps)
            if action is None:
                observation: Any = "Invalid format: write 'Action: <tool>[<input>]' or 'Final Answer: <answer>'."
                args, name = {}, ""
            else:
                name = action[0]
                args = parse_tool_call(name, action[1], self.tools)
                observation = await runner.call(name, args)
                thought = _THOUGHT.search(text)
                steps.append(ReActStep(thought=thought.group(1).strip() if thought else "", tool=name,
                                       args=args, observation=observation))
            ctx.emit("react_step", turn=turn, tool=name, args=args, observation=str(observation),
                     ok=not isinstance(observation, ToolFailure))
            transcript += f"{text}\nObservation: {as_text(observation)}\n"
        ctx.emit("react_gave_up", max_steps=self.max_steps)
        return ReActResult(answer="", steps=steps, finished=False, stopped="max_steps")


def _find_action(text: str) -> tuple[str, str, int] | None:
    """The first ``Action: tool[input]`` line: (tool, input, its offset in ``text``); linear in the text."""
    offset = 0
    for line in text.split("\n"):
        m = _ACTION.fullmatch(line.rstrip("\r"))
        if m:
            return m.group(1), m.group(2), offset
        offset += len(line) + 1
    return None
