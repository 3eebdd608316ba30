"""The OR-Tools CP-SAT engine: a :class:`CSP` translated (:mod:`plait.solvers._ortools_model`) and solved.

The deadline holds inside the engine: translation checks it between
constraints, CP-SAT gets the time left as ``max_time_in_seconds``, and a
watcher stops the search as soon as the caller's ``stop`` event is set.
Enumeration (``mode="all"``) keeps each distinct assignment of the CSP's
variables once and stops at ``max_solutions``. One search worker: the
machines plait targets run several things at once, and one worker is
deterministic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any, Literal

from ortools.sat.python import cp_model as cp

from plait.solvers._bridge import CSPResult, result_for, stop_reason
from plait.solvers._compile import Check
from plait.solvers._deadline import Deadline, Stopped
from plait.solvers._engines import Unsupported, refuse_fixed
from plait.solvers._model import CSP
from plait.solvers._ortools_model import Translator

__all__ = ["search"]


class _Collector(cp.CpSolverSolutionCallback):
    """Keeps each distinct assignment of the CSP's variables; stops the search at ``limit``."""

    def __init__(self, variables: dict[str, Any], decode: dict[str, dict[int, str]], limit: int):
        super().__init__()
        self.variables, self.decode, self.limit = variables, decode, limit
        self.found: dict[tuple, dict[str, Any]] = {}

    def on_solution_callback(self) -> None:
        values = {n: self.value(v) for n, v in self.variables.items()}
        solution = {n: self.decode[n][x] if n in self.decode else x for n, x in values.items()}
        self.found.setdefault(tuple(values.values()), solution)
        if len(self.found) >= self.limit:
            self.stop_search()


def search(csp: CSP, checks: list[Check], deadline: Deadline, *, mode: Literal["one", "all"] = "one",
           max_solutions: int = 1000, fixed: Mapping[str, Any] | None = None,
           started: float | None = None) -> CSPResult:
    """Translate and solve ``csp`` with CP-SAT until ``deadline``; raises :class:`Unsupported` when a
    constraint cannot be translated. Solutions are not verified here (the portfolio does that)."""
    started = time.perf_counter() if started is None else started
    limit = 1 if mode == "one" else max(1, max_solutions)
    try:
        t = Translator(csp, deadline)
        refused = refuse_fixed(csp, fixed or {}, t.vars, t.text, started, "ortools")
        if refused is not None:
            return refused
        for name, value in (fixed or {}).items():
            t.m.add(t.vars[name] == t.encode(value))
        for check in checks:
            deadline.check()
            t.add(csp.constraints[check.index])
        deadline.check()
    except Stopped:
        return result_for(csp, "timeout", [], started, timed_out=True, engine="ortools", error=stop_reason(deadline))
    decode = {n: {code: text for text, code in t.codes.items()} for n in t.text}
    collector = _Collector(t.vars, decode, limit)
    solver = cp.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.enumerate_all_solutions = mode == "all"
    if deadline.at is not None:
        solver.parameters.max_time_in_seconds = max(0.001, deadline.at - time.monotonic())
    status = _solve_stoppable(solver, t.m, collector, deadline.stop)
    found = list(collector.found.values())
    if status == cp.MODEL_INVALID:
        raise Unsupported(f"a model CP-SAT refuses ({solver.response_proto.solution_info or 'model invalid'})")
    if status == cp.INFEASIBLE:
        return result_for(csp, "unsat", [], started, exhaustive=True, engine="ortools")
    if len(found) >= limit:
        return result_for(csp, "sat", found, started, engine="ortools")
    if status == cp.OPTIMAL:  # the search space was exhausted
        return result_for(csp, "sat" if found else "unsat", found, started, exhaustive=True, engine="ortools")
    return result_for(csp, "sat" if found else "timeout", found, started, timed_out=True, engine="ortools",
                      error=stop_reason(deadline))


def _solve_stoppable(solver: cp.CpSolver, model: cp.CpModel, collector: _Collector,
                     stop: threading.Event | None) -> Any:
    """``solver.solve``, stopped from a watcher thread as soon as ``stop`` is set."""
    if stop is None:
        return solver.solve(model, collector)
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.01):
            if stop.is_set():
                solver.stop_search()
                return

    watcher = threading.Thread(target=watch, name="plait-cpsat-stop", daemon=True)
    watcher.start()
    try:
        return solver.solve(model, collector)
    finally:
        done.set()
        watcher.join()

