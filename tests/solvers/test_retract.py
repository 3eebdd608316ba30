"""Retraction: exactly the conflicting proposals are taken back, the rest kept, the model re-asked for those only."""

import json

import anyio

from plait import Graph, ScriptedBackend
from plait.solvers import CSP, ProposeAndRetract, find_conflict

# four one-hour meetings in slots 9..12; M1/M2 share a person, so do M2/M3; M4 must be after M1
MEETINGS = CSP(
    variables=[{"name": f"M{i}", "domain": {"min": 9, "max": 12}} for i in range(1, 5)],
    constraints=["M1 != M2", "M2 != M3", "M4 > M1", {"kind": "all_different", "variables": ["M1", "M3", "M4"]}],
)


def test_consistent_proposals_have_no_conflict():
    assert find_conflict(MEETINGS, {"M1": 9, "M2": 10, "M3": 11, "M4": 12}) is None
    assert find_conflict(MEETINGS, {"M1": 9}) is None


def test_violated_constraints_blame_only_their_variables():
    conflict = find_conflict(MEETINGS, {"M1": 9, "M2": 9, "M3": 11, "M4": 12})
    assert conflict.variables == ("M1", "M2") and conflict.constraints == (0,)


def test_all_different_blames_only_the_variables_sharing_a_value():
    csp = CSP(variables=[{"name": n, "domain": {"min": 1, "max": 5}} for n in "ABCDE"],
              constraints=[{"kind": "all_different", "variables": list("ABCDE")}])
    conflict = find_conflict(csp, {"A": 1, "B": 2, "C": 2, "D": 4, "E": 5})
    assert conflict.variables == ("B", "C") and conflict.constraints == (0,)


def test_values_outside_the_domain_are_blamed_strictly():
    conflict = find_conflict(MEETINGS, {"M1": 13, "M2": 10})
    assert conflict.variables == ("M1",) and "outside the domain" in conflict.reason
    assert find_conflict(MEETINGS, {"M1": True}).variables == ("M1",)  # True is not the hour 1


def test_hidden_conflicts_are_reduced_to_a_minimal_set_of_proposals():
    csp = CSP(variables=[{"name": n, "domain": {"min": 0, "max": 5}} for n in "XYZW"],
              constraints=["X + Y == 10", "Z + W == 3"])
    conflict = find_conflict(csp, {"X": 4, "Z": 1, "W": 2})  # X=4 forces Y=6, outside 0..5
    assert conflict.variables == ("X",) and conflict.constraints == ()
    assert "no solution" in conflict.reason


def run(replies, csp=MEETINGS, **options):
    g = Graph("propose")
    g.add(ProposeAndRetract(**options))
    backend = ScriptedBackend(replies)
    result = anyio.run(lambda: g.run({"csp": csp, "problem": "Schedule the meetings."}, backend=backend))
    retractions = [e.data for e in result.events if getattr(e, "name", None) == "retraction"]
    return result.output, backend, retractions


def test_conflicting_proposals_are_retracted_and_only_they_are_re_asked():
    first = {"M1": 9, "M2": 9, "M3": 11, "M4": 12}
    second = {"M1": 10, "M2": 9}  # the model re-proposes only the retracted two
    out, backend, retractions = run([json.dumps(first), json.dumps(second)])
    assert out.result.status == "sat" and MEETINGS.violations(out.solution) == []
    assert out.solution == {"M1": 10, "M2": 9, "M3": 11, "M4": 12}
    assert out.from_model == out.solution and out.from_solver == [] and out.rounds == 2
    assert retractions == [r.model_dump() for r in out.retractions]
    (retraction,) = retractions
    assert retraction["variables"] == ["M1", "M2"] and retraction["values"] == {"M1": 9, "M2": 9}
    assert retraction["round"] == 1 and "M1 != M2" in retraction["constraints"][0]
    second_request = backend.requests[1]
    assert set(second_request.params.constraint.schema_["required"]) == {"M1", "M2"}
    assert "Kept (fixed): M3=11, M4=12" in second_request.prompt[-2].content
    assert second_request.prompt[-1].content == "Propose values for: M1, M2."


def test_bounded_rounds_then_the_solver_completes_the_kept_proposals():
    bad = {"M1": 12, "M2": 12, "M3": 10, "M4": 11}  # M1=12 clashes with M2 and leaves no slot after it for M4
    out, backend, retractions = run([json.dumps(bad), json.dumps({"M1": 12, "M2": 12})], max_rounds=2)
    assert len(backend.requests) == 2 and out.rounds == 2
    assert out.result.status == "sat" and MEETINGS.violations(out.solution) == []
    assert out.from_model == {"M3": 10} and sorted(out.from_solver) == ["M1", "M2", "M4"]
    assert out.solution["M3"] == 10
    assert [r["variables"] for r in retractions] == [["M1", "M2", "M4"], ["M1", "M2"]]


def test_fallback_retracts_hidden_conflicts_before_the_solver_search():
    csp = CSP(variables=[{"name": n, "domain": {"min": 0, "max": 5}} for n in "XYZ"],
              constraints=["X + Y == 10", "Z != X"])
    out, _, retractions = run([json.dumps({"X": 4})], csp=csp, propose=["X"], max_rounds=1)
    assert out.result.status == "sat" and csp.violations(out.solution) == []
    assert out.solution["X"] == 5 and out.from_model == {} and "X" in out.from_solver
    assert retractions[0]["variables"] == ["X"] and "no solution" in retractions[0]["reason"]


def test_unreadable_reply_leaves_everything_to_the_solver():
    out, _, retractions = run(["I think M1 should be early"])
    assert out.result.status == "sat" and MEETINGS.violations(out.solution) == []
    assert out.from_model == {} and retractions == []


def test_invalid_model_or_unknown_proposal_target_fails_before_asking_the_model():
    from plait.errors import ConstraintSyntaxError, NodeFailedError

    bad = CSP(variables=MEETINGS.variables, constraints=["M1.x == 1"])
    for csp, options, cause in [(bad, {}, ConstraintSyntaxError), (MEETINGS, {"propose": ["M9"]}, ValueError)]:
        backend = ScriptedBackend([])
        g = Graph("propose")
        g.add(ProposeAndRetract(**options))
        try:
            anyio.run(lambda g=g, csp=csp, backend=backend: g.run({"csp": csp, "problem": "x"}, backend=backend))
        except NodeFailedError as exc:
            assert isinstance(exc.cause, cause)
        else:
            raise AssertionError("the node should have failed")
        assert backend.requests == []
