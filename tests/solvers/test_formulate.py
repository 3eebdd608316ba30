"""Formulate's repair loop on scripted wrong formulations, and Explain."""

import json

import anyio

from plait import Graph, JsonSchema, ScriptedBackend
from plait.solvers import CSP, Explain, Formulate

PUZZLE = "Ann, Bob and Cid sit in seats 1-3, one each. Ann is not in seat 1. Bob sits directly left of Cid."
VARS = [{"name": n, "domain": {"min": 1, "max": 3}} for n in ("Ann", "Bob", "Cid")]
DIFF = {"kind": "all_different", "variables": ["Ann", "Bob", "Cid"]}
GOOD = {"variables": VARS, "constraints": [DIFF, "Ann != 1", "Bob + 1 == Cid"]}
INVALID = {"variables": VARS, "constraints": [DIFF, "Ann.seat != 1", "Bob + 1 == Dan"]}
UNSAT = {"variables": VARS, "constraints": [DIFF, "Ann != 1", "Bob + 1 == Cid", "Cid == 1"]}
UNDER = {"variables": VARS, "constraints": [DIFF, "Ann != 1"]}


def run_graph(replies, **options):
    g = Graph("formulate")
    g.chain(Formulate(**options), Explain())
    backend = ScriptedBackend(replies)
    result = anyio.run(lambda: g.run({"problem": PUZZLE}, backend=backend))
    return result, backend


def user_turns(request):
    return [m.content for m in request.prompt if m.role == "user"]


def test_first_reply_right_no_repair_and_schema_constraint_sent():
    result, backend = run_graph([json.dumps(GOOD), "Ann sits in seat 3."])
    formulation = result.nodes["formulate"].output
    assert formulation.status == "solved" and formulation.rounds == 1 and formulation.feedback == []
    assert formulation.solution == {"Ann": 3, "Bob": 1, "Cid": 2}
    assert result.output == "Ann sits in seat 3."
    first = backend.requests[0]
    assert first.params.constraint == JsonSchema.of(CSP, max_string=240, max_items=51)  # bounded: no endless lists
    schema = first.params.constraint.schema_
    assert schema["properties"]["constraints"]["maxItems"] == 51  # 2,048 max_tokens // 40
    assert PUZZLE in user_turns(first)[-1]
    assert '"Ann": 3' in backend.requests[1].prompt[-1].content  # the explainer sees the checked solution


def test_repair_converges_through_schema_invalid_unsat_and_under_constrained():
    replies = ["{not json", json.dumps(INVALID), json.dumps(UNSAT), json.dumps(UNDER), json.dumps(GOOD), "done"]
    result, backend = run_graph(replies, max_rounds=5)
    formulation = result.nodes["formulate"].output
    assert formulation.status == "solved" and formulation.rounds == 5
    assert formulation.solution == {"Ann": 3, "Bob": 1, "Cid": 2}
    schema_error, invalid, unsat, under = formulation.feedback
    assert "does not fit the CSP schema" in schema_error
    assert "attribute access" in invalid and "unknown variable 'Dan'" in invalid and "#1" in invalid
    # the unsat core is exactly the two constraints that clash (Cid == 1 forces Bob to 0, outside its domain)
    assert "no solution" in unsat and "#2" in unsat and "#3" in unsat
    assert "#0" not in unsat and "#1" not in unsat
    assert "under-constrained" in under
    shown = [json.loads(part) for part in under.split("e.g. ")[1].split(" (they differ")[0].split(" and ")]
    assert "(they differ in " in under
    assert len(shown) == 2 and shown[0] != shown[1]
    assert all(CSP.model_validate(UNDER).violations(s) == [] for s in shown)
    # each re-ask carries the error verbatim, after the model's own previous reply
    for k, error in enumerate(formulation.feedback, start=1):
        request = backend.requests[k]
        assert request.prompt[-1].content.startswith(error)
        assert request.prompt[-2].role == "assistant" and request.prompt[-2].content == replies[k - 1]
    rounds = [e.data for e in result.events if getattr(e, "name", None) == "formulate_round"]
    assert [r["status"] for r in rounds] == ["invalid", "invalid", "unsat", "ambiguous", "solved"]


def test_bounded_rounds_keep_the_last_attempt_and_explain_says_so():
    result, backend = run_graph([json.dumps(UNDER), json.dumps(UNDER)], max_rounds=2)
    formulation = result.nodes["formulate"].output
    assert formulation.status == "ambiguous" and formulation.rounds == 2 and len(formulation.feedback) == 2
    assert formulation.result.count == 2  # nothing computed is lost
    assert len(backend.requests) == 2
    assert result.output.startswith("No checked solution (ambiguous after 2 round(s))")


def test_expect_unique_false_accepts_any_solution():
    result, _ = run_graph([json.dumps(UNDER), "fine"], expect_unique=False)
    formulation = result.nodes["formulate"].output
    assert formulation.status == "solved" and CSP.model_validate(UNDER).violations(formulation.solution) == []


def test_a_reply_cut_off_at_the_token_limit_is_named_as_such():
    from plait.executors import Sample

    cut = Sample(text=json.dumps(GOOD)[:40], finish_reason="length")
    result, backend = run_graph([cut, json.dumps(GOOD), "ok"])
    formulation = result.nodes["formulate"].output
    assert formulation.status == "solved" and formulation.rounds == 2
    assert formulation.feedback[0].startswith("Your reply was cut off at the token limit")
