"""Plan-then-execute vs ReAct on multi-hop tool tasks of the parallel shape.

Four arms over the same 30 tasks, the same tools and the same scripted
model (benchmarks/_plan_tasks.py: a deterministic oracle that answers the
planner, the solver and the ReAct prompts):

* ``react``: :class:`plait.ReAct`, one model call per tool call, tools one at a time;
* ``rewoo_sequential``: :class:`plait.PlanAndExecute` with ``parallel=False``;
* ``rewoo_parallel``: :class:`plait.PlanAndExecute`, the plan run as a DAG;
* ``rewoo_streaming``: the DAG with a streamed plan (steps start while the planner writes).

Tools sleep a fixed latency; each model call sleeps a fixed latency plus a
per-generated-token delay (``FunctionBackend(latency=, token_latency=)``), so
longer outputs (a whole plan) cost what they would on an engine. Tokens are
counted with a real model's tokenizer (``--tokenizer``, default SmolLM2's; ``words``
for plait's word/punctuation approximation, which counts JSON plans about 30%
high and prose about 20% low). Tasks run
one after another; ``wall_s`` is their total, ``task_med_s`` the median task.

    python benchmarks/plan_execute.py [--json out.json] [--tool-latency 0.1] [--repeat 3]

``--model NAME`` runs the same tasks on a real engine (``plait.executors.backend_for``: a
registry name such as ``qwen2.5-coder-0.5b``, a local folder, or an ``http://`` server URL);
tools still sleep their latency.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _plan_tasks import (  # noqa: E402
    KB,
    REACT_EXAMPLE,
    REWOO_EXAMPLE_JSON,
    REWOO_EXAMPLE_TEXT,
    Oracle,
    all_tasks,
)

from plait import FunctionBackend, Graph, PlanAndExecute, ReAct, RunError, tool  # noqa: E402
from plait.executors import hf_tokenizer  # noqa: E402

log = logging.getLogger("benchmarks.plan_execute")

ARMS = ("react", "rewoo_sequential", "rewoo_parallel", "rewoo_streaming")


def make_tools(latency: float) -> list:
    """The example's tools, each sleeping ``latency`` seconds like a remote call would."""

    @tool
    async def search(query: str) -> list[str]:
        """Names of the countries whose name, capital, continent or currency matches the query text."""
        await anyio.sleep(latency)
        return KB.search.fn(query)

    @tool
    async def lookup(country: str) -> KB.Country:
        """The record of one country: name, capital, population, area_km2, continent, currency."""
        await anyio.sleep(latency)
        return KB.lookup.fn(country)

    @tool
    async def calculator(expression: str) -> float:
        """Evaluate an arithmetic expression of numbers with + - * / ** and parentheses."""
        await anyio.sleep(latency)
        return KB.calculator.fn(expression)

    return [search, lookup, calculator]


def make_node(arm: str, tools: list, fmt: str):
    if arm == "react":
        return ReAct(tools, max_steps=24, examples=REACT_EXAMPLE)  # the widest task takes 17 tool calls
    example = REWOO_EXAMPLE_JSON if fmt == "json" else REWOO_EXAMPLE_TEXT
    return PlanAndExecute(tools, plan_format=fmt, parallel=arm != "rewoo_sequential", max_replans=0,
                          examples=example, stream=arm == "rewoo_streaming")


async def run_arm(arm: str, tasks: list, backend_factory, tools: list, fmt: str) -> dict[str, Any]:
    graph = Graph(arm)
    graph.add(make_node(arm, tools, fmt))
    totals = {"wall_s": 0.0, "llm_calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "correct": 0}
    per_task, by_width = [], {}
    for task in tasks:
        backend = backend_factory(fmt)
        start = time.perf_counter()
        try:
            result = await graph.run({"task": task.text}, backend=backend)
            answer = result.output.answer.strip()
        except RunError as exc:  # a real model may write no valid plan: counted as a wrong answer
            log.warning("%s failed on %r: %s", arm, task.text, exc)
            result, answer = exc.partial, None
        elapsed = time.perf_counter() - start
        per_task.append(elapsed)
        by_width[task.width] = by_width.get(task.width, 0.0) + elapsed
        totals["wall_s"] += elapsed
        totals["llm_calls"] += result.tokens.requests
        totals["prompt_tokens"] += result.tokens.prompt_tokens
        totals["completion_tokens"] += result.tokens.completion_tokens
        totals["correct"] += int(answer == task.gold)
    totals["task_wall_s_median"] = statistics.median(per_task)
    totals["wall_s_by_width"] = by_width
    return totals


async def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    tasks = all_tasks(args.width)[: args.tasks]
    tools = make_tools(args.tool_latency)
    if args.model:
        from plait import executors

        factory = getattr(executors, "backend_for", None)
        if factory is None:
            raise SystemExit("--model needs the vLLM backend (plait.executors.backend_for), not available here")
        backend_factory = lambda fmt: factory(args.model)  # noqa: E731
    else:
        oracles = {fmt: Oracle(tasks, fmt=fmt) for fmt in ("json", "text")}
        tokenizer = None if args.tokenizer == "words" else hf_tokenizer(args.tokenizer)
        backend_factory = lambda fmt: FunctionBackend(  # noqa: E731
            oracles[fmt], latency=args.call_latency, token_latency=args.token_latency, tokenizer=tokenizer)
    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
    async with contextlib.AsyncExitStack() as stack:
        if args.model:  # one engine for every arm and task
            engine = await stack.enter_async_context(backend_factory(args.format))
            backend_factory = lambda fmt: engine  # noqa: E731
        for _ in range(args.repeat):
            for arm in ARMS:
                runs[arm].append(await run_arm(arm, tasks, backend_factory, tools, args.format))
    report: dict[str, Any] = {}
    for arm, rs in runs.items():
        report[arm] = {k: statistics.median(r[k] for r in rs) for k in rs[0] if k != "wall_s_by_width"}
        report[arm]["wall_s_by_width"] = {w: statistics.median(r["wall_s_by_width"][w] for r in rs)
                                          for w in rs[0]["wall_s_by_width"]}
        report[arm]["tasks"] = len(tasks)
    react, par = report["react"], report["rewoo_parallel"]
    report["ratios"] = {
        "prompt_tokens_react_over_parallel": react["prompt_tokens"] / par["prompt_tokens"],
        "wall_s_react_over_parallel": react["wall_s"] / par["wall_s"],
        "wall_s_sequential_over_parallel": report["rewoo_sequential"]["wall_s"] / par["wall_s"],
        "wall_s_react_over_streaming": react["wall_s"] / report["rewoo_streaming"]["wall_s"],
        "wall_s_react_over_parallel_by_width": {w: react["wall_s_by_width"][w] / par["wall_s_by_width"][w]
                                                for w in par["wall_s_by_width"]},
    }
    report["settings"] = {"tasks": len(tasks), "repeat": args.repeat, "tool_latency_s": args.tool_latency,
                          "llm_call_latency_s": args.call_latency, "llm_token_latency_s": args.token_latency,
                          "plan_format": args.format, "width": args.width or "3-8", "model": args.model or "scripted oracle",
                          "tokenizer": "engine's" if args.model else args.tokenizer}
    return report


def table(report: dict[str, Any]) -> str:
    rows = [f"{'arm':<18} {'wall_s':>8} {'task_med_s':>10} {'llm_calls':>9} {'prompt_tok':>10} "
            f"{'compl_tok':>9} {'correct':>8}"]
    for arm in ARMS:
        r = report[arm]
        rows.append(f"{arm:<18} {r['wall_s']:>8.2f} {r['task_wall_s_median']:>10.3f} {r['llm_calls']:>9.0f} "
                    f"{r['prompt_tokens']:>10.0f} {r['completion_tokens']:>9.0f} "
                    f"{r['correct']:>4.0f}/{r['tasks']}")
    q = report["ratios"]
    rows.append(f"prompt tokens ReAct / parallel DAG: {q['prompt_tokens_react_over_parallel']:.2f}x; "
                f"wall time ReAct / parallel DAG: {q['wall_s_react_over_parallel']:.2f}x; "
                f"sequential / parallel: {q['wall_s_sequential_over_parallel']:.2f}x; "
                f"ReAct / streaming: {q['wall_s_react_over_streaming']:.2f}x")
    rows.append("wall time ReAct / parallel DAG by countries per task: " + ", ".join(
        f"{w}: {r:.2f}x" for w, r in sorted(q["wall_s_react_over_parallel_by_width"].items())))
    s = report["settings"]
    rows.append(f"({s['tasks']} tasks, median of {s['repeat']} run(s); tools sleep {s['tool_latency_s']}s; "
                f"model call {s['llm_call_latency_s']}s + {s['llm_token_latency_s']}s/token; "
                f"plan format {s['plan_format']}; countries per task {s['width']}; model: {s['model']}; "
                f"tokens counted by: {s['tokenizer']})")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--tasks", type=int, default=30, help="how many of the 30 tasks to run")
    parser.add_argument("--width", type=int, default=0,
                        help="countries per task (default 0: the fixed groups, one each of 3 to 8)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per arm; medians are reported")
    parser.add_argument("--tool-latency", type=float, default=0.1, help="seconds each tool call sleeps")
    parser.add_argument("--call-latency", type=float, default=0.05, help="seconds per model call")
    parser.add_argument("--token-latency", type=float, default=0.001, help="seconds per generated token")
    parser.add_argument("--format", choices=("json", "text"), default="json", help="plan format of the planner")
    parser.add_argument("--model", help="run on the real engine (needs the vLLM backend)")
    parser.add_argument("--tokenizer", default="smollm2-135m",
                        help="scripted runs: count tokens like this model (registry name, folder or tokenizer.json; "
                             "pulled with `plait models pull`), or 'words' for plait's approximation")
    args = parser.parse_args(argv)
    report = anyio.run(benchmark, args)
    print(table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
