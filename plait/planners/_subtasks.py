"""SubtaskTree: recursive decomposition with pruning of finished subtasks (Thread Inference Model style).

The model answers a task directly or splits it into subtasks. Each subtask is
solved recursively in its own context, which extends the parent's context
(so the shared prefix is served by the prefix cache); independent siblings
run in parallel. When a subtask finishes, the parent's context receives one
line, ``Result <path>: <conclusion>``; the subtask's thoughts and its own
subtasks are pruned (``prune=False`` keeps them, as a baseline). Prompts are
append-only text: every call's prompt starts with the byte-identical context
of the calls before it in the same branch::

    <system>Task: <task>\\nReply: <plan JSON>\\nSubtask 1: <text>\\nReply: ...      (child 1)
    <system>Task: <task>\\nReply: <plan JSON>\\nResult 1: <c1>\\nResult 2: ...\\nReply: (parent concludes)

Why siblings are not run as a runtime subgraph (as a plan's steps are, see
``_dag.py``): the tree is one node with one record and one token account, and
a subtask's failure must reach its parent as itself: a
:class:`~plait.SubtaskBudgetError` names the budget that owns it, which
decides whether the parent concludes or raises. A subgraph would give every
subtask a node record and checkpoint key of its own and wrap its failure in
``NodeFailedError``, while its scheduling (a child starts once the siblings it
``needs`` are done) is one event per child here.

``budget=`` bounds the whole tree (every call's prompt and reply, re-asks
included): calls run through one :class:`Spending`, each cut to what is left
(the reply schema shrinks with it). A subtask whose next call does not fit
concludes unfinished and its parent goes on; when the root's own call does not
fit, it answers with the conclusions it has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import anyio

from plait._deprecation import renamed_keyword
from plait.errors import BudgetExceededError, ConfigError, ParseError, SubtaskBudgetError
from plait.executors._base import Request, SamplingParams
from plait.executors._reask import ask_until_usable
from plait.executors._scripted import count_tokens
from plait.orchestrator._context import RunContext
from plait.orchestrator._events import SubtaskTreeSolved
from plait.orchestrator._node import Node
from plait.planners._asking import constrained, parsed, reask
from plait.planners._budget_split import Spending, check_budget, first_call_fits, within_budget
from plait.planners._subtask_model import ReplyParser, SubtreeBudget, TaskRecord, TaskReply, TreeResult, TreeStats

__all__ = ["SubtaskTree", "DEFAULT_SYSTEM"]

DEFAULT_SYSTEM = (
    "You solve tasks step by step. Reply to each task with one JSON object, either\n"
    '{{"thought": "<brief reasoning>", "answer": "<final answer>"}} when you can answer it directly, or\n'
    '{{"thought": "<brief reasoning>", "subtasks": [{{"task": "<self-contained subtask>", "needs": [<numbers of '
    'earlier subtasks whose results it uses>]}}]}} to split it into at most {max_breadth} subtasks.\n'
    "Split a task that asks several things or needs several steps; answer a simple one directly.\n"
    "Subtasks are solved separately; then you see one result line per subtask and reply with the answer object.\n"
    'Example: for the task "What is 2+3, and what is 4*5?" reply {{"thought": "Two separate questions.", '
    '"subtasks": [{{"task": "What is 2+3?"}}, {{"task": "What is 4*5?"}}]}}; after the result lines '
    '"Result 1: 5" and "Result 2: 20" reply {{"thought": "Both parts are known.", "answer": "2+3 = 5 and '
    '4*5 = 20"}}.\n\n'
)
TURN = "Reply: "


class SubtaskTree(Node):
    """Solve ``task`` by recursive decomposition, keeping only conclusions of finished subtasks.

    * ``max_depth``: deepest level that may still split (the root is depth 0;
      a task at ``max_depth`` must answer directly);
    * ``max_breadth``: most subtasks per split;
    * ``subtree_budget``: tokens (prompt + completion) each subtask's subtree
      may spend; once spent no further call is started in it, and
      ``on_budget`` decides: ``"raise"`` :class:`~plait.errors.SubtaskBudgetError`, or
      ``"conclude"`` (the subtask concludes as unfinished and the parent goes on);
    * ``budget``: tokens for the whole tree (see the module docstring);
    * ``sampling``: sampling options of every call (the reply schema is sent as
      a JSON-schema constraint when the backend supports it);
    * ``count_tokens``: tokenizer for the context figures (default: the
      backend's ``count_tokens`` if it has one, else plait's approximate count);
    * ``answer_only``: output the root answer (str) instead of the :class:`TreeResult`;
    * ``prune=False``: keep each finished subtask's whole work (its thoughts and
      subtasks) in the parent's context before its result line: the baseline
      pruning is measured against (its measured figures equal the pruned run's
      ``unpruned_*`` figures when the model replies the same).
    """

    def __init__(self, *, max_depth: int = 2, max_breadth: int = 4, subtree_budget: int | None = None,
                 on_budget: Literal["raise", "conclude"] = "raise", sampling: SamplingParams | None = None,
                 system: str | None = None, max_reasks: int = 1, count_tokens: Callable[[str], int] | None = None,
                 answer_only: bool = False, prune: bool = True, budget: int | None = None, name: str | None = None,
                 **policy: Any):
        if max_depth < 0 or max_breadth < 1:
            raise ConfigError(f"need max_depth >= 0 and max_breadth >= 1, got {max_depth} and {max_breadth}")
        if subtree_budget is not None and subtree_budget < 1:
            raise ConfigError(f"subtree_budget must be >= 1 token, got {subtree_budget}")
        if on_budget not in ("raise", "conclude"):
            raise ConfigError(f"on_budget must be 'raise' or 'conclude', got {on_budget!r}")
        self.max_depth, self.max_breadth = max_depth, max_breadth
        self.subtree_budget, self.on_budget = subtree_budget, on_budget
        sampling = renamed_keyword("SubtaskTree", policy, "params", "sampling", sampling)
        self.sampling = sampling or SamplingParams(max_tokens=256)
        self.system = (system if system is not None else DEFAULT_SYSTEM).format(max_breadth=max_breadth)
        self.max_reasks = max_reasks
        self.count_tokens = count_tokens
        self.answer_only = answer_only
        self.prune = prune
        super().__init__(name or "subtask_tree", **policy)
        self.budget = check_budget(f"SubtaskTree {self.name!r}", budget)
        if answer_only:
            self._signature = self.signature()._replace(output=str)

    async def run(self, task: str, ctx: RunContext) -> TreeResult:
        counter = self.count_tokens or getattr(ctx.backend, "count_tokens", None) or count_tokens
        base = f"{self.system}Task: {task}\n"
        first = Request(prompt=base + TURN, params=self.sampling)
        first_call_fits(f"SubtaskTree {self.name!r}", self.budget, ctx, first)
        solver = _TreeSolver(self, Spending(ctx, limit=self.budget), counter)
        root = TaskRecord(task=task)
        try:
            await solver.solve(root, base, 0, None)
        except BudgetExceededError as exc:
            if not solver.ctx.owns(exc):
                raise
            solver.unfinished(root, f"the tree's {self.budget}-token budget ran out")
            have = "; ".join(f"{t.path}: {t.conclusion}" for t in root.subtasks if t.status == "done")
            root.conclusion = f"[unfinished: the {self.budget}-token budget ran out]" + (f" {have}" if have else "")
        stats = solver.stats
        stats.tasks = sum(1 for _ in root.walk())
        stats.max_depth_reached = max(t.depth for t in root.walk())
        ctx.emit("subtask_tree", answer=root.conclusion, **stats.model_dump())
        ctx.emit(SubtaskTreeSolved, tree=root.model_dump(), stats=stats.model_dump())
        result = TreeResult(answer=root.conclusion or "", root=root, stats=stats)
        return result.answer if self.answer_only else result  # type: ignore[return-value]


class _TreeSolver:
    """One run of a SubtaskTree: the recursion, the calls, and the context accounting."""

    def __init__(self, node: SubtaskTree, ctx: Spending, counter: Callable[[str], int]):
        self.node, self.ctx, self.count = node, ctx, counter
        self.stats = TreeStats()
        self.parents: dict[int, TaskRecord] = {}

    async def solve(self, record: TaskRecord, base: str, hidden: int, budget: SubtreeBudget | None
                    ) -> tuple[str, int]:
        """Solve ``record`` in the context ``base``; return its final context text and the tokens it pruned.

        ``hidden`` is how many tokens the contexts above had already pruned
        (what an un-pruned run would additionally hold in ``base``).
        """
        node = self.node
        can_split = record.depth < node.max_depth
        why = f"this task is at the maximum depth ({node.max_depth})"
        limit = node.sampling.max_tokens
        parser = ReplyParser(allow_split=can_split, max_breadth=node.max_breadth, why_not=why, max_tokens=limit)
        reply, raw = await self.call(record, base, hidden, parser, budget)
        if reply.answer is not None:
            return self.conclude(record, reply, base + TURN + raw + "\n"), 0
        after_plan = base + TURN + raw + "\n"
        lines, pruned = await self.solve_children(record, reply, after_plan, hidden, budget)
        results = after_plan + "".join(lines)
        final_parser = ReplyParser(allow_split=False, max_breadth=node.max_breadth, max_tokens=limit,
                                   why_not="the subtasks are solved; now give the answer")
        final, raw = await self.call(record, results, hidden + pruned, final_parser, budget)
        return self.conclude(record, final, results + TURN + raw + "\n"), pruned

    def conclude(self, record: TaskRecord, reply: TaskReply, text: str) -> str:
        record.conclusion, record.status = reply.answer, "done"
        self.ctx.emit("subtask", path=record.path or "root", depth=record.depth, conclusion=reply.answer,
                      calls=record.calls, tokens=record.tokens)
        return text

    async def solve_children(self, record: TaskRecord, reply: TaskReply, after_plan: str, hidden: int,
                             budget: SubtreeBudget | None) -> tuple[list[str], int]:
        """Solve the subtasks (each as soon as those it needs are done); return result lines and pruned tokens."""
        n = len(reply.subtasks)
        prefix = f"{record.path}." if record.path else ""
        children = [TaskRecord(task=s.task, path=f"{prefix}{i}", depth=record.depth + 1, needs=s.needs)
                    for i, s in enumerate(reply.subtasks, start=1)]
        record.subtasks = children
        self.parents.update((id(child), record) for child in children)
        lines: list[str] = [""] * n
        pruned: list[int] = [0] * n
        done = [anyio.Event() for _ in range(n)]
        failure: list[BaseException] = []

        async def run_child(i: int, tg: anyio.abc.TaskGroup) -> None:
            child = children[i]
            try:
                for d in child.needs:
                    await done[d - 1].wait()
                deps = "".join(lines[d - 1] for d in child.needs)
                dep_hidden = sum(pruned[d - 1] for d in child.needs)
                header = f"Subtask {child.path}: {child.task}\n"
                child_base = after_plan + deps + header
                child_budget = budget
                if self.node.subtree_budget is not None:
                    child_budget = SubtreeBudget(child, self.node.subtree_budget, budget)
                final_text, grown = await self.solve_within_budget(child, child_base, hidden + dep_hidden,
                                                                    child_budget)
                work = header + final_text[len(child_base):]
                result_line = f"Result {child.path}: {child.conclusion}\n"
                if self.node.prune:
                    lines[i], pruned[i] = result_line, self.count(work) + grown
                else:  # the baseline: the parent keeps the subtask's whole work, then its result
                    lines[i], pruned[i] = work + result_line, 0
                done[i].set()
            except Exception as exc:  # keep the first error; anyio would wrap it in an ExceptionGroup
                failure.append(exc)
                tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(run_child, i, tg)
        if failure:
            raise failure[0]
        return lines, sum(pruned)

    async def solve_within_budget(self, child: TaskRecord, base: str, hidden: int,
                                  budget: SubtreeBudget | None) -> tuple[str, int]:
        try:
            return await self.solve(child, base, hidden, budget)
        except SubtaskBudgetError as exc:
            if self.node.on_budget != "conclude" or exc.owner is not budget:
                raise
            self.unfinished(child, f"the subtask's {exc.budget}-token budget ran out")
            return base, 0
        except BudgetExceededError as exc:  # the tree's budget: this subtask ends, its parent goes on
            if not self.ctx.owns(exc):
                raise
            self.unfinished(child, f"the tree's {self.node.budget}-token budget ran out")
            return base, 0

    def unfinished(self, task: TaskRecord, why: str) -> None:
        """Mark ``task`` concluded unfinished (``why``) and its subtasks still running abandoned."""
        for below in task.walk():
            if below.status == "running":
                below.status = "abandoned"
        task.status = "budget_exhausted"
        task.conclusion = f"[unfinished: {why}]"
        self.ctx.emit("subtask", path=task.path or "root", depth=task.depth, conclusion=None, status=task.status,
                      calls=task.calls, tokens=task.tokens)

    async def call(self, record: TaskRecord, context: str, hidden: int, parser: ReplyParser,
                   budget: SubtreeBudget | None) -> tuple[TaskReply, str]:
        """One model turn on ``context`` (re-asked on a bad reply); updates the record and the figures."""
        params = constrained(self.node.sampling, parser, self.ctx.backend)
        cut = within_budget(self.ctx, f"SubtaskTree {self.node.name!r}")  # the tree's budget

        def before(request: Request) -> Request:
            nonlocal parser
            left = cut(request).params.max_tokens if cut is not None else request.params.max_tokens
            if budget is not None:
                budget.check()
                left = min(left, budget.left())
            if left < request.params.max_tokens:  # the reply schema shrinks too, so a reply still fits
                parser = parser.within(max(left, 1))
                clipped = self.node.sampling.model_copy(update={"max_tokens": max(left, 1)})
                request = request.model_copy(update={"params": constrained(clipped, parser, self.ctx.backend)})
            self.ctx.check_budget()
            return request

        def judge(request: Request, completion: Any, call: int) -> tuple[Any, ParseError | None]:
            self.account(record, request, completion.text, completion, hidden, budget)
            return parsed(parser, completion.text)

        reply = await ask_until_usable(self.ctx, Request(prompt=context + TURN, params=params), judge,
                                       rounds=self.node.max_reasks + 1, before=before,
                                       follow_up=lambda request, raw, exc: reask(request, raw, exc, parser, TURN))
        if reply.problem is not None and cut is not None:  # cut short by the tree's budget: it ends as if spent
            cut.raise_if_cut()
        if reply.problem is not None:
            raise ParseError(f"subtask {record.path or 'root'!r} ({record.task!r}): no usable reply after "
                             f"{reply.calls} attempt(s): {reply.problem}", raw=reply.raw)
        record.thoughts.append(reply.value.thought)
        return reply.value, reply.raw

    def account(self, record: TaskRecord, request: Request, raw: str, completion: Any, hidden: int,
                budget: SubtreeBudget | None) -> None:
        stats = self.stats
        prompt = self.count(request.prompt_text())
        context = prompt + self.count(raw)
        stats.calls += 1
        stats.context_prompt_tokens += prompt
        stats.unpruned_prompt_tokens += prompt + hidden
        stats.peak_context_tokens = max(stats.peak_context_tokens, context)
        stats.unpruned_peak_context_tokens = max(stats.unpruned_peak_context_tokens, context + hidden)
        stats.prompt_tokens += completion.prompt_tokens
        stats.cached_tokens += completion.cached_tokens
        stats.completion_tokens += completion.completion_tokens
        record.calls += 1
        task: TaskRecord | None = record
        while task is not None:
            task.tokens += completion.total_tokens
            task = self.parents.get(id(task))
        if budget is not None:
            budget.charge(completion.total_tokens)
