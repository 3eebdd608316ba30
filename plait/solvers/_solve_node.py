"""The ``SolveCSP`` node: a CSP model in, a :class:`CSPResult` out."""

from __future__ import annotations

from typing import Any, Literal

from plait.errors import ConfigError
from plait.orchestrator import Node, RunContext
from plait.solvers._bridge import CSPResult, solve_async
from plait.solvers._engines import Engine, check_engine
from plait.solvers._model import CSP

__all__ = ["SolveCSP"]


class SolveCSP(Node):
    """Solve a finite-domain CSP by backtracking search (python-constraint2) off the event loop.

    ``mode="one"`` finds one solution, ``mode="all"`` up to ``max_solutions``;
    ``time_limit`` (seconds) bounds compiling and searching whatever the
    problem: the clock is checked at every step, so the node returns
    ``timeout`` within milliseconds of the limit (the node ``timeout`` policy
    also works: cancelling the node stops the search, and the node waits for
    it to end). The result never raises for a bad or unsatisfiable model:
    read ``status``.
    ``engine``: ``"python-constraint"`` (default), ``"ortools"`` (CP-SAT, ``pip install 'plait[ortools]'``) or
    ``"auto"`` (CP-SAT for large or arithmetic-heavy problems when installed); every engine's solutions are
    re-checked by plait's evaluator, and ``result.note`` says when python-constraint answered instead.
    Emits a ``csp_solved`` event with status, count, solve time and engine.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        mode: Literal["one", "all"] = "one",
        max_solutions: int = 1000,
        time_limit: float | None = 30.0,
        engine: Engine = "python-constraint",
        **policy: Any,
    ):
        super().__init__(name or "solve_csp", **policy)
        if mode not in ("one", "all"):
            raise ConfigError(f"SolveCSP mode must be 'one' or 'all', got {mode!r}")
        self.mode = mode
        self.max_solutions = max_solutions
        self.time_limit = time_limit
        check_engine(engine)
        self.engine = engine

    async def run(self, csp: CSP, ctx: RunContext) -> CSPResult:
        result = await solve_async(csp, mode=self.mode, max_solutions=self.max_solutions, timeout=self.time_limit,
                                   engine=self.engine)
        ctx.emit("csp_solved", status=result.status, count=result.count, solve_time=result.solve_time,
                 error=result.error, engine=result.engine, note=result.note)
        return result
