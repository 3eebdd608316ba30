"""The solver portfolio: which engine searches a CSP, and why its answer can be trusted.

python-constraint2 (always installed) is the default. OR-Tools CP-SAT
(``pip install 'plait[ortools]'``) and z3 (``pip install 'plait[z3]'``) are
optional: a clause-learning CP solver and an SMT solver, much faster on large
problems and on arithmetic (products, weighted sums, wide domains), where
backtracking with forward checking enumerates. ``engine="auto"`` picks CP-SAT
for those when it is installed, else z3 for arithmetic-heavy ones.

Every engine gets the same deadline and answers with the same
:class:`~plait.solvers.CSPResult` statuses. A solution any engine returns is
re-checked by plait's own evaluator (the compiled constraints) before it is
trusted; when the re-check fails, or the engine cannot express a constraint
with plait's meaning, python-constraint answers instead and ``note`` says why.
"""

from __future__ import annotations

import ast
import importlib
import time
from collections.abc import Collection, Mapping
from typing import Any, Literal

from plait.errors import ConfigError
from plait.solvers._bridge import CSPResult, result_for, search, stop_reason
from plait.solvers._compile import Check
from plait.solvers._deadline import Deadline, Stopped
from plait.solvers._model import CSP, AnyOf, Compare, Expression, Implies, IntRange, Sum

__all__ = ["Engine", "ENGINES", "Unsupported", "check_engine", "choose", "search_with"]

Engine = Literal["python-constraint", "ortools", "z3", "auto"]
ENGINES = ("python-constraint", "ortools", "z3", "auto")
_MODULES = {"ortools": "ortools.sat.python.cp_model", "z3": "z3"}
_PACKAGES = {"ortools": "OR-Tools", "z3": "z3-solver"}
LARGE_VARIABLES = 40
"""``auto``: a CSP with at least this many variables counts as large."""
LARGE_DOMAIN = 200
"""``auto``: a domain of at least this many values counts as wide (enumerating it is slow)."""
ARITHMETIC = 3
"""``auto``: this many products, divisions, powers or weighted sums make a CSP arithmetic-heavy."""


class Unsupported(Exception):
    """A constraint an engine cannot state with plait's meaning (or a problem it gave up on); the message says which."""


def installed(engine: str) -> bool:
    module = _MODULES.get(engine)
    if module is None:
        return True
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def check_engine(engine: str) -> None:
    """Raise :class:`ConfigError` for an unknown engine, or one that is not installed."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown solver engine {engine!r}; use one of: {', '.join(ENGINES)}")
    if not installed(engine):
        raise ConfigError(f"solver engine {engine!r} needs {_PACKAGES[engine]}, which is not installed: "
                          f"pip install 'plait[{engine}]'")


def choose(csp: CSP, engine: str) -> str:
    """The engine that searches ``csp``: ``engine`` itself, or for ``auto`` CP-SAT on a large or
    arithmetic-heavy problem when it is installed (else z3 on an arithmetic-heavy one), else python-constraint."""
    check_engine(engine)
    if engine != "auto":
        return engine
    arithmetic = _arithmetic(csp) >= ARITHMETIC
    if installed("ortools") and (arithmetic or _large(csp)):
        return "ortools"
    if installed("z3") and arithmetic:
        return "z3"
    return "python-constraint"


def _large(csp: CSP) -> bool:
    if len(csp.variables) >= LARGE_VARIABLES:
        return True
    return any((v.domain.max - v.domain.min + 1 if isinstance(v.domain, IntRange) else len(v.domain)) >= LARGE_DOMAIN
               for v in csp.variables)


def _arithmetic(csp: CSP) -> int:
    """Products, divisions and powers in constraint text, plus weighted sums (stops counting at ``ARITHMETIC``)."""
    count = 0
    for c in csp.constraints:
        if isinstance(c, Sum):
            count += c.weights is not None and any(w != 1 for w in c.weights)
            continue
        for text in _texts(c):
            try:
                tree = ast.parse(text.strip(), mode="eval")
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue  # compiling reports it
            count += sum(isinstance(n, (ast.Mult, ast.FloorDiv, ast.Mod, ast.Pow)) for n in ast.walk(tree))
        if count >= ARITHMETIC:
            break
    return count


def _texts(c: Any) -> list[str]:
    if isinstance(c, Expression):
        return [c.expression]
    if isinstance(c, Compare):
        return [c.left, c.right]
    if isinstance(c, Implies):
        return [c.if_, c.then]
    return list(c.conditions) if isinstance(c, AnyOf) else []


def search_with(engine: str, csp: CSP, checks: list[Check], deadline: Deadline, *,
                mode: Literal["one", "all"] = "one", max_solutions: int = 1000,
                fixed: Mapping[str, Any] | None = None, started: float | None = None) -> CSPResult:
    """Search ``csp`` under compiled ``checks`` with the chosen engine (see :func:`choose`) until ``deadline``."""
    name = choose(csp, engine)
    options: dict[str, Any] = {"mode": mode, "max_solutions": max_solutions, "fixed": fixed, "started": started}
    if name == "python-constraint":
        return search(csp, checks, deadline, **options)
    if name == "z3":
        from plait.solvers import _engine_z3 as module
    else:
        from plait.solvers import _engine_ortools as module  # type: ignore[no-redef]
    started = time.perf_counter() if started is None else started
    options["started"] = started
    try:
        result = module.search(csp, checks, deadline, **options)
        problem = _recheck(result, checks, deadline)
    except Unsupported as exc:
        problem = f"{name} cannot express {exc}"
    except Stopped:  # the deadline passed while re-checking: nothing unchecked is returned
        return result_for(csp, "timeout", [], started, timed_out=True, engine=name, error=stop_reason(deadline))
    if problem is None:
        return result
    fallback = search(csp, checks, deadline, **options)
    return fallback.model_copy(update={"note": f"{problem}; python-constraint searched instead"})


def refuse_fixed(csp: CSP, fixed: Mapping[str, Any], known: Mapping[str, Any], text: Collection[str],
                 started: float, engine: str) -> CSPResult | None:
    """The result for ``fixed`` values an engine cannot pin (an unknown name: ``invalid``; a text value for a
    number variable or the reverse: ``unsat``), or None when every one can be pinned."""
    for name, value in fixed.items():
        if name not in known:
            return result_for(csp, "invalid", [], started, engine=engine, error=f"cannot fix unknown variable {name!r}")
        if isinstance(value, str) != (name in text):
            return result_for(csp, "unsat", [], started, exhaustive=True, engine=engine)
    return None


def _recheck(result: CSPResult, checks: list[Check], deadline: Deadline) -> str | None:
    """Why ``result`` cannot be trusted (a solution breaks a constraint by plait's evaluator), or None."""
    for solution in result.solutions:
        for check in checks:
            deadline.check()
            try:
                holds = check.holds(solution)
            except (ArithmeticError, TypeError, ValueError, RecursionError) as exc:
                return f"{result.engine} returned {solution}, on which constraint #{check.index} fails to " \
                       f"evaluate ({type(exc).__name__})"
            if not holds:
                return f"{result.engine} returned {solution}, which breaks constraint #{check.index}"
    return None
