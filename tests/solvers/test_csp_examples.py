"""The CSP examples: solutions checked against the puzzles' rules (independently of the solver), in process and
through `plait run` (the NL ones on their scripted stand-in model)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from plait import CSP, ScriptedBackend

ROOT = Path(__file__).resolve().parents[2]
PLAIT = str(Path(sys.executable).with_name("plait"))


def load(name):
    spec = importlib.util.spec_from_file_location(f"_csp_example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cli(target, value):
    done = subprocess.run([PLAIT, "run", f"examples/{target}", "--input", json.dumps(value)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def valid_sudoku(puzzle, rows):
    assert len(rows) == 9 and all(len(r) == 9 for r in rows)
    digits = set("123456789")
    assert all(set(r) == digits for r in rows)
    assert all({rows[r][c] for r in range(9)} == digits for c in range(9))
    assert all({rows[br + r][bc + c] for r in range(3) for c in range(3)} == digits
               for br in (0, 3, 6) for bc in (0, 3, 6))
    assert all(ch in ".0" or ch == rows[i // 9][i % 9] for i, ch in enumerate(puzzle))


@pytest.mark.parametrize("which", ["EASY", "HARD"])
def test_sudoku_solutions_obey_the_rules_and_the_givens(which):
    sudoku = load("sudoku")
    puzzle = getattr(sudoku, which)
    result = anyio.run(lambda: sudoku.graph.run({"puzzle": puzzle}, backend=ScriptedBackend([])))
    assert result.output["status"] == "sat"
    valid_sudoku(puzzle, result.output["grid"])


def test_sudoku_through_the_cli_and_a_contradictory_puzzle():
    sudoku = load("sudoku")
    valid_sudoku(sudoku.HARD, cli("sudoku.py:graph", {"puzzle": sudoku.HARD})["grid"])
    broken = "11" + sudoku.EASY[2:]
    assert cli("sudoku.py:graph", {"puzzle": broken}) == {"status": "unsat", "grid": None}


def no_attacks(columns):
    n = len(columns)
    assert sorted(columns) == list(range(n))
    assert all(abs(columns[i] - columns[j]) != j - i for i in range(n) for j in range(i + 1, n))


@pytest.mark.parametrize("n", [1, 4, 8, 16, 32])
def test_nqueens_places_non_attacking_queens(n):
    nqueens = load("nqueens")
    result = anyio.run(lambda: nqueens.graph.run({"n": n}))
    assert result.output["status"] == "sat"
    no_attacks(result.output["columns"])


def test_nqueens_unsat_and_cli():
    nqueens = load("nqueens")
    assert anyio.run(lambda: nqueens.graph.run({"n": 3})).output["status"] == "unsat"
    out = cli("nqueens.py:graph", {"n": 8})
    no_attacks(out["columns"])
    assert len(out["board"]) == 8


def check_zebra(solution):
    """Every clue, written independently of the CSP text."""
    house = solution
    assert all(sorted(house[n] for n in group) == [1, 2, 3, 4, 5] for group in load("zebra").GROUPS.values())
    next_to = lambda a, b: abs(house[a] - house[b]) == 1  # noqa: E731
    assert house["Englishman"] == house["Red"] and house["Spaniard"] == house["Dog"]
    assert house["Coffee"] == house["Green"] and house["Ukrainian"] == house["Tea"]
    assert house["Green"] == house["Ivory"] + 1 and house["OldGold"] == house["Snails"]
    assert house["Kools"] == house["Yellow"] and house["Milk"] == 3 and house["Norwegian"] == 1
    assert next_to("Chesterfield", "Fox") and next_to("Kools", "Horse") and next_to("Norwegian", "Blue")
    assert house["LuckyStrike"] == house["OrangeJuice"] and house["Japanese"] == house["Parliament"]
    assert house["Water"] == house["Norwegian"] and house["Zebra"] == house["Japanese"]


def test_zebra_from_natural_language_repairs_then_solves():
    zebra = load("zebra")
    backend = zebra.make_backend()
    result = anyio.run(lambda: zebra.graph.run({"problem": zebra.PUZZLE}, backend=backend))
    out = result.output
    assert out["status"] == "solved" and out["rounds"] == 2
    check_zebra(out["solution"])
    assert "Norwegian drinks water" in out["answer"]
    assert "under-constrained" in backend.requests[1].prompt[-1].content
    assert zebra.PUZZLE in backend.requests[0].prompt[-1].content


def test_zebra_through_the_cli_uses_make_backend():
    zebra = load("zebra")
    out = cli("zebra.py:graph", {"problem": zebra.PUZZLE})
    check_zebra(out["solution"])


def check_meetings(schedule, meetings):
    hours = {m: int(t.split(":")[0]) for m, t in schedule.items()}
    assert set(hours) == set(meetings) and all(9 <= h <= 16 for h in hours.values())
    for a in meetings:
        for b in meetings:
            if a < b and set(meetings[a]) & set(meetings[b]):
                assert hours[a] != hours[b], (a, b)
    assert all(hours[m] >= 10 for m in meetings if "Ann" in meetings[m])
    assert all(hours[m] + 1 <= 13 for m in meetings if "Cid" in meetings[m])
    assert hours["Hiring"] >= 13 and hours["Planning"] < hours["Design"]


def test_meetings_from_natural_language_retract_the_double_booking():
    meetings = load("meetings")
    result = anyio.run(lambda: meetings.graph.run({"problem": meetings.REQUEST}, backend=meetings.make_backend()))
    out = result.output
    assert out["status"] == "sat"
    check_meetings(out["schedule"], meetings.MEETINGS)
    assert out["retractions"] == [["Design", "Retro"]]
    assert out["schedule"]["Planning"] == "10:00" and out["schedule"]["Hiring"] == "14:00"  # kept from round 1
    events = [e.data for e in result.events if getattr(e, "name", None) == "retraction"]
    assert events[0]["variables"] == ["Design", "Retro"] and events[0]["values"] == {"Design": 11, "Retro": 11}
    assert CSP.model_validate(meetings.meetings_model()).violations({m: int(t[:-3]) for m, t in
                                                                     out["schedule"].items()}) == []


def test_meetings_through_the_cli():
    meetings = load("meetings")
    check_meetings(cli("meetings.py:graph", {"problem": meetings.REQUEST})["schedule"], meetings.MEETINGS)
