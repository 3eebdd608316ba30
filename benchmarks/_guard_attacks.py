"""Hostile-model attacks for ``benchmarks/guards.py``: what a looping or malicious model writes.

Each attack returns ``(held, detail)`` or ``(held, detail, allowed_leftover_threads)``. "Held" means the
specific guard of issue 19 fired (the expected plait error or status) and the attack's limits were kept; any
other ending (a wrong result, a raw exception, a limit overrun) is "failed", with the reason in ``detail``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from typing import Any

import anyio

from plait import (
    BudgetExceededError,
    CSP,
    FunctionBackend,
    Graph,
    JsonSchema,
    NodeTimeoutError,
    PlaitError,
    PlanAndExecute,
    Request,
    RetryPolicy,
    RunContext,
    SamplingParams,
    SolveCSP,
    tool,
)
from plait.executors import Sample, ToolRegistry
from plait.errors import PlanError
from plait.executors import ToolRunner
from plait.planners import ReAct, SubtaskTree
from plait.solvers import Formulate

from _looping_model import LoopingModel

CANARY = "PLAIT_GUARD_CANARY"


def _run(graph: Graph, value: Any, **options: Any) -> Any:
    """The run's result, or the exception it ended with (returned, not raised)."""
    try:
        return anyio.run(lambda: graph.run(value, **options))
    except Exception as exc:  # noqa: BLE001 - the attack judges what came out
        return exc


def _chain(exc: BaseException | None) -> list[BaseException]:
    """``exc``, its causes and contexts, and the members of exception groups among them."""
    seen: list[BaseException] = []
    todo = [exc] if exc is not None else []
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [e.__cause__, e.__context__, getattr(e, "cause", None), *getattr(e, "exceptions", ())]
    return seen


def _has(outcome: Any, kind: type[BaseException]) -> bool:
    return isinstance(outcome, BaseException) and any(isinstance(e, kind) for e in _chain(outcome))


def _describe(outcome: Any) -> str:
    if isinstance(outcome, BaseException):
        return f"{type(outcome).__name__}: {str(outcome).splitlines()[0][:120] if str(outcome) else ''}"
    return f"result {type(getattr(outcome, 'output', outcome)).__name__}"


# --- plans -------------------------------------------------------------------------------------------


def _plan_attack(plan: dict[str, Any], tools: list[Any], **node: Any) -> tuple[Any, list[str]]:
    """Run PlanAndExecute against a planner that always writes ``plan``; the outcome and the planner prompts.

    The plan comes back whole, however long (a server that ignores ``max_tokens``, or a large one)."""
    prompts: list[str] = []
    text = json.dumps(plan)

    def model(request: Request) -> Any:
        if isinstance(request.params.constraint, JsonSchema):
            prompts.append(request.prompt_text())
            return Sample(text=text, finish_reason="stop", completion_tokens=len(text) // 4)
        return "Answer: done"

    graph = Graph("guard_plan")
    graph.add(PlanAndExecute(tools, max_replans=0, max_repairs=2, **node))
    return _run(graph, {"task": "attack"}, backend=FunctionBackend(model)), prompts


def cyclic_plan() -> tuple[bool, str]:
    """11 steps that all reference each other (about 1 KB): checking must be linear, repair prompts capped."""
    calls = Counter()

    @tool
    def lookup(q: str) -> str:
        """Look something up."""
        calls["lookup"] += 1
        return q

    steps = [{"tool": "lookup", "args": {"q": " ".join(f"#E{j}" for j in range(1, 12) if j != i)}}
             for i in range(1, 12)]
    start = time.perf_counter()
    outcome, prompts = _plan_attack({"steps": steps}, [lookup])
    elapsed = time.perf_counter() - start
    longest = max(map(len, prompts), default=0)
    held = _has(outcome, PlanError) and calls["lookup"] == 0 and longest <= 64_000 and elapsed < 5
    return held, (f"{_describe(outcome)}; {len(prompts)} planner call(s), longest prompt {longest:,} chars, "
                  f"{calls['lookup']} tool call(s), {elapsed:.2f}s")


class Info:
    """A tool result whose ``__init__`` lives in this module: its ``__globals__`` reach ``os.environ``."""

    def __init__(self, country: str):
        self.country = country


def dunder_reference() -> tuple[bool, str]:
    """``#E1.__class__.__init__.__globals__.os.environ...``: a reference must reach declared fields only."""
    os.environ[CANARY] = "s3cret-canary-value"
    seen: list[str] = []

    @tool
    def lookup(country: str) -> Info:
        """Facts about a country."""
        return Info(country)

    @tool
    def search(query: str) -> str:
        """Search the web."""
        seen.append(query)
        return "nothing found"

    ref = f"#E1.__class__.__init__.__globals__.os.environ.{CANARY}"
    plan = {"steps": [{"tool": "lookup", "args": {"country": "France"}},
                      {"tool": "search", "args": {"query": f"population of {ref}"}}]}
    outcome, prompts = _plan_attack(plan, [lookup, search])
    leaked = any("s3cret-canary-value" in q for q in seen)
    reported = len(prompts) >= 2 or _has(outcome, PlanError)
    return not leaked and reported, (f"{_describe(outcome)}; secret {'LEAKED to a tool' if leaked else 'kept'}; "
                                     f"{len(prompts)} planner call(s)")


def huge_plan() -> tuple[bool, str]:
    """A 1 MB plan of 20,000 steps: a plan has a maximum length, and an overlong one runs nothing."""
    calls = Counter()

    @tool
    def noop(x: int = 0) -> int:
        """Do nothing."""
        calls["noop"] += 1
        return x

    plan = {"steps": [{"tool": "noop", "args": {"x": i}} for i in range(20_000)]}
    outcome, prompts = _plan_attack(plan, [noop])
    refused = _has(outcome, PlanError) or len(prompts) >= 2
    return refused and calls["noop"] == 0, (f"{_describe(outcome)}; {calls['noop']:,} tool call(s), "
                                            f"{len(prompts)} planner call(s)")


# --- solvers -----------------------------------------------------------------------------------------

OFFSET_CSP = {"variables": [{"name": "A", "domain": {"min": 0, "max": 99999}},
                            {"name": "B", "domain": {"min": 0, "max": 99999}}],
              "constraints": ["A == B + 100000"]}


def _solve(csp: dict[str, Any], time_limit: float) -> tuple[Any, float]:
    graph = Graph("guard_csp")
    graph.add(SolveCSP(time_limit=time_limit))
    start = time.perf_counter()
    try:
        value = {"csp": CSP.model_validate(csp)}
    except Exception as exc:  # noqa: BLE001 - a model refused when built is a clear outcome too
        return exc, time.perf_counter() - start
    outcome = _run(graph, value)
    return outcome, time.perf_counter() - start


def _status(outcome: Any) -> str:
    if isinstance(outcome, BaseException):
        return "invalid" if "validation" in type(outcome).__name__.lower() else type(outcome).__name__
    return getattr(outcome.output, "status", "?")


def csp_offset_timeout() -> tuple[bool, str]:
    """``A == B + 100000`` over 0..99999 with time_limit=1: every assignment fails, the clock must still stop it."""
    outcome, elapsed = _solve(OFFSET_CSP, 1.0)
    status = _status(outcome)
    return status in ("timeout", "unsat") and elapsed <= 2.0, f"status {status} after {elapsed:.2f}s (limit 1s)"


def formulate_timeout() -> tuple[bool, str]:
    """The same CSP as a model's 153-byte-style reply to Formulate(time_limit=1): it must end near the limit."""
    text = json.dumps(OFFSET_CSP, separators=(",", ":"))
    graph = Graph("guard_formulate")
    graph.add(Formulate(time_limit=1.0, max_rounds=1, syntax="json"))
    start = time.perf_counter()
    outcome = _run(graph, {"problem": "attack"}, backend=FunctionBackend(lambda request: text))
    elapsed = time.perf_counter() - start
    status = _status(outcome)
    held = status in ("timeout", "unsat", "invalid") and elapsed <= 3.0
    return held, f"{len(text)}-byte CSP: status {status} after {elapsed:.2f}s (limit 1s)"


def csp_huge_value() -> tuple[bool, str]:
    """4,000-digit domain values: sizes have documented limits and a clear ``invalid``."""
    big = 10 ** 3999
    csp = {"variables": [{"name": n, "domain": [big + i for i in range(60)]} for n in ("A", "B", "C")],
           "constraints": ["A * B * C % 7 == 3", "A * A - B * C != C"]}
    outcome, elapsed = _solve(csp, 2.0)
    status = _status(outcome)
    return status == "invalid" and elapsed <= 2.0, f"status {status} after {elapsed:.2f}s"


def csp_many_constraints() -> tuple[bool, str]:
    """20,000 constraints with time_limit=2: a clear outcome (``invalid`` past a size limit, or a result)
    within about the limit (+0.5 s; it took 11.9 s)."""
    names = [f"V{i}" for i in range(40)]
    constraints = [f"{names[i % 40]} + {names[(i * 7 + 1) % 40]} != {i % 19}" for i in range(20_000)]
    csp = {"variables": [{"name": n, "domain": {"min": 0, "max": 9}} for n in names], "constraints": constraints}
    outcome, elapsed = _solve(csp, 2.0)
    status = _status(outcome)
    held = status in ("invalid", "timeout", "sat", "unsat") and elapsed <= 2.5
    return held, f"status {status} after {elapsed:.2f}s (limit 2s)"


# --- budgets, timeouts, threads ---------------------------------------------------------------------


class _Metered(FunctionBackend):
    """Counts the requests sent and the tokens they spent."""

    def __init__(self, handler: Any):
        super().__init__(handler, latency=0.05)
        self.sent = 0
        self.spent = 0

    async def generate(self, requests: list[Request]) -> list[Any]:
        self.sent += len(requests)
        completions = await super().generate(requests)
        self.spent += sum(c.total_tokens for c in completions)
        return completions


def token_budget_map() -> tuple[bool, str]:
    """token_budget=10 over a 200-wide map of model calls: reserve before sending, never overspend."""
    graph = Graph("guard_budget")

    @graph.node
    def items(n: int) -> list[int]:
        return list(range(n))

    @graph.node
    async def ask(item: int, ctx: RunContext) -> str:
        reply = await ctx.generate(Request(prompt=f"item {item}", params=SamplingParams(max_tokens=8)))
        return reply.text

    graph.map(items, ask, param="item")
    backend = _Metered(lambda request: " ".join(f"w{i}" for i in range(20)))  # 50 ms each: all 200 overlap
    outcome = _run(graph, 200, backend=backend, token_budget=10)
    held = _has(outcome, BudgetExceededError) and backend.spent <= 10
    return held, f"{_describe(outcome)}; {backend.sent} request(s) sent, {backend.spent} tokens spent (budget 10)"


def _node_timeout(blocking: bool | None) -> tuple[bool, str, int]:
    graph = Graph("guard_timeout")

    def slow(x: int) -> int:
        time.sleep(2.0)
        return x

    graph.add(slow, timeout=0.2, **({} if blocking is None else {"blocking": blocking}))
    start = time.perf_counter()
    outcome = _run(graph, 1)
    elapsed = time.perf_counter() - start
    held = _has(outcome, NodeTimeoutError) and elapsed <= 1.0
    return held, f"{_describe(outcome)} after {elapsed:.2f}s (timeout 0.2s, the node sleeps 2s)", 1


def sync_node_timeout() -> tuple[bool, str, int]:
    """A plain sync node that sleeps 2 s under timeout=0.2: it must fail at its timeout."""
    return _node_timeout(blocking=None)  # a plain sync node (runs in a worker thread by default)


def blocking_node_timeout() -> tuple[bool, str, int]:
    """The same with blocking=True (a worker thread): the run must not wait for the thread."""
    return _node_timeout(blocking=True)


def hung_tool_retries() -> tuple[bool, str, int]:
    """10 calls of a sync tool that hangs 3 s, timeout=0.2, 3 attempts: each fails with a timeout, retries
    never overlap the attempt they replace, at most one abandoned thread per call is left."""
    running: Counter = Counter()
    overlap: Counter = Counter()
    lock = threading.Lock()

    @tool(timeout=0.2, retry=RetryPolicy(attempts=3, backoff=0.01, jitter=0.0))
    def hang(key: int) -> int:
        """Hangs."""
        with lock:
            running[key] += 1
            overlap[key] = max(overlap[key], running[key])
        try:
            time.sleep(3.0)
        finally:
            with lock:
                running[key] -= 1
        return key

    async def main() -> list[Any]:
        runner = ToolRunner(ToolRegistry.of([hang]))
        results: list[Any] = [None] * 10

        async def one(i: int) -> None:
            results[i] = await runner.call("hang", {"key": i})

        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(one, i)
        return results

    results = anyio.run(main)
    timed_out = sum("timed out" in str(r).lower() or "timeout" in str(r).lower() for r in results)
    worst = max(overlap.values(), default=0)
    held = timed_out == 10 and worst <= 1
    return held, f"{timed_out}/10 calls failed with a timeout; up to {worst} attempt(s) of one call at once", 10


def react_newlines() -> tuple[bool, str]:
    """A ReAct reply of 40,000 newlines: parsing it must be linear (it was 4.4 s on the event loop)."""
    @tool
    def noop(x: str) -> str:
        """Do nothing."""
        return x

    graph = Graph("guard_react")
    graph.add(ReAct([noop], max_steps=1))
    start = time.perf_counter()
    reply = Sample(text="\n" * 40_000 + "x", finish_reason="stop", completion_tokens=40_001)
    outcome = _run(graph, {"task": "attack"}, backend=FunctionBackend(lambda request: reply))
    elapsed = time.perf_counter() - start
    clear = not isinstance(outcome, BaseException) or isinstance(outcome, PlaitError)
    return clear and elapsed <= 1.0, f"{_describe(outcome)} after {elapsed:.2f}s"


def looping_json() -> tuple[bool, str]:
    """A model that loops inside JSON (``"value": 27000…``) wherever the schema lets it: every schema the
    library sends must stop the loop before ``max_tokens`` (Formulate, SubtaskTree, PlanAndExecute)."""
    @tool
    def noop(x: int) -> int:
        """Do nothing."""
        return x

    nodes = {"formulate": (Formulate(max_rounds=1, syntax="json"), {"problem": "attack"}),
             "subtasks": (SubtaskTree(max_depth=1, max_reasks=0), {"task": "attack"}),
             "plan": (PlanAndExecute([noop], max_replans=0, max_repairs=0), {"task": "attack"})}
    cut: list[str] = []
    ends: list[str] = []
    for label, (node, value) in nodes.items():
        model = LoopingModel()
        graph = Graph(f"guard_loop_{label}")
        graph.add(node)
        outcome = _run(graph, value, backend=FunctionBackend(model))
        cut += [f"{label}: {c}" for c in model.cut]
        ends.append(f"{label}: {_describe(outcome)}")
    detail = (f"{len(cut)} reply(ies) looped to max_tokens ({'; '.join(cut)[:160]})" if cut
              else "every JSON reply ended before max_tokens") + f"; {', '.join(ends)}"
    return not cut, detail


ATTACKS = {
    "cyclic_plan": cyclic_plan,
    "dunder_reference": dunder_reference,
    "huge_plan": huge_plan,
    "csp_offset_timeout": csp_offset_timeout,
    "formulate_timeout": formulate_timeout,
    "csp_huge_value": csp_huge_value,
    "csp_many_constraints": csp_many_constraints,
    "token_budget_map": token_budget_map,
    "sync_node_timeout": sync_node_timeout,
    "blocking_node_timeout": blocking_node_timeout,
    "hung_tool_retries": hung_tool_retries,
    "react_newlines": react_newlines,
    "looping_json": looping_json,
}
