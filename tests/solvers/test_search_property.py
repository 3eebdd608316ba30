"""Property: on random small CSPs the search finds exactly the assignments that satisfy every constraint."""

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait.solvers import CSP, solve

NAMES = ["A", "B", "C", "D"]

terms = st.recursive(
    st.sampled_from(NAMES + ["0", "1", "2", "-1"]),
    lambda inner: st.tuples(inner, st.sampled_from(["+", "-", "*", "//", "%"]), inner).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})") | inner.map(lambda e: f"abs({e})"),
    max_leaves=4,
)
conditions = st.tuples(terms, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), terms).map(" ".join)


@st.composite
def csps(draw):
    domains = draw(st.lists(st.lists(st.integers(-2, 4), min_size=1, max_size=4, unique=True),
                            min_size=4, max_size=4))
    constraints = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["expr", "alldiff", "table", "implies", "any_of", "sum"]))
        picked = draw(st.lists(st.sampled_from(NAMES), min_size=2, max_size=4, unique=True))
        if kind == "expr":
            constraints.append(draw(conditions))
        elif kind == "alldiff":
            constraints.append({"kind": "all_different", "variables": picked})
        elif kind == "table":
            rows = draw(st.lists(st.lists(st.integers(-2, 4), min_size=len(picked), max_size=len(picked)),
                                 max_size=6))
            constraints.append({"kind": "table", "variables": picked, "rows": rows, "forbidden": draw(st.booleans())})
        elif kind == "implies":
            constraints.append({"kind": "implies", "if": draw(conditions), "then": draw(conditions)})
        elif kind == "any_of":
            constraints.append({"kind": "any_of", "conditions": draw(st.lists(conditions, min_size=1, max_size=3))})
        else:
            constraints.append({"kind": "sum", "variables": picked, "op": draw(st.sampled_from(["==", "<=", ">="])),
                                "value": draw(st.integers(-3, 8))})
    return CSP(variables=[{"name": n, "domain": d} for n, d in zip(NAMES, domains)], constraints=constraints)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csps())
def test_search_is_sound_and_complete(csp):
    expected = []
    for values in itertools.product(*(v.values for v in csp.variables)):
        assignment = dict(zip(NAMES, values))
        if not csp.violations(assignment):
            expected.append(assignment)
    result = solve(csp, mode="all", max_solutions=10_000)
    assert result.exhaustive
    assert sorted(map(str, result.solutions)) == sorted(map(str, expected))
    assert result.status == ("sat" if expected else "unsat")
