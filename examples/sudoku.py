"""Sudoku 9x9 as a CSP, solved by plait's solver node (no model needed).

81 variables R1C1..R9C9 with domain 1..9 (a given digit pins its cell), and 27
all-different constraints (rows, columns, boxes). Run it:

    plait run examples/sudoku.py:graph \
        --input '{"puzzle": "8..........36......7..9.2...5...7.......457.....1...3...1....68..85...1..9....4.."}'

``.`` or ``0`` marks an empty cell. The default puzzle is Arto Inkala's
"world's hardest Sudoku" (2012).
"""

import anyio

from plait import CSP, Graph, SolveCSP
from plait.solvers import CSPResult

HARD = "8..........36......7..9.2...5...7.......457.....1...3...1....68..85...1..9....4.."
EASY = "..3.2.6..9..3.5..1..18.64....81.29..7.......8..67.82....26.95..8..2.3..9..5.1.3.."


def cell(r: int, c: int) -> str:
    return f"R{r + 1}C{c + 1}"


def sudoku_csp(puzzle: str) -> CSP:
    """The CSP of a puzzle given as 81 characters, row by row."""
    puzzle = "".join(puzzle.split())
    if len(puzzle) != 81 or any(ch not in ".0123456789" for ch in puzzle):
        raise ValueError(f"a puzzle is 81 characters of digits and '.', got {len(puzzle)} characters")
    variables = []
    for i, ch in enumerate(puzzle):
        domain = [int(ch)] if ch not in ".0" else {"min": 1, "max": 9}
        variables.append({"name": cell(i // 9, i % 9), "domain": domain})
    units = [[cell(r, c) for c in range(9)] for r in range(9)]
    units += [[cell(r, c) for r in range(9)] for c in range(9)]
    units += [[cell(br + r, bc + c) for r in range(3) for c in range(3)] for br in (0, 3, 6) for bc in (0, 3, 6)]
    return CSP(variables=variables, constraints=[{"kind": "all_different", "variables": u} for u in units])


graph = Graph("sudoku", description="9x9 Sudoku solved by backtracking search with forward checking")


@graph.node
def model(puzzle: str) -> CSP:
    """Puzzle text to CSP."""
    return sudoku_csp(puzzle)


solver = graph.add(SolveCSP(time_limit=60))


@graph.node
def grid(solve_csp: CSPResult) -> dict:
    """The solved grid as nine strings of digits."""
    rows = None
    if solve_csp.solution:
        rows = ["".join(str(solve_csp.solution[cell(r, c)]) for c in range(9)) for r in range(9)]
    return {"status": solve_csp.status, "grid": rows}


graph.chain(model, solver, grid)


async def main() -> None:
    result = await graph.run({"puzzle": HARD})
    print("\n".join(result.output["grid"] or [result.output["status"]]))


if __name__ == "__main__":
    anyio.run(main)
