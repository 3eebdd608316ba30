"""The python-constraint2 bridge: turn a :class:`CSP` into a ``constraint.Problem`` and search it.

Search uses python-constraint's ``BacktrackingSolver`` with forward checking:
it picks the next variable dynamically (most constraints first, then fewest
remaining values), which is what keeps hard Sudokus and N-Queens 32 fast.

Every solution is re-checked against the compiled constraints before it is
returned. A timeout truly stops the search: a guard constraint attached to every
variable is consulted at each assignment and raises once the deadline passes
or the caller sets the ``stop`` event, so no search keeps burning CPU after
its result was given up on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

import anyio.to_thread
import constraint as pc
from pydantic import BaseModel

from plait.errors import ConstraintSyntaxError
from plait.solvers._compile import Check, compile_all
from plait.solvers._model import CSP

__all__ = ["CSPResult", "solve", "solve_async", "in_worker"]

T = TypeVar("T")
Status = Literal["sat", "unsat", "timeout", "invalid"]


class CSPResult(BaseModel):
    """What a solve produced.

    ``status`` is ``sat`` when at least one solution was found, ``unsat`` when
    the search proved there is none, ``timeout`` when the deadline passed
    before any solution, ``invalid`` when the model could not be compiled
    (``error`` says why). ``exhaustive`` tells whether ``count`` is the exact
    number of solutions (all mode, search finished under the cap);
    ``timed_out`` is set whenever the deadline cut the search short, even if
    solutions were found before it.
    """

    status: Status
    solution: dict[str, int | str] | None = None
    solutions: list[dict[str, int | str]] = []
    count: int = 0
    exhaustive: bool = False
    timed_out: bool = False
    solve_time: float = 0.0
    error: str | None = None


class _Stopped(Exception):
    """Raised by the guard to unwind the search."""


class _Guard(pc.Constraint):
    """Always satisfied; stops the search when the deadline passes or ``stop`` is set."""

    def __init__(self, deadline: float | None, stop: threading.Event | None):
        self.deadline = deadline
        self.stop = stop

    def __call__(self, variables, domains, assignments, forwardcheck=False, _unassigned=None) -> bool:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise _Stopped
        if self.stop is not None and self.stop.is_set():
            raise _Stopped
        return True

    def preProcess(self, variables, domains, constraints, vconstraints) -> None:
        return None


def solve(
    csp: CSP,
    *,
    mode: Literal["one", "all"] = "one",
    max_solutions: int = 1000,
    timeout: float | None = None,
    fixed: Mapping[str, Any] | None = None,
    stop: threading.Event | None = None,
) -> CSPResult:
    """Search ``csp`` in the calling thread.

    ``mode="one"`` stops at the first solution; ``mode="all"`` collects up to
    ``max_solutions``. ``fixed`` pins variables to values (used to check a
    model's proposals). Never raises for a bad model: returns ``invalid``.
    """
    started = time.perf_counter()
    deadline = None if timeout is None else time.monotonic() + timeout

    def done(status: Status, found: list[dict], exhaustive: bool = False, **extra: Any) -> CSPResult:
        order = [v.name for v in csp.variables]
        found = [{name: s[name] for name in order} for s in found]
        return CSPResult(status=status, solution=found[0] if found else None, solutions=found, count=len(found),
                         exhaustive=exhaustive, solve_time=time.perf_counter() - started, **extra)

    try:
        checks = compile_all(csp)
        problem = _build(csp, checks, fixed or {}, deadline, stop)
    except ConstraintSyntaxError as exc:
        return done("invalid", [], error=str(exc))
    if problem is None:  # a constant constraint is false, or a pinned value is outside its domain
        return done("unsat", [], exhaustive=True)
    limit = 1 if mode == "one" else max(1, max_solutions)
    found: list[dict] = []
    try:
        for solution in problem.getSolutionIter():
            _verify(checks, solution)
            found.append(solution)
            if len(found) >= limit:
                break
        else:
            return done("sat" if found else "unsat", found, exhaustive=True)
    except _Stopped:
        why = f"search stopped after {timeout:g}s" if timeout is not None else "search was cancelled"
        return done("sat" if found else "timeout", found, timed_out=True, error=why)
    except _Unsound as exc:
        return done("invalid", [], error=str(exc))
    except (ArithmeticError, TypeError, ValueError, RecursionError) as exc:  # a constraint failed to evaluate
        return done("invalid", found, error=f"a constraint failed to evaluate: {type(exc).__name__}: {exc}")
    return done("sat", found, exhaustive=False)


async def solve_async(csp: CSP, **options: Any) -> CSPResult:
    """:func:`solve` in a worker thread; cancelling the caller stops the search at its next step."""
    return await in_worker(lambda stop: solve(csp, stop=stop, **options))


async def in_worker(fn: Callable[[threading.Event], T]) -> T:
    """Run ``fn(stop)`` in a worker thread. When the caller is cancelled (node timeout, run deadline) it
    returns at once and ``stop`` is set, which every search started by ``fn`` checks at each step."""
    stop = threading.Event()
    try:
        return await anyio.to_thread.run_sync(lambda: fn(stop), abandon_on_cancel=True)
    finally:
        stop.set()


class _Unsound(Exception):
    """The search returned an assignment that breaks a constraint (a bug, reported as ``invalid``)."""


def _verify(checks: list[Check], solution: dict[str, Any]) -> None:
    """Defence in depth: a solution that breaks a constraint is a solver bug, never an answer."""
    for check in checks:
        if check.variables and not check.holds(solution):
            raise _Unsound(f"the search returned {solution} which breaks constraint #{check.index}; "
                           "this is a bug in plait's solver bridge, please report it")


def _build(csp: CSP, checks: list[Check], fixed: Mapping[str, Any], deadline: float | None,
           stop: threading.Event | None) -> pc.Problem | None:
    unknown = [name for name in fixed if name not in csp.kinds]
    if unknown:
        raise ConstraintSyntaxError(f"cannot fix unknown variable(s) {', '.join(map(repr, unknown))}")
    problem = pc.Problem(pc.BacktrackingSolver(forwardcheck=True))
    for var in csp.variables:
        values = var.values
        if var.name in fixed:
            if fixed[var.name] not in values:
                return None
            values = [fixed[var.name]]
        problem.addVariable(var.name, values)
    for check in checks:
        if not check.variables:  # a constant condition such as "1 == 2"
            if not check.predicate():
                return None
            continue
        problem.addConstraint(check.to_python_constraint(), list(check.variables))
    if deadline is not None or stop is not None:
        problem.addConstraint(_Guard(deadline, stop), [v.name for v in csp.variables])
    return problem
