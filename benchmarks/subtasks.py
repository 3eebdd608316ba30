"""Subtask trees: peak context with and without pruning, and prefix-cache hit rate.

Scripted run: a depth-3, branching-3 decomposition (1 + 3 + 9 + 27 tasks,
53 model calls) where every reply carries a thought of ``--thought-words``
words, leaves answer a number and each parent sums its children's results.
The same script runs twice: pruned (the parent keeps only result lines) and
``prune=False`` (the parent keeps each subtask's whole work). The final
answers must match, and must equal the sum of the leaves.

Real-model run (``--model NAME``, needs plait's vLLM backend): a few
multi-part questions, pruned vs un-pruned, greedy; the answers may differ
(the conclude calls see different contexts), the figures are what counts.

    python benchmarks/subtasks.py [--json out.json] [--model qwen2.5-coder-0.5b]
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from typing import Any

import anyio

from plait import Graph, Request, SamplingParams, ScriptedBackend
from plait.planners import SubtaskTree, TreeResult, tree_call_key

DEPTH, BRANCHING = 3, 3


def leaf_value(path: str) -> int:
    return sum(int(part) * 10 ** i for i, part in enumerate(path.split(".")))


def scripted_model(thought_words: int):
    """Replies for a full depth-3 branching-3 tree; parents sum what they received as results."""
    filler = " ".join(f"w{i}" for i in range(thought_words))

    def reply(request: Request) -> str:
        prompt = request.prompt_text()
        key = tree_call_key(prompt)
        if key.endswith(":conclude"):
            path = key.removesuffix(":conclude")
            prefix = "" if path == "root" else path + "."
            found = dict(re.findall(rf"^Result {re.escape(prefix)}(\d+): (-?\d+)$", prompt, re.M))
            total = sum(int(v) for v in found.values())
            return json.dumps({"thought": f"add the parts: {filler}", "answer": str(total)})
        depth = 0 if key == "root" else key.count(".") + 1
        if depth < DEPTH:
            subtasks = [{"task": f"compute part {i} of {key}"} for i in range(1, BRANCHING + 1)]
            return json.dumps({"thought": f"split {key}: {filler}", "subtasks": subtasks})
        return json.dumps({"thought": f"work out {key}: {filler}", "answer": str(leaf_value(key))})

    return reply


async def solve(tree: SubtaskTree, task: str, backend: Any) -> TreeResult:
    graph = Graph("bench")
    graph.add(tree)
    return (await graph.run({"task": task}, backend=backend)).output


def figures(result: TreeResult) -> dict[str, Any]:
    s = result.stats
    return {"answer": result.answer, "calls": s.calls, "tasks": s.tasks, "peak_context_tokens": s.peak_context_tokens,
            "computed_unpruned_peak": s.unpruned_peak_context_tokens, "prompt_tokens": s.prompt_tokens,
            "cached_tokens": s.cached_tokens, "cache_hit_rate": round(s.cache_hit_rate, 4),
            "completion_tokens": s.completion_tokens}


async def scripted(thought_words: int) -> dict[str, Any]:
    limits = dict(max_depth=DEPTH, max_breadth=BRANCHING, sampling=SamplingParams(max_tokens=4096))
    task = "Compute the total of every part of the ledger."
    pruned = await solve(SubtaskTree(**limits), task, ScriptedBackend(scripted_model(thought_words)))
    baseline = await solve(SubtaskTree(prune=False, **limits), task, ScriptedBackend(scripted_model(thought_words)))
    expected = sum(leaf_value(f"{a}.{b}.{c}") for a in range(1, 4) for b in range(1, 4) for c in range(1, 4))
    return {"pruned": figures(pruned), "unpruned": figures(baseline), "expected_answer": str(expected)}


QUESTIONS = [
    "How many legs do 3 spiders and 4 dogs have in total, and how many more legs do the spiders have?",
    "A train travels 60 km per hour for 2 hours and then 80 km per hour for 3 hours. How far does it go, "
    "and what is its average speed?",
    "What is 12 times 7, what is 15 plus 27, and what is the sum of those two results?",
]


async def real(model: str, max_tokens: int, questions: int) -> dict[str, Any]:
    try:
        from plait.executors import backend_for
    except ImportError:
        sys.exit("--model needs plait's vLLM backend (plait.executors.backend_for), which this install lacks")
    limits = dict(max_depth=2, max_breadth=3, sampling=SamplingParams(max_tokens=max_tokens), subtree_budget=6000,
                  on_budget="conclude")
    rows: list[dict[str, Any]] = []
    async with backend_for(model) as backend:
        for question in QUESTIONS[:questions]:
            row: dict[str, Any] = {"question": question}
            for label, prune in (("pruned", True), ("unpruned", False)):
                logging.info("%s: %s", label, question)
                try:
                    row[label] = figures(await solve(SubtaskTree(prune=prune, **limits), question, backend))
                except Exception as exc:  # a small model may fail to produce usable JSON; record it
                    row[label] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
            rows.append(row)
    return {"model": model, "questions": rows}


def table(title: str, arms: dict[str, dict[str, Any]]) -> str:
    cols = ["calls", "peak_context_tokens", "computed_unpruned_peak", "prompt_tokens", "cached_tokens",
            "cache_hit_rate", "answer"]
    lines = [title, f"{'arm':<10}" + "".join(f"{c:>24}" for c in cols)]
    for name, fig in arms.items():
        if "error" in fig:
            lines.append(f"{name:<10} {fig['error']}")
        else:
            lines.append(f"{name:<10}" + "".join(f"{str(fig[c])[:22]:>24}" for c in cols))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--thought-words", type=int, default=40, help="words of thought in each scripted reply")
    parser.add_argument("--model", help="also run multi-part questions on this model (vLLM backend)")
    parser.add_argument("--max-tokens", type=int, default=256, help="max tokens per call in the real-model run")
    parser.add_argument("--questions", type=int, default=len(QUESTIONS), help="questions in the real-model run")
    args = parser.parse_args()

    out = anyio.run(scripted, args.thought_words)
    p, u = out["pruned"], out["unpruned"]
    print(table(f"scripted depth-{DEPTH} branching-{BRANCHING} decomposition", {"pruned": p, "unpruned": u}))
    reduction = 1 - p["peak_context_tokens"] / u["peak_context_tokens"]
    same = p["answer"] == u["answer"] == out["expected_answer"]
    print(f"peak context reduction with pruning: {reduction:.1%}; same final answer (= expected "
          f"{out['expected_answer']}): {same}")
    result: dict[str, Any] = {
        "pruned_peak_tokens": p["peak_context_tokens"], "unpruned_peak_tokens": u["peak_context_tokens"],
        "cache_hit_rate": p["cache_hit_rate"], "peak_reduction": round(reduction, 4), "same_answer": same,
        "scripted": out,
    }
    if args.model:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        real_out = anyio.run(real, args.model, args.max_tokens, args.questions)
        for row in real_out["questions"]:
            print()
            print(table(f"{args.model}: {row['question'][:70]}", {k: row[k] for k in ("pruned", "unpruned")}))
        result["model_run"] = real_out
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
