"""CSP model to python-constraint2 translation, for every constraint kind, and solve statuses."""

import itertools
import threading
import time

import anyio
import pytest
from pydantic import ValidationError

from plait import Graph, ScriptedBackend
from plait.solvers import CSP, SolveCSP, solve, solve_async


def brute_force(csp: CSP, predicate) -> list[dict]:
    names = [v.name for v in csp.variables]
    out = []
    for values in itertools.product(*(v.values for v in csp.variables)):
        assignment = dict(zip(names, values))
        if predicate(assignment):
            out.append(assignment)
    return out


def key(solutions):
    return sorted(tuple(sorted(s.items())) for s in solutions)


XYZ = [{"name": n, "domain": {"min": -2, "max": 3}} for n in "XYZ"]

KINDS = [
    ({"kind": "all_different", "variables": ["X", "Y", "Z"]}, lambda s: len({s["X"], s["Y"], s["Z"]}) == 3),
    ({"kind": "compare", "left": "X * Y", "op": ">=", "right": "Z + 1"}, lambda s: s["X"] * s["Y"] >= s["Z"] + 1),
    ({"kind": "compare", "left": "X", "op": "==", "right": "Y"}, lambda s: s["X"] == s["Y"]),
    ({"kind": "compare", "left": "X", "op": "!=", "right": "Y"}, lambda s: s["X"] != s["Y"]),
    ({"kind": "expression", "expression": "abs(X - Y) // 2 == Z % 3"},
     lambda s: abs(s["X"] - s["Y"]) // 2 == s["Z"] % 3),
    ("min(X, Y) < max(Y, Z) - 1", lambda s: min(s["X"], s["Y"]) < max(s["Y"], s["Z"]) - 1),
    ({"kind": "sum", "variables": ["X", "Y", "Z"], "op": "==", "value": 2}, lambda s: s["X"] + s["Y"] + s["Z"] == 2),
    ({"kind": "sum", "variables": ["X", "Y", "Z"], "weights": [1, 2, -3], "op": "<", "value": 0},
     lambda s: s["X"] + 2 * s["Y"] - 3 * s["Z"] < 0),
    ({"kind": "table", "variables": ["X", "Y"], "rows": [[0, 1], [1, 2], [3, -2]]},
     lambda s: (s["X"], s["Y"]) in {(0, 1), (1, 2), (3, -2)}),
    ({"kind": "table", "variables": ["X", "Z"], "rows": [[0, 0]], "forbidden": True},
     lambda s: (s["X"], s["Z"]) != (0, 0)),
    ({"kind": "implies", "if": "X > 0", "then": "Y == X + Z"}, lambda s: s["X"] <= 0 or s["Y"] == s["X"] + s["Z"]),
    ({"kind": "any_of", "conditions": ["X == 3", "Y + Z == -4"]}, lambda s: s["X"] == 3 or s["Y"] + s["Z"] == -4),
]


@pytest.mark.parametrize(("constraint", "predicate"), KINDS, ids=lambda c: c if isinstance(c, str) else None)
def test_every_constraint_kind_translates_to_exactly_its_solutions(constraint, predicate):
    csp = CSP(variables=XYZ, constraints=[constraint])
    result = solve(csp, mode="all")
    assert result.status == "sat" and result.exhaustive
    assert key(result.solutions) == key(brute_force(csp, predicate))
    assert result.count == len(result.solutions)
    assert csp.violations(result.solution) == []


def test_sums_over_non_negative_domains_use_the_native_propagator_and_agree():
    csp = CSP(variables=[{"name": n, "domain": [0, 1, 2, 5]} for n in "ABC"],
              constraints=[{"kind": "sum", "variables": ["A", "B", "C"], "op": op, "value": 6}
                           for op in ("<=", ">=")])
    result = solve(csp, mode="all")
    assert key(result.solutions) == key(brute_force(csp, lambda s: sum(s.values()) == 6))


def test_string_domains_and_mixed_constraints():
    csp = CSP(variables=[{"name": "Color", "domain": ["red", "green", "blue"]},
                         {"name": "Pet", "domain": ["dog", "cat"]},
                         {"name": "House", "domain": [1, 2, 3]}],
              constraints=["Color != 'red'", {"kind": "implies", "if": "Color == 'green'", "then": "Pet == 'cat'"},
                           {"kind": "table", "variables": ["Pet", "House"], "rows": [["cat", 2], ["dog", 3]]}])
    result = solve(csp, mode="all")
    expected = [{"Color": "green", "Pet": "cat", "House": 2}, {"Color": "blue", "Pet": "cat", "House": 2},
                {"Color": "blue", "Pet": "dog", "House": 3}]
    assert key(result.solutions) == key(expected)


def test_sat_one_unsat_and_capped_all():
    queens = CSP(variables=[{"name": f"Q{i}", "domain": {"min": 0, "max": 5}} for i in range(6)],
                 constraints=[{"kind": "all_different", "variables": [f"Q{i}" for i in range(6)]}]
                 + [f"abs(Q{i} - Q{j}) != {j - i}" for i in range(6) for j in range(i + 1, 6)])
    one = solve(queens)
    assert one.status == "sat" and one.count == 1 and queens.violations(one.solution) == []
    every = solve(queens, mode="all")
    assert every.count == 4 and every.exhaustive  # 6-queens has exactly 4 solutions
    capped = solve(queens, mode="all", max_solutions=2)
    assert capped.count == 2 and not capped.exhaustive
    three = CSP(variables=queens.variables[:3], constraints=[
        {"kind": "all_different", "variables": ["Q0", "Q1", "Q2"]}, "Q0 + Q1 + Q2 == 100"])
    unsat = solve(three)
    assert unsat.status == "unsat" and unsat.solution is None and unsat.exhaustive


def test_constant_conditions_and_pinned_values():
    csp = CSP(variables=[{"name": "A", "domain": [1, 2]}], constraints=["1 + 1 == 2"])
    assert solve(csp, mode="all").count == 2
    assert solve(CSP(variables=csp.variables, constraints=["1 == 2"])).status == "unsat"
    assert solve(csp, fixed={"A": 2}).solution == {"A": 2}
    assert solve(csp, fixed={"A": 9}).status == "unsat"
    assert solve(csp, fixed={"Zed": 1}).status == "invalid"


def test_invalid_models_report_every_problem_without_raising():
    csp = CSP(variables=[{"name": "A", "domain": [1, 2]}, {"name": "B", "domain": ["x", "y"]}],
              constraints=["A.real == 1", {"kind": "all_different", "variables": ["A", "Nope"]},
                           {"kind": "sum", "variables": ["A", "B"], "value": 3}, "A + 1 == 2"])
    result = solve(csp)
    assert result.status == "invalid"
    assert "#0" in result.error and "attribute access" in result.error
    assert "#1" in result.error and "'Nope'" in result.error
    assert "#2" in result.error and "text variable" in result.error
    assert "#3" not in result.error
    assert len(csp.validate_constraints()) == 3


@pytest.mark.parametrize("bad", [
    {"variables": [{"name": "A", "domain": {"min": 0, "max": 10**9}}]},
    {"variables": [{"name": "A", "domain": []}]},
    {"variables": [{"name": f"V{i}", "domain": {"min": 0, "max": 99_999}} for i in range(21)]},
    {"variables": [{"name": "A", "domain": [1, 1]}]},
    {"variables": [{"name": "A", "domain": [1]}, {"name": "A", "domain": [2]}]},
    {"variables": [{"name": "a.b", "domain": [1]}]},
    {"variables": [{"name": "if", "domain": [1]}]},
    {"variables": [{"name": "sum", "domain": [1]}]},
    {"variables": [{"name": "__x", "domain": [1]}]},
    {"variables": [{"name": "A", "domain": [1]}],
     "constraints": [{"kind": "table", "variables": ["A"], "rows": [[1, 2]]}]},
    {"variables": [{"name": "A", "domain": [1]}], "constraints": [{"kind": "teleport"}]},
])
def test_malformed_models_are_rejected_by_validation(bad):
    with pytest.raises(ValidationError):
        CSP.model_validate(bad)


def hard_queens(n: int) -> CSP:
    # pairwise-only encoding with a symmetric twist: all variables forced odd-sum, which makes it unsat but slow
    names = [f"Q{i}" for i in range(n)]
    return CSP(variables=[{"name": q, "domain": {"min": 0, "max": n - 1}} for q in names],
               constraints=[f"{names[i]} != {names[j]}" for i in range(n) for j in range(i + 1, n)]
               + [{"kind": "sum", "variables": names, "weights": [1] * n, "op": "==", "value": -1}])


def test_timeout_stops_the_search_and_leaves_no_busy_thread():
    threads_before = {t.ident for t in threading.enumerate()}
    result = solve(hard_queens(12), timeout=0.3)
    assert result.status == "timeout" and result.timed_out and "0.3" in result.error
    assert threading.enumerate() and {t.ident for t in threading.enumerate()} == threads_before

    async def in_thread():
        return await solve_async(hard_queens(12), timeout=0.3)

    result = anyio.run(in_thread)
    assert result.status == "timeout"
    cpu = time.process_time()
    time.sleep(0.5)
    assert time.process_time() - cpu < 0.25  # the worker thread stopped searching


def test_cancelling_solve_async_stops_the_worker():
    async def main():
        with anyio.move_on_after(0.3):
            await solve_async(hard_queens(12), timeout=None)

    anyio.run(main)
    time.sleep(0.1)
    cpu = time.process_time()
    time.sleep(0.5)
    assert time.process_time() - cpu < 0.25


def test_solve_node_in_a_graph_emits_its_result():
    g = Graph("csp")
    g.add(SolveCSP(mode="all", max_solutions=10))
    csp = {"variables": [{"name": "A", "domain": [1, 2, 3]}, {"name": "B", "domain": [1, 2, 3]}],
           "constraints": ["A < B"]}
    result = anyio.run(lambda: g.run({"csp": csp}, backend=ScriptedBackend([])))
    assert result.output.status == "sat" and result.output.count == 3
    events = [e for e in result.events if getattr(e, "name", None) == "csp_solved"]
    assert events and events[0].data["count"] == 3


def test_all_different_propagation_keeps_the_search_complete():
    # a permutation (hidden singles apply) with side constraints, and a non-permutation, against brute force
    perm = CSP(variables=[{"name": n, "domain": {"min": 1, "max": 5}} for n in "ABCDE"],
               constraints=[{"kind": "all_different", "variables": list("ABCDE")}, "A < B", "abs(C - D) == 2",
                            {"kind": "table", "variables": ["E"], "rows": [[1], [4], [5]]}])
    expect = brute_force(perm, lambda s: len(set(s.values())) == 5 and s["A"] < s["B"]
                         and abs(s["C"] - s["D"]) == 2 and s["E"] in (1, 4, 5))
    assert key(solve(perm, mode="all").solutions) == key(expect) and expect
    loose = CSP(variables=[{"name": n, "domain": [1, 2, 3, 7]} for n in "ABC"],
                constraints=[{"kind": "all_different", "variables": list("ABC")}, "A + B > C"])
    expect = brute_force(loose, lambda s: len(set(s.values())) == 3 and s["A"] + s["B"] > s["C"])
    assert key(solve(loose, mode="all").solutions) == key(expect)
    pigeonhole = CSP(variables=[{"name": n, "domain": [1, 2, 3]} for n in "ABCD"],
                     constraints=[{"kind": "all_different", "variables": list("ABCD")}])
    assert solve(pigeonhole).status == "unsat"


def test_node_timeout_policy_cancels_the_search_too():
    from plait.errors import NodeFailedError, NodeTimeoutError

    g = Graph("slow")
    g.add(SolveCSP(time_limit=None, timeout=0.3))
    with pytest.raises(NodeFailedError) as info:
        anyio.run(lambda: g.run({"csp": hard_queens(12)}))
    assert isinstance(info.value.cause, NodeTimeoutError)
    time.sleep(0.1)
    cpu = time.process_time()
    time.sleep(0.5)
    assert time.process_time() - cpu < 0.25


def test_a_solution_breaking_a_constraint_is_never_returned(monkeypatch):
    # simulate a broken propagator: python-constraint's all-different replaced by one that accepts anything
    import constraint as pc

    from plait.solvers import _compile

    class Lenient(pc.Constraint):
        def __init__(self, deadline=None):  # the propagator is built with the solve's deadline
            pass

        def __call__(self, variables, domains, assignments, forwardcheck=False, _unassigned=None):
            return True

    monkeypatch.setattr(_compile, "AllDifferentPropagator", Lenient)
    csp = CSP(variables=[{"name": n, "domain": [1, 2]} for n in "AB"],
              constraints=[{"kind": "all_different", "variables": ["A", "B"]}])
    result = solve(csp)
    assert result.status == "invalid" and "bug" in result.error and result.solution is None


def test_sums_after_a_domain_was_emptied_report_unsat():
    # found by the search property test: python-constraint's sum preprocessing failed on an emptied domain
    csp = CSP(variables=[{"name": n, "domain": [0]} for n in "AB"],
              constraints=[{"kind": "sum", "variables": ["A", "B"], "value": 1},
                           {"kind": "sum", "variables": ["A", "B"], "value": 0}])
    result = solve(csp, mode="all")
    assert result.status == "unsat" and result.exhaustive
