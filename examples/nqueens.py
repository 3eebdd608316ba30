"""N-Queens as a CSP: one queen per row, Q{i} is its column (no model needed).

Columns all different; no two queens on a diagonal: ``abs(Qi - Qj) != j - i``,
written in plait's safe constraint language. Run it:

    plait run examples/nqueens.py:graph --input '{"n": 8}'
"""

import anyio

from plait import CSP, Graph, SolveCSP
from plait.solvers import CSPResult


def queens_csp(n: int) -> CSP:
    """The N-Queens CSP for an n x n board."""
    if not 1 <= n <= 200:
        raise ValueError(f"n must be between 1 and 200, got {n}")
    names = [f"Q{i}" for i in range(n)]
    diagonals = [f"abs(Q{i} - Q{j}) != {j - i}" for i in range(n) for j in range(i + 1, n)]
    all_different = [{"kind": "all_different", "variables": names}] if n > 1 else []
    return CSP(variables=[{"name": q, "domain": {"min": 0, "max": n - 1}} for q in names],
               constraints=all_different + diagonals)


graph = Graph("nqueens", description="place n queens so that none attacks another")


@graph.node
def model(n: int) -> CSP:
    return queens_csp(n)


solver = graph.add(SolveCSP(time_limit=60))


@graph.node
def board(solve_csp: CSPResult) -> dict:
    """Columns per row and a drawing of the board."""
    if not solve_csp.solution:
        return {"status": solve_csp.status, "columns": None, "board": None}
    columns = list(solve_csp.solution.values())
    n = len(columns)
    drawing = ["".join("Q" if c == col else "." for c in range(n)) for col in columns]
    return {"status": solve_csp.status, "columns": columns, "board": drawing}


graph.chain(model, solver, board)


async def main() -> None:
    result = await graph.run({"n": 8})
    print("\n".join(result.output["board"]))


if __name__ == "__main__":
    anyio.run(main)
