"""Data of a subtask tree: the model's reply format, task records, run statistics, budgets."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from plait.errors import SubtaskBudgetError
from plait.executors._base import Constraint, JsonSchema
from plait.planners._parsers import Parser, _json_object

__all__ = ["SubtaskSpec", "TaskReply", "TaskRecord", "TreeStats", "TreeResult", "ReplyParser", "SubtreeBudget",
           "reply_string_bounds"]


class SubtaskSpec(BaseModel):
    """A subtask the model asked for. ``needs``: 1-based numbers of earlier siblings whose conclusions it uses."""

    task: str = Field(min_length=1)
    needs: list[int] = []


class TaskReply(BaseModel):
    """One model turn on a task: a thought plus either an answer or subtasks."""

    thought: str = ""
    answer: str | None = None
    subtasks: list[SubtaskSpec] = []


class TaskRecord(BaseModel):
    """A solved (or unfinished) task: what the model thought, its subtasks, and its conclusion."""

    task: str
    path: str = ""  # "" for the root, "2.1" for the first subtask of the second subtask
    depth: int = 0
    needs: list[int] = []
    thoughts: list[str] = []
    subtasks: list[TaskRecord] = []
    conclusion: str | None = None
    status: Literal["running", "done", "budget_exhausted", "abandoned"] = "running"
    calls: int = 0
    tokens: int = 0  # prompt + completion tokens spent on this task and its subtree (re-asks included)

    def walk(self):
        """This task and every descendant, depth first."""
        yield self
        for sub in self.subtasks:
            yield from sub.walk()


class TreeStats(BaseModel):
    """Context and cache figures of one tree run, pruned (as run) and as an un-pruned run would have needed.

    ``*_context_*`` and ``unpruned_*`` figures are counted with the same
    tokenizer on the prompt text, so they compare like with like; the
    un-pruned figures add every finished subtask's full work (thoughts and
    its own subtasks) to the contexts that received only its result line.
    ``prompt_tokens``/``cached_tokens`` are what the backend reported.
    """

    calls: int = 0
    tasks: int = 0
    max_depth_reached: int = 0
    peak_context_tokens: int = 0
    unpruned_peak_context_tokens: int = 0
    context_prompt_tokens: int = 0
    unpruned_prompt_tokens: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0

    @property
    def cache_hit_rate(self) -> float:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    @property
    def peak_reduction(self) -> float:
        """Share of the un-pruned peak context that pruning saved."""
        peak = self.unpruned_peak_context_tokens
        return 1 - self.peak_context_tokens / peak if peak else 0.0


class TreeResult(BaseModel):
    """The output of a SubtaskTree: the root's answer, the task tree, and the run's figures."""

    answer: str
    root: TaskRecord
    stats: TreeStats


def _answer_schema(thought_chars: int, answer_chars: int) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["thought", "answer"],
            "properties": {"thought": {"type": "string", "maxLength": thought_chars},
                           "answer": {"type": "string", "maxLength": answer_chars}}}


def _split_schema(max_breadth: int, thought_chars: int, task_chars: int) -> dict[str, Any]:
    def item(i: int) -> dict[str, Any]:  # subtask i (1-based) may need only earlier siblings: 1..i-1
        needs = {"type": "array", "maxItems": i - 1, "items": {"type": "integer", "minimum": 1, "maximum": i - 1}}
        return {"type": "object", "additionalProperties": False, "required": ["task"],
                "properties": {"task": {"type": "string", "minLength": 1, "maxLength": task_chars},
                               "needs": needs if i > 1 else {"type": "array", "maxItems": 0}}}

    subtasks = {"type": "array", "prefixItems": [item(i) for i in range(1, max_breadth + 1)], "items": False,
                "minItems": 1, "maxItems": max_breadth}
    return {"type": "object", "additionalProperties": False, "required": ["thought", "subtasks"],
            "properties": {"thought": {"type": "string", "maxLength": thought_chars}, "subtasks": subtasks}}


def reply_string_bounds(max_tokens: int) -> tuple[int, int, int]:
    """Longest ``thought``, ``answer`` and subtask ``task``, in characters, for replies of ``max_tokens``.

    A character costs at most about one token in the loops seen (smollm2-135m
    repeating ``12*2 = ``), so a model looping in the thought, and then in the
    answer too, is stopped by the schema with a fifth of the budget left.
    """
    return max(16, max_tokens * 2 // 5), max(16, max_tokens * 2 // 5), max(16, max_tokens // 4)


class ReplyParser(Parser[TaskReply]):
    """Parses a :class:`TaskReply` and enforces the tree's limits (so violations are re-asked)."""

    output_type = TaskReply

    def __init__(self, *, allow_split: bool, max_breadth: int, why_not: str = "", max_tokens: int = 256):
        super().__init__(constrain=True)
        self.allow_split, self.max_breadth, self.why_not = allow_split, max_breadth, why_not
        self.thought_chars, self.answer_chars, self.task_chars = reply_string_bounds(max_tokens)

    def within(self, max_tokens: int) -> ReplyParser:
        """The same parser for replies of at most ``max_tokens`` (a spent budget shrinks a call's limit)."""
        return ReplyParser(allow_split=self.allow_split, max_breadth=self.max_breadth, why_not=self.why_not,
                           max_tokens=max_tokens)

    def parse(self, text: str) -> TaskReply:
        blob = _json_object(text)
        if blob is None:
            raise self._fail("the reply contains no JSON object", text)
        try:
            reply = TaskReply.model_validate_json(blob)
        except ValidationError as exc:
            raise self._fail(f"the JSON does not fit the reply format ({exc.errors()[0]['msg']})", text) from None
        if reply.subtasks and reply.answer is not None:
            raise self._fail('give either "answer" or "subtasks", not both', text)
        if not reply.subtasks and reply.answer is None:
            raise self._fail('give "answer" (or "subtasks")', text)
        if reply.subtasks and not self.allow_split:
            raise self._fail(f"{self.why_not or 'subtasks are not allowed here'}; answer directly", text)
        if len(reply.subtasks) > self.max_breadth:
            raise self._fail(f"at most {self.max_breadth} subtasks are allowed, got {len(reply.subtasks)}", text)
        for i, sub in enumerate(reply.subtasks, start=1):
            bad = [n for n in sub.needs if not 1 <= n < i]
            if bad:
                raise self._fail(f"subtask {i} needs {bad}, but it may only need earlier subtasks (1..{i - 1})",
                                 text)
        return reply

    def constraint(self) -> JsonSchema:
        """The reply schema, every string, list and number bounded (see :func:`reply_string_bounds`)."""
        answer = _answer_schema(self.thought_chars, self.answer_chars)
        if not self.allow_split:
            return JsonSchema(schema=answer)
        split = _split_schema(self.max_breadth, self.thought_chars, self.task_chars)
        return JsonSchema(schema={"anyOf": [answer, split]})

    def instructions(self) -> str:
        return f"Reply with one JSON object matching: {json.dumps(self.constraint().schema_)}"


class SubtreeBudget:
    """Tokens a subtree may spend; charges propagate to the enclosing subtrees' budgets."""

    def __init__(self, task: TaskRecord, limit: int, parent: SubtreeBudget | None):
        self.task, self.limit, self.parent, self.used = task, limit, parent, 0

    def charge(self, tokens: int) -> None:
        budget: SubtreeBudget | None = self
        while budget is not None:
            budget.used += tokens
            budget = budget.parent

    def check(self) -> None:
        """Raise SubtaskBudgetError (``owner`` set to the spent budget) if this or an enclosing budget is spent."""
        budget: SubtreeBudget | None = self
        while budget is not None:
            if budget.used >= budget.limit:
                raise SubtaskBudgetError(budget.task.task, budget.used, budget.limit, partial=budget.task,
                                         owner=budget)
            budget = budget.parent

    def left(self) -> int:
        budget: SubtreeBudget | None = self
        left = self.limit - self.used
        while budget is not None:
            left = min(left, budget.limit - budget.used)
            budget = budget.parent
        return left
