"""The solver portfolio: engine choice, CP-SAT's translation, its deadline, the re-check and the fallback."""

import sys
import threading
import time

import anyio
import pytest

from plait import Graph
from plait.errors import ConfigError
from plait.solvers import CSP, SolveCSP, solve, solve_async
from plait.solvers import _engine_ortools, _engines
from plait.solvers._bridge import CSPResult, WORKER_NAME
from plait.solvers._compile import compile_all
from plait.solvers._deadline import Deadline

pytest.importorskip("ortools")
pytest.importorskip("z3")

LETTERS = "SENDMORY"
SEND_MORE = CSP(
    variables=[{"name": n, "domain": {"min": 0, "max": 9}} for n in LETTERS],
    constraints=[{"kind": "all_different", "variables": list(LETTERS)}, "S != 0", "M != 0",
                 "1000*S + 100*E + 10*N + D + 1000*M + 100*O + 10*R + E == 10000*M + 1000*O + 100*N + 10*E + Y"])
SEATING = CSP(variables=[{"name": n, "domain": {"min": 1, "max": 3}} for n in ("Ann", "Bob", "Cid")],
              constraints=[{"kind": "all_different", "variables": ["Ann", "Bob", "Cid"]}, "Ann != 1", "Bob + 1 == Cid"])


def test_cpsat_solves_a_cryptarithm_itself():
    result = solve(SEND_MORE, mode="all", engine="ortools")
    assert (result.status, result.count, result.exhaustive) == ("sat", 1, True)
    assert (result.engine, result.note) == ("ortools", None)
    assert result.solution == {"S": 9, "E": 5, "N": 6, "D": 7, "M": 1, "O": 0, "R": 8, "Y": 2}


def test_auto_picks_cpsat_for_arithmetic_and_python_constraint_for_small_puzzles():
    assert _engines.choose(SEND_MORE, "auto") == "ortools"
    assert _engines.choose(SEATING, "auto") == "python-constraint"
    wide = CSP(variables=[{"name": "X", "domain": {"min": 0, "max": 999}}], constraints=["X == 7"])
    assert _engines.choose(wide, "auto") == "ortools"
    many = CSP(variables=[{"name": f"V{i}", "domain": [0, 1]} for i in range(_engines.LARGE_VARIABLES)])
    assert _engines.choose(many, "auto") == "ortools"
    assert solve(SEND_MORE, engine="auto").engine == "ortools"
    assert solve(SEATING, engine="auto").engine == "python-constraint"
    assert solve(SEATING).engine == "python-constraint"  # the default engine stays python-constraint


def test_text_values_tables_and_pinned_values():
    csp = CSP(variables=[{"name": "Color", "domain": ["red", "blue", "green"]},
                         {"name": "Pet", "domain": ["cat", "dog"]}, {"name": "N", "domain": [1, 2, 3]}],
              constraints=[{"kind": "table", "variables": ["Color", "N"], "rows": [["red", 1], ["blue", 2], [3, 3]]},
                           {"kind": "implies", "if": 'Pet == "cat"', "then": 'Color != "red"'}])
    result = solve(csp, mode="all", engine="ortools")
    assert result.engine == "ortools"
    assert sorted(map(str, result.solutions)) == sorted(map(str, solve(csp, mode="all").solutions))
    assert solve(csp, mode="all", engine="ortools", fixed={"Pet": "cat"}).solutions == [
        {"Color": "blue", "Pet": "cat", "N": 2}]
    assert solve(csp, engine="ortools", fixed={"N": 3}).status == "unsat"
    assert solve(csp, engine="ortools", fixed={"Pet": 7}).status == "unsat"


def test_unknown_pinned_variable_is_invalid_on_both_engines():
    for engine in ("python-constraint", "ortools"):
        result = solve(SEATING, engine=engine, fixed={"Dan": 1})
        assert result.status == "invalid" and "Dan" in result.error


def key(solutions):
    return sorted(map(str, solutions))


def test_what_cpsat_cannot_express_falls_back_and_says_so():
    csp = CSP(variables=[{"name": "A", "domain": [-3, 4]}, {"name": "B", "domain": [0, 2]}],
              constraints=["A // 2 == -2 or B % 2 == 1", "(A or B) + B >= 1"])
    result = solve(csp, mode="all", engine="ortools")
    assert result.engine == "python-constraint"
    assert result.note.startswith("ortools cannot express") and "python-constraint searched instead" in result.note
    assert result.solutions == solve(csp, mode="all").solutions


def test_huge_intermediate_values_fall_back():
    big = CSP(variables=[{"name": n, "domain": [1, 2, 10**12]} for n in "AB"], constraints=["A * B * A == 8"])
    result = solve(big, mode="all", engine="ortools", timeout=10)
    assert "beyond CP-SAT's range" in result.note and result.engine == "python-constraint"
    assert result.solutions == [{"A": 2, "B": 2}]


def test_a_solution_that_breaks_a_constraint_is_never_trusted(monkeypatch):
    """An engine whose answer plait's evaluator rejects (a translation bug) is overruled by python-constraint."""
    def unsound(csp, checks, deadline, **options):
        return CSPResult(status="sat", solution={"Ann": 1, "Bob": 1, "Cid": 1},
                         solutions=[{"Ann": 1, "Bob": 1, "Cid": 1}], count=1, engine="ortools")

    monkeypatch.setattr(_engine_ortools, "search", unsound)
    result = solve(SEATING, mode="all", engine="ortools")
    assert result.solutions == [{"Ann": 3, "Bob": 1, "Cid": 2}] and result.engine == "python-constraint"
    assert "which breaks constraint #0" in result.note


def test_recheck_names_the_broken_constraint():
    checks = compile_all(SEATING)
    good = CSPResult(status="sat", solutions=[{"Ann": 3, "Bob": 1, "Cid": 2}], engine="ortools")
    bad = CSPResult(status="sat", solutions=[{"Ann": 2, "Bob": 1, "Cid": 3}], engine="ortools")
    assert _engines._recheck(good, checks, Deadline()) is None
    assert _engines._recheck(bad, checks, Deadline()) == \
        "ortools returned {'Ann': 2, 'Bob': 1, 'Cid': 3}, which breaks constraint #2"


FREE = CSP(variables=[{"name": f"X{i}", "domain": {"min": 0, "max": 9}} for i in range(10)])


@pytest.mark.parametrize("engine", ["ortools", "z3"])
def test_time_limit_holds_inside_the_engine(engine):
    """10**10 assignments cannot be enumerated in 0.5 s: the engine stops at its limit with what it found."""
    started = time.monotonic()
    result = solve(FREE, mode="all", max_solutions=10**9, timeout=0.5, engine=engine)
    assert time.monotonic() - started < 10  # ended, not hung
    assert result.engine == engine and result.status == "sat" and result.timed_out and not result.exhaustive
    assert result.error == "search stopped after 0.5s (its time limit)"


@pytest.mark.parametrize("engine", ["ortools", "z3"])
def test_cancelling_the_caller_stops_the_engine(engine):
    async def main():
        with anyio.move_on_after(0.5):
            await solve_async(FREE, mode="all", max_solutions=10**9, timeout=None, engine=engine)

    started = time.monotonic()
    anyio.run(main)
    assert time.monotonic() - started < 10
    alive = [t.name for t in threading.enumerate() if t.name in (WORKER_NAME, "plait-cpsat-stop", "plait-z3-stop")]
    assert alive == []


def test_z3_states_python_division_and_short_circuits_without_falling_back():
    csp = CSP(variables=[{"name": "A", "domain": [-7, -3, 0, 5]}, {"name": "B", "domain": [-2, 0, 3]},
                         {"name": "C", "domain": ["x", "y"]}],
              constraints=["B == 0 or A // B == -2 or A % B == 1", "(A or B) != 0", 'C == "x" or (B < A) + 1 == 2'])
    result = solve(csp, mode="all", engine="z3")
    assert (result.engine, result.note, result.exhaustive) == ("z3", None, True)
    expected = solve(csp, mode="all")
    assert key(result.solutions) == key(expected.solutions) and expected.count == 4
    money = solve(SEND_MORE, mode="all", engine="z3")
    assert money.solutions == solve(SEND_MORE, mode="all", engine="ortools").solutions and money.engine == "z3"


def test_bad_engines_are_one_line_errors(monkeypatch):
    with pytest.raises(ConfigError, match=r"unknown solver engine 'gurobi'; use one of: python-constraint, ortools"):
        solve(SEATING, engine="gurobi")
    with pytest.raises(ConfigError, match="unknown solver engine"):
        SolveCSP(engine="gurobi")
    monkeypatch.setitem(sys.modules, "ortools.sat.python.cp_model", None)  # as if OR-Tools were not installed
    with pytest.raises(ConfigError, match=r"needs OR-Tools, which is not installed: pip install 'plait\[ortools\]'"):
        solve(SEATING, engine="ortools")
    assert solve(SEND_MORE, engine="auto").engine == "z3"  # auto takes z3 for arithmetic when CP-SAT is missing
    monkeypatch.setitem(sys.modules, "z3", None)
    with pytest.raises(ConfigError, match=r"needs z3-solver, which is not installed: pip install 'plait\[z3\]'"):
        SolveCSP(engine="z3")
    assert solve(SEND_MORE, engine="auto").engine == "python-constraint"  # auto never needs either


def test_solve_node_reports_the_engine():
    g = Graph("portfolio")
    g.add(SolveCSP(mode="all", engine="auto"))
    result = g.run_sync({"csp": SEND_MORE})
    assert result.output.engine == "ortools" and result.output.count == 1
    events = [e for e in result.events if getattr(e, "name", None) == "csp_solved"]
    assert events and events[0].data["engine"] == "ortools"


@pytest.mark.parametrize("engine", ["ortools", "z3"])
def test_hostile_sizes_keep_the_time_limit(engine):
    """Long listed domains and a 200,000-row table: translation checks the clock too, so 1 s stays about 1 s."""
    listed = CSP(variables=[{"name": f"V{i}", "domain": list(range(0, 200_000, 2))} for i in range(3)],
                 constraints=["V0 + V1 == V2 + 1"])
    table = CSP(variables=[{"name": f"V{i}", "domain": {"min": 0, "max": 99_999}} for i in range(2)],
                constraints=[{"kind": "table", "variables": ["V0", "V1"], "rows": [[i, i + 1] for i in range(200_000)]},
                             "V0 * V1 == 41"])
    for csp in (listed, table):
        started = time.monotonic()
        result = solve(csp, engine=engine, timeout=1)
        assert time.monotonic() - started < 10  # ended, not hung
        assert result.status in ("unsat", "timeout")  # neither has a solution: V0 + V1 is even; 41 is prime


def test_z3_refuses_listed_domains_of_many_runs_and_python_constraint_answers():
    csp = CSP(variables=[{"name": "V", "domain": list(range(0, 4000, 2))}], constraints=["V == 3998"])
    result = solve(csp, engine="z3")
    assert result.solution == {"V": 3998} and result.engine == "python-constraint"
    assert "2000 separate runs" in result.note
    runs = CSP(variables=[{"name": "V", "domain": [*range(0, 3000), *range(5000, 9000)]}], constraints=["V > 8990"])
    assert solve(runs, engine="z3", mode="all").count == 9 and solve(runs, engine="z3").engine == "z3"
