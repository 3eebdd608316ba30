"""Scale-out on Ray: a CPU-heavy batch (a small CSP solved per input) with 1 and 2 workers, and what more would give.

Per worker count: the wall time of a ``run_batch(executor=RayExecutor(workers=W))`` over ``n_inputs``
inputs, checkpointed in PostgreSQL (workers' start included; the local cluster is started once, before).
Two figures bound what more workers give: the per-input cost (the same graph in this process, one input at
a time, no checkpoint: the mean seconds of one core per input) and the store's limit (inputs per second that
one PostgreSQL server commits for a batch of trivial inputs: lease, run row, node group, result, release).
Expected throughput with W workers is ``min(W * one worker's measured rate, store_inputs_per_s)``, written
down for 10 and 100 workers. The store's rate is what one client process drives through one server on
these shared cores: a lower bound of the server's own. On this 2-core machine shared with others, 2 workers
cannot reach 2x.

    python benchmarks/_scaleout_ray.py [--json out.json] [--inputs 1000] [--workers 1 2] [--postgres URL]

``benchmarks/scaleout.py`` imports :func:`measure` for its Ray half.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

from plait import CSP, Graph, SolveCSP, run_batch
from plait.durable import RayExecutor
from plait.solvers import CSPResult

graph = Graph("csp_batch")
graph.add(SolveCSP(mode="all", max_solutions=100_000, time_limit=30.0))


@graph.node
def csp(seed: int) -> CSP:
    """Five digits 1..8, all different, summing to 15..29, two more constraints: ~60 ms of search for all solutions."""
    names = ["A", "B", "C", "D", "E"]
    return CSP(variables=[{"name": n, "domain": {"min": 1, "max": 8}} for n in names],
               constraints=[{"kind": "all_different", "variables": names}, f"A + B + C + D + E == {15 + seed % 15}",
                            "A < B", f"(C * D) % 7 != {seed % 7}"])


@graph.node
def count(solve_csp: CSPResult) -> dict:
    return {"status": solve_csp.status, "count": solve_csp.count}


graph.chain(csp, "solve_csp", count)

trivial = Graph("store_bound")


@trivial.node
def echo(seed: int) -> int:
    return seed


TARGET = f"{Path(__file__).resolve()}:graph"


async def _per_input_s(n: int) -> float:
    """Mean seconds of one input in this process, one at a time, no checkpoint (inputs differ in cost)."""
    t0 = time.perf_counter()
    for seed in range(n):
        await graph.run({"seed": seed}, keep_events=False)
    return (time.perf_counter() - t0) / n


def _commits(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").fetchone()[0]


async def _store_figures(url: str, n: int) -> tuple[float, float]:
    """Inputs per second one PostgreSQL server takes for trivial inputs (16 at once, from this process), and
    the transactions it commits per input (from the server's statistics, read once the batch's connections closed)."""
    before = _commits(url)
    result = await run_batch(trivial, [{"seed": i} for i in range(n)], checkpoint=url,
                             batch_id=f"store-{time.time_ns()}", concurrency=16)
    await anyio.sleep(1.5)  # backends report their statistics when they end (and at most once a second)
    return n / result.duration, (_commits(url) - before - 1) / n


async def _ray_wall_s(workers: int, n: int, url: str) -> float:
    executor = RayExecutor(workers=workers, graph=TARGET, cpus_per_worker=1)
    result = await run_batch(graph, [{"seed": i} for i in range(n)], executor=executor, checkpoint=url,
                             batch_id=f"ray{workers}-{time.time_ns()}", concurrency=2)
    if result.ok != n:
        raise RuntimeError(f"{n - result.ok} of {n} inputs failed on {workers} workers: "
                           f"{next(i.error for i in result.items if i.status != 'ok')}")
    return result.duration


@contextlib.contextmanager
def _postgres(url: str | None):
    if url:
        yield url
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "durable"))
    from pg_server import PostgresServer, unavailable

    reason = unavailable()
    if reason:
        raise SystemExit(f"benchmark needs PostgreSQL: {reason} (or pass --postgres URL)")
    with PostgresServer(fsync=True) as server:
        yield server.url


@contextlib.contextmanager
def _local_ray(cpus: int):
    import ray

    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]), path]))
    ray.init(num_cpus=cpus, object_store_memory=100 * 2**20, include_dashboard=False, _temp_dir=temp,
             logging_level="WARNING")
    try:
        yield
    finally:
        ray.shutdown()
        os.environ.pop("PYTHONPATH") if path is None else os.environ.__setitem__("PYTHONPATH", path)
        shutil.rmtree(temp, ignore_errors=True)


def measure(workers: list[int], n_inputs: int, *, postgres: str | None = None, rounds: int = 1) -> dict:
    """``{"1": {"wall_s", "inputs_per_s"}, "2": ..., "per_input_s", "store_inputs_per_s", "store_commits_per_input",
    "store_commits_per_s", "expected": {"10": ..., "100": ...}}`` (see the module docstring)."""
    figures: dict = {}
    with _postgres(postgres) as url, _local_ray(max(max(workers), os.cpu_count() or 1)):
        for w in workers:
            walls = [anyio.run(_ray_wall_s, w, n_inputs, url) for _ in range(rounds)]
            wall = statistics.median(walls)
            figures[str(w)] = {"wall_s": round(wall, 3), "inputs_per_s": round(n_inputs / wall, 1)}
        per_input = anyio.run(_per_input_s, min(n_inputs, 200))
        stores = [anyio.run(_store_figures, url, 1000) for _ in range(max(rounds, 3))]
    store = statistics.median(rate for rate, _ in stores)
    figures["per_input_s"] = round(per_input, 5)
    figures["store_inputs_per_s"] = round(store, 1)
    figures["store_commits_per_input"] = round(statistics.median(c for _, c in stores), 1)
    figures["store_commits_per_s"] = round(store * figures["store_commits_per_input"], 1)
    # a worker's rate as measured on one Ray worker (store round trips and its start included), else in process
    worker_rate = figures["1"]["inputs_per_s"] if "1" in figures else 1 / per_input
    figures["expected"] = {str(w): _expected(w, worker_rate, store, n_inputs) for w in (10, 100)}
    return figures


def _expected(w: int, worker_rate: float, store: float, n: int) -> dict:
    cpu = w * worker_rate
    rate = min(cpu, store)
    return {"inputs_per_s": round(rate, 1), "wall_s": round(n / rate, 2), "bound": "cpu" if cpu <= store else "store"}


def table(figures: dict) -> str:
    lines = ["| workers | wall (s) | inputs/s | note |", "|---|---|---|---|"]
    for key, row in figures.items():
        if key.isdigit():
            lines.append(f"| {key} | {row['wall_s']:.2f} | {row['inputs_per_s']:.1f} | measured |")
    for key, row in figures["expected"].items():
        lines.append(f"| {key} | {row['wall_s']:.2f} | {row['inputs_per_s']:.1f} | expected ({row['bound']}-bound) |")
    lines.append(f"\nper input: {figures['per_input_s'] * 1000:.1f} ms in process (one core, no store); "
                 f"store limit: {figures['store_inputs_per_s']:.0f} inputs/s (one PostgreSQL server, "
                 f"{figures['store_commits_per_input']:.1f} commits per input, "
                 f"{figures['store_commits_per_s']:.0f} commits/s)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="write the figures here")
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=1, help="runs per worker count (the median is kept)")
    parser.add_argument("--postgres", default=None, help="a postgresql:// URL (default: a throwaway local server)")
    args = parser.parse_args()
    figures = measure(args.workers, args.inputs, postgres=args.postgres, rounds=args.rounds)
    print(table(figures))
    if args.json:
        Path(args.json).write_text(json.dumps({"ray": figures}, indent=2))


if __name__ == "__main__":
    main()
