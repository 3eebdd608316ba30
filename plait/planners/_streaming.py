"""Streaming plans: steps start while the planner is still writing later ones (LLMCompiler style).

With a backend that streams (``Backend.supports_streaming``),
:class:`StreamedPlanReader` reads the planner's output as it arrives: line by
line for the ReWOO text format, object by object for JSON plans (each step
object inside the ``steps`` array is read as soon as its closing brace
arrives). Each complete step is checked together with the steps before it;
while that prefix is valid the step is handed to :class:`StreamingExecutor`,
which starts it as soon as the steps it references are done. At the first
problem, launching stops: the steps already started finish and keep their
evidence, and the planner is asked again for the rest (see
``PlanAndExecute``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.abc
from pydantic import ValidationError

from plait.executors._base import SamplingParams
from plait.executors._tool_runner import ToolRunner
from plait.executors._tools import ToolRegistry
from plait.orchestrator._context import RunContext
from plait.planners._dag import run_step
from plait.planners._plan import Plan, PlanStep
from plait.planners._plan_check import MAX_STEPS, next_step_number, plan_problems
from plait.planners._plan_parse import MAX_PLAN_CHARS, load_json, number_step, read_plan_line
from plait.planners._refs import clip

__all__ = ["StreamedPlanReader", "StreamingExecutor"]


class _JsonStepScanner:
    """Finds complete step objects in a streamed JSON plan: the objects directly inside its first array.

    Each character is looked at once, and only the text of the step being read is kept.
    """

    def __init__(self) -> None:
        self._depth = 0  # open containers
        self._steps_depth: int | None = None  # depth of the steps array once seen
        self._step: list[str] | None = None  # chunks of the step object being read
        self._in_string = self._escape = False

    def feed(self, chunk: str) -> list[str]:
        """Read ``chunk``; return the text of every step object completed by it."""
        done = []
        start = 0
        for i, ch in enumerate(chunk):
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif ch == "\\":
                    self._escape = True
                elif ch == '"':
                    self._in_string = False
            elif ch == '"':
                self._in_string = True
            elif ch in "{[":
                if ch == "[" and self._steps_depth is None:
                    self._steps_depth = self._depth + 1
                self._depth += 1
                if ch == "{" and self._depth - 1 == self._steps_depth:
                    self._step, start = [], i
            elif ch in "}]" and self._depth:
                self._depth -= 1
                if ch == "}" and self._depth == self._steps_depth and self._step is not None:
                    done.append("".join([*self._step, chunk[start: i + 1]]))
                    self._step = None
        if self._step is not None:
            self._step.append(chunk[start:])
        return done


class StreamedPlanReader:
    """Turns a streamed plan (text lines or JSON) into steps, handing each on while the plan so far is valid.

    Reading stops at the first problem, at more than ``max_steps`` steps and
    after :data:`~plait.planners._plan_parse.MAX_PLAN_CHARS` characters: what
    the model writes after that point is not looked at.
    """

    def __init__(self, tools: ToolRegistry, known: Mapping[str, str], on_step: Callable[[PlanStep], None],
                 fmt: str = "text", max_steps: int = MAX_STEPS):
        """``known``: evidence ids of earlier rounds, each mapped to the tool that produced it ("" if unknown)."""
        self.tools, self.known, self.on_step, self.fmt = tools, dict(known), on_step, fmt
        self.max_steps = max_steps
        self.launched: list[PlanStep] = []
        self.problems: list[str] = []
        self._line_parts: list[str] = []
        self._chars = 0
        self._thought: list[str] = []
        self._json = _JsonStepScanner()
        self._json_steps = 0  # JSON steps read so far: an unnumbered step takes the next position's id
        self._first = next_step_number(known)

    @property
    def plan(self) -> Plan:
        """The steps handed on so far."""
        return Plan(steps=list(self.launched))

    def feed(self, chunk: str) -> None:
        if self.problems:
            return
        self._chars += len(chunk)
        if self._chars > MAX_PLAN_CHARS:
            self._fail([f"the plan is longer than {MAX_PLAN_CHARS} characters; write a shorter plan"])
            return
        if self.fmt == "json":
            for obj in self._json.feed(chunk):
                self._json_step(obj)
            return
        *complete, rest = chunk.split("\n")
        for part in complete:
            self._line_parts.append(part)
            self._line("".join(self._line_parts))
            self._line_parts = []
        if rest:
            self._line_parts.append(rest)

    def close(self) -> None:
        if self._line_parts and not self.problems:
            self._line("".join(self._line_parts))
        self._line_parts = []

    def _json_step(self, text: str) -> None:
        try:
            self._json_steps += 1
            step = PlanStep.model_validate(number_step(load_json(text), self._first + self._json_steps - 1))
        except (ValueError, ValidationError) as exc:
            self._fail([f"a step could not be read ({clip(str(exc).splitlines()[0], 120)}): {clip(text, 120)}"])
            return
        self._take(step)

    def _line(self, line: str) -> None:
        read = read_plan_line(line, self.tools)
        if read is None:
            return
        if read[0] == "thought":
            self._thought.append(read[1])
            return
        step = PlanStep.model_validate({**read[1], "thought": " ".join(self._thought)})
        self._thought = []
        self._take(step)

    def _take(self, step: PlanStep) -> None:
        if self.problems:
            return  # the plan already went wrong: nothing after that point runs
        problems = plan_problems(Plan(steps=[*self.launched, step]), self.tools, self.known,
                                 max_steps=self.max_steps)
        if problems:
            self._fail(problems)
            return
        self.launched.append(step)
        self.on_step(step)

    def _fail(self, problems: list[str]) -> None:
        if not self.problems:
            self.problems = problems


class StreamingExecutor:
    """Starts steps as they are handed over; each waits only for the steps it references."""

    def __init__(self, runner: ToolRunner, ctx: RunContext, tg: anyio.abc.TaskGroup, *,
                 evidence: Mapping[str, Any] | None = None, llm_sampling: SamplingParams = SamplingParams()):
        self.runner, self.ctx, self.tg, self.llm_sampling = runner, ctx, tg, llm_sampling
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
            self.evidence[step.id] = await run_step(step, self.evidence, self.runner, self.ctx, self.llm_sampling)
        finally:
            self._done[step.id].set()
