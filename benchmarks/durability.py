"""Cost and robustness of durable runs, for each store.

1. Commit cost: microseconds per node of checkpointing (inputs digest,
   encoded outcome, group commit): the 1,000-node chain with a checkpoint
   minus the same chain without, divided by 1,000, for the memory, SQLite
   and PostgreSQL stores; and SQLite with ``group_commit=0``.
2. The 1,000-node chain's slowdown with each store (a fresh run id each
   time, so every node is committed), measured side by side with the plain
   chain in each round. Goals: < 1.5x SQLite, < 3x PostgreSQL.
3. Two worker processes sharing one checkpoint (PostgreSQL when available,
   else SQLite) run a 1,000-input batch; one is SIGKILLed a quarter of the
   way through. The survivor's results file: inputs completed, lost, and
   duplicated (node executions beyond one per input, counted from side
   effects each node leaves, plus repeated result lines).
4. The same with a backend failing 10% of requests (``FlakyBackend``; nodes
   retry).

PostgreSQL runs as a throwaway server (tests/durable/pg_server.py; fsync on,
``synchronous_commit=off``, like SQLite's WAL with ``synchronous=NORMAL``),
or pass ``--postgres URL``.

    python benchmarks/durability.py [--json out.json] [--rounds 5] [--postgres URL]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import anyio
from overhead import plait_chain

from plait import (
    FunctionBackend,
    Graph,
    MemoryCheckpointer,
    PostgresCheckpointer,
    Request,
    RetryPolicy,
    run_batch,
    RunContext,
    SQLiteCheckpointer,
)
from plait.executors import FlakyBackend

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "durable"))
from pg_server import PostgresServer, unavailable  # noqa: E402


async def chain_once(graph: Graph, checkpoint=None) -> float:
    options = {} if checkpoint is None else {"checkpoint": checkpoint, "run_id": f"chain-{time.time_ns()}"}
    t0 = time.perf_counter()
    await graph.run(0, keep_events=False, **options)
    return time.perf_counter() - t0


async def chain_figures(graph: Graph, stores: dict, rounds: int) -> tuple[float, dict]:
    """Each round runs the chain once without a checkpoint and once per store, side by side.

    The machine is shared and its speed drifts, so a store's slowdown is the median of its
    per-round ratios to the plain run of the same round, not a ratio of medians taken minutes apart.
    """
    arms = {"plain": None, **stores}
    for checkpoint in arms.values():  # warm up
        await chain_once(graph, checkpoint)
    times: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(rounds):
        for name, checkpoint in arms.items():
            times[name].append(await chain_once(graph, checkpoint))
    plain = statistics.median(times["plain"])
    figures = {}
    for name in stores:
        ratios = [d / p for d, p in zip(times[name], times["plain"])]
        durable = statistics.median(times[name])
        figures[name] = {"commit_us": (durable - plain) / 1000 * 1e6, "chain1000_slowdown": statistics.median(ratios),
                         "chain1000_ms": durable * 1e3}
    return plain, figures


# -- two worker processes ------------------------------------------------------------------------------

def batch_graph(effects: Path) -> Graph:
    """Ask the model, grade the answer; each node leaves a line in ``effects/INPUT`` as it completes."""
    g = Graph("batch")

    def effect(node: str, x: int) -> None:
        fd = os.open(effects / str(x), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, f"{node}\n".encode())
        os.close(fd)

    @g.node(retry=RetryPolicy(attempts=10, backoff=0.0))
    async def ask(x: int, ctx: RunContext) -> str:
        text = (await ctx.generate(Request(prompt=f"question {x}"))).text
        effect("ask", x)
        return text

    @g.node
    def grade(ask: str, x: int) -> dict:
        effect("grade", x)
        return {"x": x, "answer": ask, "correct": ask == f"ANSWER {x}"}

    g.chain(ask, grade)
    return g


async def worker(args: argparse.Namespace) -> None:
    inner = FunctionBackend(lambda r: r.prompt_text().replace("question", "ANSWER"), latency=0.005,
                            prefix_cache=False)
    backend = FlakyBackend(inner, error_rate=args.flaky, seed=os.getpid()) if args.flaky else inner
    await run_batch(batch_graph(Path(args.effects)), list(range(args.inputs)), backend=backend, concurrency=16,
                    checkpoint=args.worker, batch_id="bench", output=args.output, lease=2.0)


def two_workers(workdir: Path, checkpoint: str, n: int, flaky: float) -> dict:
    effects = workdir / "effects"
    effects.mkdir()

    def start(name: str) -> subprocess.Popen:
        cmd = [sys.executable, __file__, "--worker", checkpoint, "--output", str(workdir / f"{name}.jsonl"),
               "--effects", str(effects), "--inputs", str(n), "--flaky", str(flaky)]
        return subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)

    t0 = time.perf_counter()
    victim, survivor = start("killed"), start("survivor")
    while _lines(workdir / "killed.jsonl") < n // 4 and victim.poll() is None:
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    _, err = survivor.communicate(timeout=600)
    wall = time.perf_counter() - t0
    if survivor.returncode != 0:
        raise SystemExit(f"the surviving worker failed: {err[-2000:]}")
    rows = [json.loads(line) for line in (workdir / "survivor.jsonl").read_text().splitlines()]
    lines = Counter(r["index"] for r in rows)
    executions = Counter()
    for path in effects.iterdir():
        for node, count in Counter(path.read_text().splitlines()).items():
            executions[node] += count - 1
    return {"completed": sum(r["status"] == "ok" for r in rows), "lost": sum(1 for i in range(n) if not lines[i]),
            "duplicated": sum(c - 1 for c in lines.values()) + sum(executions.values()), "wall_s": wall,
            "killed_after": _lines(workdir / "killed.jsonl"), "store": checkpoint.split(":")[0].split("/")[-1]}


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


async def main(args: argparse.Namespace) -> dict:
    graph = plait_chain(1000)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        url = args.postgres
        if url is None and unavailable() is None:
            url = stack.enter_context(PostgresServer(fsync=True)).url
        stores = {"memory": MemoryCheckpointer(), "sqlite": SQLiteCheckpointer(workdir / "chain.db"),
                  "sqlite_group_commit0": SQLiteCheckpointer(workdir / "strict.db", group_commit=0)}
        if url is not None:
            stores["postgres"] = PostgresCheckpointer(url)
        for store in stores.values():
            stack.enter_context(store)
        plain, stores = await chain_figures(graph, stores, args.rounds)
        strict = stores.pop("sqlite_group_commit0")
        shared = url if url is not None else str(workdir / "shared.db")
        (workdir / "a").mkdir()
        (workdir / "b").mkdir()
        two = two_workers(workdir / "a", _fresh(shared, workdir / "a"), args.inputs, 0.0)
        flaky = two_workers(workdir / "b", _fresh(shared, workdir / "b"), args.inputs, 0.10)
    return {"stores": stores, "chain1000_plain_ms": plain * 1e3, "sqlite_group_commit0_us": strict["commit_us"],
            "two_workers": two, "batch": flaky}


def _fresh(shared: str, folder: Path) -> str:
    """A checkpoint of its own for each arm: a new schema on the server, or a new file."""
    if not shared.startswith("postgresql://"):
        return str(folder / "shared.db")
    import psycopg

    name = f"bench_{folder.name}_{os.getpid()}"
    with psycopg.connect(shared, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    sep = "&" if "?" in shared else "?"
    return f"{shared}{sep}options=-csearch_path%3D{name}"


def report(figures: dict) -> str:
    rows = ["| measure | memory | SQLite | PostgreSQL |", "|---|---|---|---|"]
    stores = figures["stores"]

    def cells(key: str, fmt: str) -> str:
        return " | ".join(fmt.format(stores[s][key]) if s in stores else "n/a" for s in ("memory", "sqlite",
                                                                                          "postgres"))

    rows.append(f"| commit cost per node (us) | {cells('commit_us', '{:.1f}')} |")
    rows.append(f"| 1,000-node chain (ms; {figures['chain1000_plain_ms']:.1f} without a checkpoint) | "
                f"{cells('chain1000_ms', '{:.1f}')} |")
    rows.append(f"| slowdown (goals: SQLite < 1.5x, PostgreSQL < 3x) | {cells('chain1000_slowdown', '{:.2f}x')} |")
    rows += ["", f"SQLite with group_commit=0 (one transaction per node): {figures['sqlite_group_commit0_us']:.1f} "
             "us per node", "", "| two workers, one SIGKILLed (store) | completed | lost | duplicated | wall (s) |",
             "|---|---|---|---|---|"]
    for name, key in (("1,000 inputs", "two_workers"), ("1,000 inputs, 10% backend failures", "batch")):
        b = figures[key]
        rows.append(f"| {name} ({b['store']}, killed after {b['killed_after']}) | {b['completed']} | {b['lost']} | "
                    f"{b['duplicated']} | {b['wall_s']:.2f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="write the figures to this file")
    parser.add_argument("--rounds", type=int, default=5, help="chain runs per arm (median)")
    parser.add_argument("--inputs", type=int, default=1000, help="batch size")
    parser.add_argument("--postgres", default=None, help="a postgresql:// URL (default: start a throwaway server)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # a worker process: its checkpoint
    parser.add_argument("--output", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--effects", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--flaky", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        anyio.run(worker, args)
        sys.exit(0)
    figures = anyio.run(main, args)
    print(report(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
