"""CSP solving: plait's solver portfolio (python-constraint2, CP-SAT through plait, auto) vs hand-built CP-SAT.

Instances: 9x9 Sudokus (known hard ones plus seeded random ones), N-Queens for
N = 8, 16, 32 (one solution), the zebra puzzle, and cryptarithms (arithmetic-heavy).
The plait arms run the example graphs (CSP build -> ``SolveCSP(engine=...)`` ->
result) end to end, once per engine: ``python-constraint`` (the default),
``ortools`` and ``z3`` (plait translates the same CSP to CP-SAT or z3 and
re-checks the solution) and ``auto`` (the column shows which engine it picked); the direct
CP-SAT arm builds the variables and constraints by hand with ``cp_model``
(single worker by default, as plait's engines). Every solution of every arm is
checked against the puzzle's rules (an engine that misses one, e.g. at its ``--time-limit``, is named
in the status column). Figures are medians over ``--rounds`` runs, in seconds.

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


ENGINES = ("python-constraint", "ortools", "z3", "auto")


def solve_graph(build: Callable[[Any], CSP], engine: str = "python-constraint", time_limit: float = 30) -> Graph:
    g = Graph("bench")

    def model(spec: Any) -> CSP:
        return build(spec)

    g.chain(g.add(model), g.add(SolveCSP(time_limit=time_limit, engine=engine)))
    return g


def run_plait(graph: Graph, spec: Any) -> tuple[float, float, dict | None, str]:
    """Wall time of one run of an already built graph, timed inside the event loop (as an application
    would run it; the graph is validated on its first run, which the median over rounds discounts).

    Timing around ``anyio.run`` instead would add CPython 3.11's asyncio.Runner exit path, which reprs
    the main task's result (the whole RunResult) while checking the SIGINT handler.
    """

    async def timed() -> tuple[float, float, dict | None, str]:
        started = time.perf_counter()
        result = await graph.run({"spec": spec})
        out = result.output
        return time.perf_counter() - started, out.solve_time, out.solution, out.engine + ("*" if out.note else "")

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
    elif kind == "cryptarithm":
        words = spec.replace("=", "+").split("+")
        variables = {ch: m.NewIntVar(0, 9, ch) for ch in dict.fromkeys("".join(words))}
        m.AddAllDifferent(list(variables.values()))
        for word in words:
            m.Add(variables[word[0]] != 0)
        def value(word: str) -> Any:
            return sum(10 ** i * variables[ch] for i, ch in enumerate(reversed(word)))
        m.Add(sum(value(w) for w in words[:-1]) == value(words[-1]))
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
    for puzzle in CRYPTARITHMS:
        out[f"crypt_{puzzle.split('=')[1].lower()}"] = ("cryptarithm", puzzle, cryptarithm_csp,
                                                          lambda s, p=puzzle: cryptarithm_ok(p, s))
    return out


CRYPTARITHMS = ("SEND+MORE=MONEY", "TO+GO=OUT", "CROSS+ROADS=DANGER")


def cryptarithm_csp(puzzle: str) -> CSP:
    """Letters 0..9, all different, no leading zero, the words' place values summed: one linear equation."""
    words = puzzle.replace("=", "+").split("+")
    letters = list(dict.fromkeys("".join(words)))
    value = lambda w: " + ".join(f"{10 ** i}*{ch}" for i, ch in enumerate(reversed(w)))  # noqa: E731
    return CSP(variables=[{"name": ch, "domain": {"min": 0, "max": 9}} for ch in letters],
               constraints=[{"kind": "all_different", "variables": letters}, *(f"{w[0]} != 0" for w in words),
                            f"{' + '.join(value(w) for w in words[:-1])} == {value(words[-1])}"])


def cryptarithm_ok(puzzle: str, values: dict[str, int]) -> bool:
    words = puzzle.replace("=", "+").split("+")
    number = lambda w: int("".join(str(values[ch]) for ch in w))  # noqa: E731
    return (len(set(values.values())) == len(values) and all(values[w[0]] != 0 for w in words)
            and sum(number(w) for w in words[:-1]) == number(words[-1]))


def measure(rounds: int, workers: int, only: str | None = None, time_limit: float = 30) -> dict[str, dict[str, Any]]:
    results = {}
    for name, (kind, spec, build, check) in instances().items():
        if only and only not in name:
            continue
        wall: dict[str, list[float]] = {e: [] for e in ENGINES}
        search_t, cpsat_t, failed, picked = [], [], set(), ""
        graphs = {e: solve_graph(build, e, time_limit) for e in ENGINES}
        for _ in range(rounds):
            for engine, graph in graphs.items():
                elapsed, search, solution, used = run_plait(graph, spec)
                wall[engine].append(elapsed)
                if solution is None or not check(solution):
                    failed.add(engine)
                if engine == "python-constraint":
                    search_t.append(search)
                if engine == "auto":
                    picked = used
            elapsed, solution = run_cpsat(kind, spec, workers)
            cpsat_t.append(elapsed)
            if solution is None or not check(solution):
                failed.add("cpsat")
        results[name] = {"plait_s": statistics.median(wall["python-constraint"]),
                         "plait_search_s": statistics.median(search_t),
                         "plait_ortools_s": statistics.median(wall["ortools"]),
                         "plait_z3_s": statistics.median(wall["z3"]),
                         "plait_auto_s": statistics.median(wall["auto"]), "auto_engine": picked,
                         "cpsat_s": statistics.median(cpsat_t),
                         "status": f"FAILED: {', '.join(sorted(failed))}" if failed else "solved"}
    return results


def print_table(results: dict[str, dict[str, Any]]) -> None:
    print("plait_s: SolveCSP on python-constraint (search_s: its search alone); ortools_s, z3_s: SolveCSP on CP-SAT,\n"
          "on z3; auto_s: engine='auto' (auto: the engine it picked; * = fell back); cpsat_s: hand-built CP-SAT")
    print(f"{'instance':<26} {'plait_s':>9} {'search_s':>9} {'ortools_s':>9} {'z3_s':>9} {'auto_s':>9} {'auto':>17} "
          f"{'cpsat_s':>9}  status")
    for name, r in results.items():
        print(f"{name:<26} {r['plait_s']:>9.4f} {r['plait_search_s']:>9.4f} {r['plait_ortools_s']:>9.4f} "
              f"{r['plait_z3_s']:>9.4f} {r['plait_auto_s']:>9.4f} {r['auto_engine']:>17} {r['cpsat_s']:>9.4f}  "
              f"{r['status']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--rounds", type=int, default=5, help="runs per instance and arm (median reported)")
    parser.add_argument("--cpsat-workers", type=int, default=1, help="CP-SAT search workers (default 1)")
    parser.add_argument("--model", help="accuracy arm on natural-language puzzles (needs the vLLM backend)")
    parser.add_argument("--puzzles", type=int, default=20, help="natural-language puzzles for the --model arm")
    parser.add_argument("--only", help="run only the instances whose name contains this text")
    parser.add_argument("--time-limit", type=float, default=30, help="SolveCSP time_limit per solve (default 30 s)")
    args = parser.parse_args()
    factory = None
    if args.model:
        from plait import executors

        factory = getattr(executors, "backend_for", None)
        if factory is None:
            parser.error("--model needs the vLLM backend (plait.executors.backend_for), which this install lacks")
    results = measure(args.rounds, args.cpsat_workers, args.only, args.time_limit)
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
