"""Property: on random small CSPs, CP-SAT, z3 and python-constraint agree on status and on the exact solution set.

The CSPs mix integer and text variables and every constraint kind, with
arithmetic (``+ - * // % abs min max``, conditions used as numbers), chained
comparisons and ``and``/``or``/``not``. Hypothesis runs derandomized, so the
same examples run every time. Both engines are also checked against brute
force: the assignments that satisfy every constraint by plait's evaluator.
z3 states all of the language (Python's floor division, short-circuit
``and``/``or``), so it never falls back; CP-SAT falls back on divisions it
cannot state and says so.
"""

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait.solvers import CSP, solve

pytest.importorskip("ortools")
pytest.importorskip("z3")
ENGINES = ["ortools", "z3"]

INTS = ["A", "B", "C"]
COLORS = ["red", "blue", "green"]

terms = st.recursive(
    st.sampled_from(INTS + ["0", "1", "2", "-1", "(A < B)"]),
    lambda inner: st.tuples(inner, st.sampled_from(["+", "-", "*", "//", "%"]), inner).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})")
    | inner.map(lambda e: f"abs({e})")
    | st.tuples(st.sampled_from(["min", "max", "sum"]), st.lists(inner, min_size=1, max_size=3)).map(
        lambda t: f"{t[0]}({', '.join(t[1])})"),
    max_leaves=4,
)
comparisons = st.tuples(terms, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), terms).map(" ".join)
text_conditions = st.sampled_from(['D == "red"', 'D != "blue"', 'D == "purple"', '"red" == D', 'D != "green"'])
conditions = st.recursive(
    comparisons | text_conditions | st.tuples(terms, terms, terms).map(lambda t: f"{t[0]} <= {t[1]} < {t[2]}"),
    lambda inner: st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})")
    | inner.map(lambda c: f"not ({c})") | terms.map(lambda t: f"({t}) or (A == B)"),
    max_leaves=3,
)


@st.composite
def csps(draw):
    low = draw(st.sampled_from([-2, 0]))
    domains = draw(st.lists(st.lists(st.integers(low, 4), min_size=1, max_size=4, unique=True),
                            min_size=3, max_size=3))
    variables = [{"name": n, "domain": d} for n, d in zip(INTS, domains)]
    variables.append({"name": "D", "domain": draw(st.lists(st.sampled_from(COLORS), min_size=1, max_size=3,
                                                           unique=True))})
    constraints = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["expr", "expr", "alldiff", "table", "implies", "any_of", "sum", "compare"]))
        picked = draw(st.lists(st.sampled_from(INTS), min_size=2, max_size=3, unique=True))
        if kind == "expr":
            constraints.append(draw(conditions))
        elif kind == "compare":
            constraints.append({"kind": "compare", "left": draw(terms), "op": draw(st.sampled_from(["<", "!="])),
                                "right": draw(terms)})
        elif kind == "alldiff":
            constraints.append({"kind": "all_different", "variables": picked})
        elif kind == "table":
            cells = st.integers(-2, 4) | st.sampled_from(COLORS)
            names = picked + draw(st.lists(st.just("D"), max_size=1))
            rows = draw(st.lists(st.lists(cells, min_size=len(names), max_size=len(names)), max_size=6))
            constraints.append({"kind": "table", "variables": names, "rows": rows, "forbidden": draw(st.booleans())})
        elif kind == "implies":
            constraints.append({"kind": "implies", "if": draw(conditions), "then": draw(conditions)})
        elif kind == "any_of":
            constraints.append({"kind": "any_of", "conditions": draw(st.lists(conditions, min_size=1, max_size=3))})
        else:
            weights = draw(st.none() | st.lists(st.integers(-3, 3), min_size=len(picked), max_size=len(picked)))
            op = draw(st.sampled_from(["==", "!=", "<=", ">="]))
            constraints.append({"kind": "sum", "variables": picked, "weights": weights, "op": op,
                                "value": draw(st.integers(-3, 8))})
    return CSP(variables=variables, constraints=constraints)


def brute_force(csp: CSP) -> list[dict]:
    names = [v.name for v in csp.variables]
    found = []
    for values in itertools.product(*(v.values for v in csp.variables)):
        assignment = dict(zip(names, values))
        if not csp.violations(assignment):
            found.append(assignment)
    return found


def key(solutions: list[dict]) -> list[str]:
    return sorted(map(str, solutions))


@settings(max_examples=250, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(csps())
def test_engines_agree_on_status_and_solutions(csp):
    default = solve(csp, mode="all", max_solutions=10_000)
    expected = key(brute_force(csp))
    assert default.exhaustive and key(default.solutions) == expected
    for engine in ENGINES:
        other = solve(csp, mode="all", max_solutions=10_000, engine=engine)
        assert (other.status, other.exhaustive) == (default.status, True), engine
        assert key(other.solutions) == expected, engine
        if other.engine != engine:  # it fell back, and says why
            assert engine == "ortools" and other.engine == "python-constraint"
            assert other.note.startswith("ortools cannot express")
        else:
            assert other.note is None


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(csps())
def test_engines_agree_on_uniqueness(csp):
    """What Formulate asks: at most two solutions, to tell a unique answer from an under-constrained model."""
    default = solve(csp, mode="all", max_solutions=2)
    everything = set(key(brute_force(csp)))
    for engine in ENGINES:
        other = solve(csp, mode="all", max_solutions=2, engine=engine)
        assert (other.status, other.count) == (default.status, default.count), engine
        assert set(key(other.solutions)) <= everything
