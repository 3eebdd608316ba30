"""CSP solving: plait's solver node (python-constraint2 search) vs OR-Tools CP-SAT on the same models.

Instances: 9x9 Sudokus (known hard ones plus seeded random ones), N-Queens for
N = 8, 16, 32 (one solution), and the zebra puzzle. The plait arm runs the
example graphs (CSP build -> ``SolveCSP`` -> result) end to end; the CP-SAT arm
builds the same variables and constraints with ``cp_model`` and solves
(single worker by default: plait's search is single-threaded). Every solution
of both arms is checked against the puzzle's rules. Figures are medians over
``--rounds`` runs, in seconds.

    python benchmarks/csp.py [--json out.json] [--rounds 5] [--cpsat-workers 1]

OR-Tools comes from the ``bench`` extra: ``pip install -e '.[bench]'``.
The ``--model`` accuracy arm (natural-language puzzles, model alone vs model +
solver) needs the vLLM backend (``plait.executors.backend_for``).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import nqueens  # noqa: E402
import sudoku  # noqa: E402
import zebra  # noqa: E402

from plait import CSP, Graph, SolveCSP  # noqa: E402

SUDOKUS = {
    "sudoku_easy": sudoku.EASY,
    "sudoku_inkala_2012": sudoku.HARD,
    "sudoku_golden_nugget": ".......39.....1..5..3.5.8....8.9...6.7...2...1..4.......9.8..5..2....6..4..7.....",
    "sudoku_ai_escargot": "1....7.9..3..2...8..96..5....53..9...1..8...26....4...3......1..4......7..7...3..",
    "sudoku_norvig_top95_1": "4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......",
    "sudoku_norvig_hard1_multi": ".....6....59.....82....8....45........3........6..3.54...325..6..................",
}


def generated_sudoku(seed: int, clues: int = 24) -> str:
    """A random valid grid (a shuffled pattern) with all but ``clues`` cells blanked; may have several solutions."""
    rng = random.Random(seed)
    def shuffled(groups):
        return [x for g in rng.sample(groups, 3) for x in rng.sample(g, 3)]
    rows = shuffled([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    cols = shuffled([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    digits = rng.sample(range(1, 10), 9)
    grid = [[digits[(3 * (r % 3) + r // 3 + c) % 9] for c in cols] for r in rows]
    keep = set(rng.sample(range(81), clues))
    return "".join(str(grid[i // 9][i % 9]) if i in keep else "." for i in range(81))


# -- checks, independent of both solvers ---------------------------------------------


def sudoku_ok(puzzle: str, values: dict[str, int]) -> bool:
    rows = [[values[sudoku.cell(r, c)] for c in range(9)] for r in range(9)]
    units = rows + [list(col) for col in zip(*rows)]
    units += [[rows[br + r][bc + c] for r in range(3) for c in range(3)] for br in (0, 3, 6) for bc in (0, 3, 6)]
    givens = all(ch in ".0" or int(ch) == rows[i // 9][i % 9] for i, ch in enumerate(puzzle))
    return givens and all(sorted(u) == list(range(1, 10)) for u in units)


def queens_ok(values: dict[str, int]) -> bool:
    cols = [values[f"Q{i}"] for i in range(len(values))]
    n = len(cols)
    return len(set(cols)) == n and all(abs(cols[i] - cols[j]) != j - i for i in range(n) for j in range(i + 1, n))


def zebra_ok(values: dict[str, int]) -> bool:
    return CSP.model_validate(zebra.zebra_model()).violations(values) == [] and values["Zebra"] == values["Japanese"]


# -- the plait arm ------------------------------------------------------------------


def solve_graph(build: Callable[[Any], CSP]) -> Graph:
    g = Graph("bench")

    def model(spec: Any) -> CSP:
        return build(spec)

    g.chain(g.add(model), g.add(SolveCSP(time_limit=300)))
    return g


def run_plait(graph: Graph, spec: Any) -> tuple[float, float, dict | None]:
    """Wall time of one run of an already built graph, timed inside the event loop (as an application
    would run it; the graph is validated on its first run, which the median over rounds discounts).

    Timing around ``anyio.run`` instead would add CPython 3.11's asyncio.Runner exit path, which reprs
    the main task's result (the whole RunResult) while checking the SIGINT handler.
    """

    async def timed() -> tuple[float, float, dict | None]:
        started = time.perf_counter()
        result = await graph.run({"spec": spec})
        return time.perf_counter() - started, result.output.solve_time, result.output.solution

    return anyio.run(timed)


# -- the CP-SAT arm -----------------------------------------------------------------


def run_cpsat(kind: str, spec: Any, workers: int) -> tuple[float, dict | None]:
    from ortools.sat.python import cp_model

    started = time.perf_counter()
    m = cp_model.CpModel()
    if kind == "sudoku":
        cells = {}
        for i, ch in enumerate(spec):
            name = sudoku.cell(i // 9, i % 9)
            cells[name] = m.NewIntVar(1, 9, name) if ch in ".0" else m.NewConstant(int(ch))
        for unit in sudoku.sudoku_csp(spec).constraints:
            m.AddAllDifferent([cells[n] for n in unit.variables])
        variables = cells
    elif kind == "queens":
        n = spec
        variables = {f"Q{i}": m.NewIntVar(0, n - 1, f"Q{i}") for i in range(n)}
        q = list(variables.values())
        m.AddAllDifferent(q)
        m.AddAllDifferent([q[i] + i for i in range(n)])  # the diagonal constraints, in CP-SAT's idiom
        m.AddAllDifferent([q[i] - i for i in range(n)])
    else:
        variables = {name: m.NewIntVar(1, 5, name) for group in zebra.GROUPS.values() for name in group}
        v = variables
        for group in zebra.GROUPS.values():
            m.AddAllDifferent([v[n] for n in group])
        for a, b in [("Englishman", "Red"), ("Spaniard", "Dog"), ("Coffee", "Green"), ("Ukrainian", "Tea"),
                     ("OldGold", "Snails"), ("Kools", "Yellow"), ("LuckyStrike", "OrangeJuice"),
                     ("Japanese", "Parliament")]:
            m.Add(v[a] == v[b])
        m.Add(v["Green"] == v["Ivory"] + 1)
        m.Add(v["Milk"] == 3)
        m.Add(v["Norwegian"] == 1)
        for a, b in [("Chesterfield", "Fox"), ("Kools", "Horse"), ("Norwegian", "Blue")]:
            diff = m.NewIntVar(-4, 4, f"d_{a}_{b}")
            m.Add(diff == v[a] - v[b])
            m.AddAbsEquality(1, diff)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = workers
    solver.parameters.max_time_in_seconds = 300
    status = solver.Solve(m)
    elapsed = time.perf_counter() - started
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return elapsed, None
    return elapsed, {name: solver.Value(var) for name, var in variables.items()}


# -- driver -------------------------------------------------------------------------


def instances() -> dict[str, tuple[str, Any, Callable[[Any], CSP], Callable[[dict], bool]]]:
    out: dict[str, tuple] = {}
    puzzles = dict(SUDOKUS)
    puzzles.update({f"sudoku_seeded_{seed}": generated_sudoku(seed) for seed in range(4)})
    for name, puzzle in puzzles.items():
        out[name] = ("sudoku", puzzle, sudoku.sudoku_csp, lambda s, p=puzzle: sudoku_ok(p, s))
    for n in (8, 16, 32):
        out[f"queens_{n}"] = ("queens", n, nqueens.queens_csp, queens_ok)
    out["zebra"] = ("zebra", None, lambda _: CSP.model_validate(zebra.zebra_model()), zebra_ok)
    return out


def measure(rounds: int, workers: int) -> dict[str, dict[str, Any]]:
    results = {}
    for name, (kind, spec, build, check) in instances().items():
        plait_t, search_t, cpsat_t, ok = [], [], [], True
        graph = solve_graph(build)
        for _ in range(rounds):
            wall, search, solution = run_plait(graph, spec)
            plait_t.append(wall)
            search_t.append(search)
            ok &= solution is not None and check(solution)
            elapsed, solution = run_cpsat(kind, spec, workers)
            cpsat_t.append(elapsed)
            ok &= solution is not None and check(solution)
        results[name] = {"plait_s": statistics.median(plait_t), "plait_search_s": statistics.median(search_t),
                         "cpsat_s": statistics.median(cpsat_t), "status": "solved" if ok else "FAILED"}
    return results


def print_table(results: dict[str, dict[str, Any]]) -> None:
    print(f"{'instance':<28} {'plait_s':>9} {'search_s':>9} {'cpsat_s':>9} {'plait/cpsat':>11}  status")
    for name, r in results.items():
        ratio = r["plait_s"] / r["cpsat_s"] if r["cpsat_s"] else float("inf")
        print(f"{name:<28} {r['plait_s']:>9.4f} {r['plait_search_s']:>9.4f} {r['cpsat_s']:>9.4f} {ratio:>11.2f}  "
              f"{r['status']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--rounds", type=int, default=5, help="runs per instance and arm (median reported)")
    parser.add_argument("--cpsat-workers", type=int, default=1, help="CP-SAT search workers (default 1)")
    parser.add_argument("--model", help="accuracy arm on natural-language puzzles (needs the vLLM backend)")
    parser.add_argument("--puzzles", type=int, default=20, help="natural-language puzzles for the --model arm")
    args = parser.parse_args()
    factory = None
    if args.model:
        from plait import executors

        factory = getattr(executors, "backend_for", None)
        if factory is None:
            parser.error("--model needs the vLLM backend (plait.executors.backend_for), which this install lacks")
    results = measure(args.rounds, args.cpsat_workers)
    print_table(results)
    figures: dict[str, Any] = {"instances": results, "rounds": args.rounds, "cpsat_workers": args.cpsat_workers}
    if factory is not None:
        from _csp_accuracy import accuracy

        backend = factory(args.model)

        async def run_accuracy() -> dict[str, Any]:
            async with backend:
                return await accuracy(backend, args.puzzles)

        figures["accuracy"] = acc = anyio.run(run_accuracy)
        print(f"\naccuracy on {acc['puzzles']} seating puzzles with {args.model}: model alone "
              f"{acc['model_alone']:.0%}, model + solver {acc['model_plus_solver']:.0%}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
