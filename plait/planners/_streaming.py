"""Streaming plans: steps start while the planner is still writing later ones (LLMCompiler style).

With a backend that streams (``Backend.supports_streaming``) and the ReWOO
text format, :class:`StreamedPlanReader` reads the planner's output line by
line. Each complete step line is checked together with the steps before it;
while that prefix is valid the step is handed to :class:`StreamingExecutor`,
which starts it as soon as the steps it references are done. At the first
problem, launching stops: the steps already started finish and keep their
evidence, and the planner is asked again for the rest (see
``PlanAndExecute``). JSON plans are not streamed (they are parsed whole).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.abc

from plait.executors._base import SamplingParams
from plait.executors._tool_runner import ToolRunner
from plait.executors._tools import ToolRegistry
from plait.orchestrator._context import RunContext
from plait.planners._dag import run_step
from plait.planners._plan import Plan, PlanStep
from plait.planners._plan_check import plan_problems
from plait.planners._plan_parse import read_plan_line

__all__ = ["StreamedPlanReader", "StreamingExecutor"]


class StreamedPlanReader:
    """Turns streamed text into steps, handing each on while the plan so far is valid."""

    def __init__(self, tools: ToolRegistry, known: Mapping[str, Any], on_step: Callable[[PlanStep], None]):
        self.tools, self.known, self.on_step = tools, list(known), on_step
        self.launched: list[PlanStep] = []
        self.problems: list[str] = []
        self._buffer = ""
        self._thought: list[str] = []

    @property
    def plan(self) -> Plan:
        """The steps handed on so far."""
        return Plan(steps=list(self.launched))

    def feed(self, chunk: str) -> None:
        self._buffer += chunk
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            self._line(line)

    def close(self) -> None:
        if self._buffer:
            self._line(self._buffer)
            self._buffer = ""

    def _line(self, line: str) -> None:
        read = read_plan_line(line, self.tools)
        if read is None:
            return
        if read[0] == "thought":
            self._thought.append(read[1])
            return
        step = PlanStep.model_validate({**read[1], "thought": " ".join(self._thought)})
        self._thought = []
        if self.problems:
            return  # the plan already went wrong: nothing after that point runs
        problems = plan_problems(Plan(steps=[*self.launched, step]), self.tools, self.known)
        if problems:
            self.problems = problems
            return
        self.launched.append(step)
        self.on_step(step)


class StreamingExecutor:
    """Starts steps as they are handed over; each waits only for the steps it references."""

    def __init__(self, runner: ToolRunner, ctx: RunContext, tg: anyio.abc.TaskGroup, *,
                 evidence: Mapping[str, Any] | None = None, llm_params: SamplingParams = SamplingParams()):
        self.runner, self.ctx, self.tg, self.llm_params = runner, ctx, tg, llm_params
        self.evidence: dict[str, Any] = dict(evidence or {})
        self._done: dict[str, anyio.Event] = {}

    def launch(self, step: PlanStep) -> None:
        self._done[step.id] = anyio.Event()
        self.tg.start_soon(self._run, step)

    async def _run(self, step: PlanStep) -> None:
        for dep in step.depends_on:
            if dep in self._done:
                await self._done[dep].wait()
        try:
            self.evidence[step.id] = await run_step(step, self.evidence, self.runner, self.ctx, self.llm_params)
        finally:
            self._done[step.id].set()
