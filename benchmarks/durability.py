"""Cost and robustness of durable runs.

1. Commit cost: microseconds per node of checkpointing to SQLite (inputs
   digest, JSON output, group commit), the 1,000-node chain with a
   checkpoint minus the same chain without, divided by 1,000; and the same
   with ``group_commit=0`` (one transaction per node).
2. The 1,000-node chain from ``overhead.py`` with and without a checkpoint
   (a fresh run id each time, so every node is committed): the slowdown.
3. A batch of 1,000 inputs over a backend that fails 10% of requests
   (``FlakyBackend``; nodes retry): inputs completed, lost and duplicated in
   the results file, and the wall time.

    python benchmarks/durability.py [--json out.json] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import anyio
from overhead import plait_chain

from plait import FlakyBackend, FunctionBackend, Graph, Request, RetryPolicy, RunContext, SQLiteCheckpointer, run_batch


async def chain_seconds(graph: Graph, rounds: int, checkpoint: SQLiteCheckpointer | None) -> float:
    times = []
    for r in range(rounds):
        options = {} if checkpoint is None else {"checkpoint": checkpoint, "run_id": f"chain-{r}-{time.time_ns()}"}
        t0 = time.perf_counter()
        await graph.run(0, keep_events=False, **options)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def batch_graph() -> Graph:
    g = Graph("batch")

    @g.node(retry=RetryPolicy(attempts=10, backoff=0.0))
    async def ask(x: int, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt=f"question {x}"))).text

    @g.node
    def grade(ask: str, x: int) -> dict:
        return {"x": x, "answer": ask, "correct": ask == f"ANSWER {x}"}

    g.chain(ask, grade)
    return g


async def batch_figures(workdir: Path, n: int) -> dict:
    inner = FunctionBackend(lambda r: r.prompt_text().replace("question", "ANSWER"), prefix_cache=False)
    backend = FlakyBackend(inner, error_rate=0.10, seed=1)
    out = workdir / "results.jsonl"
    t0 = time.perf_counter()
    result = await run_batch(batch_graph(), list(range(n)), backend=backend, concurrency=16,
                             checkpoint=workdir / "batch.db", output=out)
    wall = time.perf_counter() - t0
    counts = Counter(json.loads(line)["index"] for line in out.read_text().splitlines())
    return {"completed": result.ok, "lost": sum(1 for i in range(n) if counts[i] == 0),
            "duplicated": sum(c - 1 for c in counts.values() if c > 1), "wall_s": wall,
            "injected_failures": backend.errors, "retries": sum(item.retries for item in result.items)}


async def main(args: argparse.Namespace) -> dict:
    graph = plait_chain(1000)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        await chain_seconds(graph, 2, None)  # warm up
        plain = await chain_seconds(graph, args.rounds, None)
        with SQLiteCheckpointer(workdir / "chain.db") as store:
            await chain_seconds(graph, 1, store)
            durable = await chain_seconds(graph, args.rounds, store)
        with SQLiteCheckpointer(workdir / "strict.db", group_commit=0) as store:
            strict = await chain_seconds(graph, max(args.rounds // 2, 1), store)
        batch = await batch_figures(workdir, args.inputs)
    return {"commit_us": (durable - plain) / 1000 * 1e6, "chain1000_plain_ms": plain * 1e3,
            "chain1000_checkpoint_ms": durable * 1e3, "chain1000_slowdown": durable / plain,
            "strict_commit_us": (strict - plain) / 1000 * 1e6, "batch": batch}


def report(figures: dict) -> str:
    b = figures["batch"]
    return "\n".join([
        "| measure | value |",
        "|---|---|",
        f"| commit cost per node (us) | {figures['commit_us']:.1f} |",
        f"| 1,000-node chain, no checkpoint (ms) | {figures['chain1000_plain_ms']:.1f} |",
        f"| 1,000-node chain, SQLite checkpoint (ms) | {figures['chain1000_checkpoint_ms']:.1f} |",
        f"| slowdown (target < 2x) | {figures['chain1000_slowdown']:.2f}x |",
        f"| per node with group_commit=0 (one transaction each, us) | {figures['strict_commit_us']:.1f} |",
        f"| batch: inputs completed | {b['completed']} |",
        f"| batch: lost / duplicated (target 0 / 0) | {b['lost']} / {b['duplicated']} |",
        f"| batch: injected failures / retries | {b['injected_failures']} / {b['retries']} |",
        f"| batch: wall time (s) | {b['wall_s']:.2f} |",
    ])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="write the figures to this file")
    parser.add_argument("--rounds", type=int, default=5, help="chain runs per arm (median)")
    parser.add_argument("--inputs", type=int, default=1000, help="batch size")
    args = parser.parse_args()
    figures = anyio.run(main, args)
    print(report(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
