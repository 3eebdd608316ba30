"""The python-constraint2 bridge: turn a :class:`CSP` into a ``constraint.Problem`` and search it.

Search uses python-constraint's ``BacktrackingSolver`` with forward checking:
it picks the next variable dynamically (most constraints first, then fewest
remaining values), which is what keeps hard Sudokus and N-Queens 32 fast.

Every solution is re-checked against the compiled constraints before it is
returned. A timeout truly stops the search, whatever the problem: the clock
(and the caller's ``stop`` event) is checked by a guard that comes first at
every assignment, by every constraint evaluation, propagator call and
preprocessing step, and between constraints while compiling (see
:mod:`plait.solvers._deadline`). :func:`in_worker` runs the search in a thread
of its own and, when its caller is cancelled, stops it and waits for it to
end, so no search keeps burning CPU after its result was given up on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
import constraint as pc
from pydantic import BaseModel

from plait.errors import ConstraintSyntaxError
from plait.solvers._compile import Check, compile_all
from plait.solvers._deadline import Deadline, Stopped
from plait.solvers._model import CSP

__all__ = ["CSPResult", "solve", "search", "solve_async", "in_worker", "result_for", "stop_reason", "WORKER_NAME"]

WORKER_NAME = "plait-solver"
"""The name of the thread :func:`in_worker` runs a search in (tests count them)."""
_GRACE = 2.0
"""Most seconds a cancelled caller waits for its search to notice ``stop`` (it takes milliseconds)."""

T = TypeVar("T")
Status = Literal["sat", "unsat", "timeout", "invalid"]


class CSPResult(BaseModel):
    """What a solve produced.

    ``status`` is ``sat`` when at least one solution was found, ``unsat`` when
    the search proved there is none, ``timeout`` when the deadline passed
    (or the caller cancelled) before any solution, ``invalid`` when the model
    could not be compiled (``error`` says why). ``exhaustive`` tells whether ``count`` is the exact
    number of solutions (all mode, search finished under the cap);
    ``timed_out`` is set whenever the deadline cut the search short, even if
    solutions were found before it. ``engine`` names the engine whose result
    this is; ``note`` says why another engine than the one asked for answered
    (a constraint it cannot express, a solution that failed plait's re-check).
    """

    status: Status
    solution: dict[str, int | str] | None = None
    solutions: list[dict[str, int | str]] = []
    count: int = 0
    exhaustive: bool = False
    timed_out: bool = False
    solve_time: float = 0.0
    error: str | None = None
    engine: str = "python-constraint"
    note: str | None = None


class _Guard(pc.Constraint):
    """Always satisfied; attached first to every variable, so each assignment consults the deadline."""

    def __init__(self, deadline: Deadline):
        self.deadline = deadline

    def __call__(self, variables, domains, assignments, forwardcheck=False, _unassigned=None) -> bool:
        self.deadline.check()
        return True

    def preProcess(self, variables, domains, constraints, vconstraints) -> None:  # noqa: N802 (library API)
        return None


def solve(
    csp: CSP,
    *,
    mode: Literal["one", "all"] = "one",
    max_solutions: int = 1000,
    timeout: float | None = None,
    fixed: Mapping[str, Any] | None = None,
    stop: threading.Event | None = None,
    engine: str = "python-constraint",
) -> CSPResult:
    """Compile and search ``csp`` in the calling thread; returns within about ``timeout`` seconds.

    ``mode="one"`` stops at the first solution; ``mode="all"`` collects up to
    ``max_solutions``. ``fixed`` pins variables to values (used to check a
    model's proposals). ``engine``: ``"python-constraint"`` (the default),
    ``"ortools"`` (CP-SAT) or ``"auto"`` (see :mod:`plait.solvers._engines`).
    Never raises for a bad model: returns ``invalid``; an unknown or missing
    engine raises :class:`~plait.errors.ConfigError`.
    """
    from plait.solvers._engines import check_engine, search_with

    check_engine(engine)
    started = time.perf_counter()
    deadline = Deadline(timeout, stop)
    try:
        checks = compile_all(csp, deadline)
    except ConstraintSyntaxError as exc:
        return result_for(csp, "invalid", [], started, error=str(exc))
    except Stopped:
        return result_for(csp, "timeout", [], started, timed_out=True, error=stop_reason(deadline))
    return search_with(engine, csp, checks, deadline, mode=mode, max_solutions=max_solutions, fixed=fixed,
                       started=started)


def search(csp: CSP, checks: list[Check], deadline: Deadline, *, mode: Literal["one", "all"] = "one",
           max_solutions: int = 1000, fixed: Mapping[str, Any] | None = None,
           started: float | None = None) -> CSPResult:
    """Search ``csp``'s variables under already compiled ``checks`` (all of them, or a subset) until ``deadline``."""
    started = time.perf_counter() if started is None else started
    limit = 1 if mode == "one" else max(1, max_solutions)
    found: list[dict] = []
    try:
        problem = _build(csp, checks, fixed or {}, deadline)
        if problem is None:  # a constant constraint is false, or a pinned value is outside its domain
            return result_for(csp, "unsat", [], started, exhaustive=True)
        for solution in problem.getSolutionIter():
            _verify(checks, solution, deadline)
            found.append(solution)
            if len(found) >= limit:
                break
        else:
            return result_for(csp, "sat" if found else "unsat", found, started, exhaustive=True)
    except Stopped:
        return result_for(csp, "sat" if found else "timeout", found, started, timed_out=True, error=stop_reason(deadline))
    except (_Unsound, ConstraintSyntaxError) as exc:
        return result_for(csp, "invalid", [], started, error=str(exc))
    except (ArithmeticError, TypeError, ValueError, RecursionError) as exc:  # a constraint failed to evaluate
        return result_for(csp, "invalid", found, started,
                       error=f"a constraint failed to evaluate: {type(exc).__name__}: {exc}")
    return result_for(csp, "sat", found, started)


def result_for(csp: CSP, status: Status, found: list[dict], started: float, **extra: Any) -> CSPResult:
    order = [v.name for v in csp.variables]
    found = [{name: s[name] for name in order} for s in found]
    return CSPResult(status=status, solution=found[0] if found else None, solutions=found, count=len(found),
                     solve_time=time.perf_counter() - started, **extra)


def stop_reason(deadline: Deadline) -> str:
    if deadline.stop is not None and deadline.stop.is_set():
        return "search was cancelled"
    return f"search stopped after {deadline.seconds:g}s (its time limit)"


async def solve_async(csp: CSP, **options: Any) -> CSPResult:
    """:func:`solve` in a worker thread; cancelling the caller stops the search at its next step."""
    return await in_worker(lambda stop: solve(csp, stop=stop, **options))


async def in_worker(fn: Callable[[threading.Event], T]) -> T:
    """Run ``fn(stop)`` in a thread of its own and return its result.

    When the caller is cancelled (node timeout, run deadline) ``stop`` is set,
    which every search started by ``fn`` checks at each step, and the caller
    waits (shielded, at most ``_GRACE`` seconds) for the thread to end: after
    this returns or raises, nothing of the search is left running.
    """
    stop = threading.Event()
    finished = anyio.Event()
    token = anyio.lowlevel.current_token()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn(stop)
        except BaseException as exc:  # handed to the caller
            outcome["error"] = exc
        finally:
            try:
                anyio.from_thread.run_sync(finished.set, token=token)
            except RuntimeError:  # the event loop is gone: nobody waits any more
                pass

    thread = threading.Thread(target=target, name=WORKER_NAME, daemon=True)
    thread.start()
    try:
        await finished.wait()
    finally:
        stop.set()
        with anyio.move_on_after(_GRACE, shield=True):
            await finished.wait()
        if finished.is_set():
            thread.join()  # it has only to return from ``target``
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class _Unsound(Exception):
    """The search returned an assignment that breaks a constraint (a bug, reported as ``invalid``)."""


def _verify(checks: list[Check], solution: dict[str, Any], deadline: Deadline) -> None:
    """Defence in depth: a solution that breaks a constraint is a solver bug, never an answer."""
    for check in checks:
        deadline.check()
        if check.variables and not check.holds(solution):
            raise _Unsound(f"the search returned {solution} which breaks constraint #{check.index}; "
                           "this is a bug in plait's solver bridge, please report it")


def _build(csp: CSP, checks: list[Check], fixed: Mapping[str, Any], deadline: Deadline) -> pc.Problem | None:
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
    if not deadline.unlimited:  # first, so every assignment consults it before any constraint can reject it
        problem.addConstraint(_Guard(deadline), [v.name for v in csp.variables])
    for check in checks:
        deadline.check()
        if not check.variables:  # a constant condition such as "1 == 2"
            if not check.predicate():
                return None
            continue
        problem.addConstraint(check.to_python_constraint(deadline), list(check.variables))
    return problem
