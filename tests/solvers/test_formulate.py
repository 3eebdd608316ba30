"""Formulate's repair loop on scripted wrong formulations written as JSON (``syntax="json"``), and Explain.

The same loop in the formulation language (the default) is in test_formulate_language.py."""

import json

import anyio

from plait import Graph, JsonSchema, ScriptedBackend
from plait.executors import Sample
from plait.solvers import CSP, Explain, Formulate
from plait.solvers._formulate_syntax import syntax_named

format_model = syntax_named("json").format

PUZZLE = "Ann, Bob and Cid sit in seats 1-3, one each. Ann is not in seat 1. Bob sits directly left of Cid."
VARS = [{"name": n, "domain": {"min": 1, "max": 3}} for n in ("Ann", "Bob", "Cid")]
DIFF = {"kind": "all_different", "variables": ["Ann", "Bob", "Cid"]}
GOOD = {"variables": VARS, "constraints": [DIFF, "Ann != 1", "Bob + 1 == Cid"]}
INVALID = {"variables": VARS, "constraints": [DIFF, "Ann.seat != 1", "Bob + 1 == Dan"]}
UNSAT = {"variables": VARS, "constraints": [DIFF, "Ann != 1", "Bob + 1 == Cid", "Cid == 1"]}
UNDER = {"variables": VARS, "constraints": [DIFF, "Ann != 1"]}
FIRST_PROMPT = 6  # system, two worked examples (user + assistant each), the puzzle


def run_graph(replies, **options):
    g = Graph("formulate")
    g.chain(Formulate(syntax="json", **options), Explain())
    backend = ScriptedBackend(replies)
    result = anyio.run(lambda: g.run({"problem": PUZZLE}, backend=backend))
    return result, backend


def formulate(replies, problem=PUZZLE, **options):
    g = Graph("formulate")
    g.add(Formulate(syntax="json", **options))
    backend = ScriptedBackend(replies)
    result = anyio.run(lambda: g.run({"problem": problem}, backend=backend))
    return result.output, backend, result


def user_turns(request):
    return [m.content for m in request.prompt if m.role == "user"]


def shown(csp_dict):
    return format_model(CSP.model_validate(csp_dict))


def test_first_reply_right_no_repair_and_schema_constraint_sent():
    result, backend = run_graph([json.dumps(GOOD), "Ann sits in seat 3."])
    formulation = result.nodes["formulate"].output
    assert formulation.status == "solved" and len(formulation.rounds) == 1 and formulation.feedback == []
    assert formulation.solution == formulation.answer == {"Ann": 3, "Bob": 1, "Cid": 2}
    assert formulation.confidence is None and formulation.votes == {}  # no vote with k=1
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
    assert formulation.status == "solved" and len(formulation.rounds) == 5
    assert formulation.solution == {"Ann": 3, "Bob": 1, "Cid": 2}
    schema_error, invalid, unsat, under = formulation.feedback
    assert "does not fit the CSP schema" in schema_error and "line 1 column 2" in schema_error  # with its position
    assert "attribute access" in invalid and "unknown variable 'Dan'" in invalid and "#1" in invalid
    assert "Undeclared names: Dan." in invalid
    # the unsat core is exactly the two constraints that clash (Cid == 1 forces Bob to 0, outside its domain)
    assert "no solution" in unsat and "#2" in unsat and "#3" in unsat
    assert "#0" not in unsat and "#1" not in unsat
    assert formulation.rounds[2].conflict == [2, 3]
    assert "under-constrained" in under
    shown_solutions = [json.loads(part) for part in under.split("e.g. ")[1].split(" (they differ")[0].split(" and ")]
    assert "(they differ in " in under
    assert len(shown_solutions) == 2 and shown_solutions[0] != shown_solutions[1]
    assert all(CSP.model_validate(UNDER).violations(s) == [] for s in shown_solutions)
    # each repair shows the previous model (the raw reply when it did not parse, else the parsed model
    # formatted) and the finding on it; the prompt never grows past the first prompt plus those two turns
    previous = ["{not json", shown(INVALID), shown(UNSAT), shown(UNDER)]
    for k, error in enumerate(formulation.feedback, start=1):
        request = backend.requests[k]
        assert len(request.prompt) == FIRST_PROMPT + 2
        assert request.prompt[:FIRST_PROMPT] == backend.requests[0].prompt  # a shared, cached prefix
        assert request.prompt[-1].content.startswith(error) and "Edit the model above" in request.prompt[-1].content
        assert request.prompt[-2].role == "assistant" and request.prompt[-2].content == previous[k - 1]
    rounds = [e.data for e in result.events if getattr(e, "name", None) == "formulate_round"]
    assert [r["status"] for r in rounds] == ["invalid", "invalid", "unsat", "ambiguous", "solved"]
    assert [(r.round, r.status) for r in formulation.rounds] == [
        (1, "invalid"), (2, "invalid"), (3, "unsat"), (4, "ambiguous"), (5, "solved")]
    assert formulation.rounds[0].csp is None and formulation.rounds[2].csp == CSP.model_validate(UNSAT)


def test_bounded_rounds_keep_the_last_verdict_and_explain_says_so():
    result, backend = run_graph([json.dumps(UNDER), json.dumps(INVALID)], max_rounds=2)
    formulation = result.nodes["formulate"].output
    assert formulation.status == "invalid" and len(formulation.rounds) == 2 and len(formulation.feedback) == 2
    assert formulation.rounds[0].result.count == 2  # nothing computed is lost
    assert len(backend.requests) == 2
    assert result.output.startswith("No checked solution (invalid after 2 round(s))")


def test_expect_unique_false_accepts_any_solution():
    result, _ = run_graph([json.dumps(UNDER), "fine"], expect_unique=False)
    formulation = result.nodes["formulate"].output
    assert formulation.status == "solved" and CSP.model_validate(UNDER).violations(formulation.solution) == []


def test_a_cut_off_reply_is_not_parsed_nor_carried_into_the_next_prompt():
    cut = Sample(text=json.dumps(GOOD)[:40], finish_reason="length", completion_tokens=2048)
    formulation, backend, _ = formulate([cut, json.dumps(GOOD)])
    assert formulation.status == "solved" and len(formulation.rounds) == 2
    first = formulation.rounds[0]
    assert first.truncated and first.status == "invalid" and first.csp is None
    assert first.finding.startswith("Your reply was cut at 2048 tokens, the limit")
    assert "all_different instead of pairwise constraints" in first.finding
    assert "JSON" not in first.finding and "EOF" not in first.finding  # no misleading parse error
    repair = backend.requests[1]
    assert len(repair.prompt) == FIRST_PROMPT  # nothing to show: the feedback joins the puzzle's turn
    assert all(m.role != "assistant" or m.content != cut.text for m in repair.prompt)
    assert repair.prompt[-1].content.startswith(PUZZLE) and repair.prompt[-1].content.endswith(first.finding)


def test_a_cut_off_repair_shows_the_latest_complete_model_and_its_finding():
    cut = Sample(text=json.dumps(GOOD)[:40], finish_reason="length", completion_tokens=99)
    formulation, backend, _ = formulate([json.dumps(UNSAT), cut, json.dumps(GOOD)])
    assert [(r.status, r.truncated) for r in formulation.rounds] == [
        ("unsat", False), ("invalid", True), ("solved", False)]
    repair = backend.requests[2].prompt
    assert repair[-2].content == shown(UNSAT) and all(m.content != cut.text for m in repair)
    assert "cut at 99 tokens" in repair[-1].content and "no solution" in repair[-1].content


def test_an_identical_reply_is_resampled_with_temperature_never_judged_again():
    spaced = json.dumps(UNDER, indent=1)  # the same model written differently: CSP-identical
    formulation, backend, result = formulate([json.dumps(UNDER), json.dumps(UNDER), spaced, json.dumps(GOOD)],
                                             max_rounds=4)
    assert [(r.status, r.repeat_of) for r in formulation.rounds] == [
        ("ambiguous", None), ("repeat", 1), ("repeat", 1), ("solved", None)]
    assert formulation.status == "solved" and len(formulation.feedback) == 1
    greedy, resample, again = backend.requests[1:4]
    assert greedy.params.temperature == 0 and greedy.params.seed is None
    # a repeat re-sends the request that drew it, at temperature, with a seed of its own each time
    assert resample.prompt == greedy.prompt == again.prompt
    assert (resample.params.temperature, resample.params.seed) == (0.7, 2000)
    assert (again.params.temperature, again.params.seed) == (0.7, 3000)
    assert [e.status for e in result.events if type(e).__name__ == "FormulationChecked"] == [
        "ambiguous", "repeat", "repeat", "solved"]


def test_a_run_of_repeats_ends_at_max_rounds_with_the_judged_verdict():
    formulation, backend, _ = formulate([json.dumps(UNSAT)] * 3)
    assert [r.status for r in formulation.rounds] == ["unsat", "repeat", "repeat"]
    assert formulation.status == "unsat" and len(backend.requests) == 3


CRYPT = "Find digits A B C D E F (all different, 1..6) with A < B < C < D < E < F."
LETTERS = "ABCDEF"
CRYPT_VARS = [{"name": n, "domain": {"min": 1, "max": 6}} for n in LETTERS]
CRYPT_UNDER = {"variables": CRYPT_VARS, "constraints": [{"kind": "all_different", "variables": list(LETTERS)},
                                                        "A < B", "B < C", "C < D"]}
CRYPT_PATCH = {"variables": CRYPT_VARS[3:], "constraints": ["D < E", "E < F"]}  # keeps 3 of 6 variables


def test_a_repair_that_drops_most_variables_is_merged_into_the_model_before():
    formulation, backend, _ = formulate([json.dumps(CRYPT_UNDER), json.dumps(CRYPT_PATCH)], problem=CRYPT)
    ambiguous, merged = formulation.rounds
    assert ambiguous.status == "ambiguous" and merged.restored == ["A", "B", "C"]
    assert merged.status == "solved" and formulation.solution == {n: i for i, n in enumerate(LETTERS, start=1)}
    names = [v.name for v in formulation.csp.variables]
    assert sorted(names) == list(LETTERS)
    kept = [formulation.csp.describe(i) for i in range(len(formulation.csp.constraints))]
    assert any("A < B" in line for line in kept) and any("E < F" in line for line in kept)


def test_a_repair_that_drops_one_variable_of_many_is_an_edit_and_kept_as_written():
    edited = {"variables": CRYPT_VARS[:5], "constraints": [{"kind": "all_different", "variables": list("ABCDE")},
                                                          "A < B", "B < C", "C < D", "D < E", "A == 1", "E == 5"]}
    formulation, _, _ = formulate([json.dumps(CRYPT_UNDER), json.dumps(edited)], problem=CRYPT)
    assert formulation.rounds[1].restored == [] and formulation.status == "solved"
    assert [v.name for v in formulation.csp.variables] == list("ABCDE")


ZEBRA = "Houses 1..2. The Brown house is left of the red one."
ZEBRA_VARS = [{"name": "Brown", "domain": [1, 2]}, {"name": "Red", "domain": [1, 2]},
              {"name": "Pet", "domain": ["cat", "dog"]}]


def test_undeclared_names_are_listed_with_the_name_or_value_meant():
    wrong = {"variables": ZEBRA_VARS, "constraints": ["brown < Red", "Pet == dog", "Zed == 1"]}
    right = {"variables": ZEBRA_VARS, "constraints": ["Brown < Red", "Pet == 'dog'"]}
    formulation, _, _ = formulate([json.dumps(wrong), json.dumps(right)], problem=ZEBRA)
    finding = formulation.feedback[0]
    assert "Undeclared names: brown (you declared Brown), dog (a text value: write it in quotes, \"dog\"), Zed." \
        in finding
    assert formulation.status == "solved" and formulation.solution == {"Brown": 1, "Red": 2, "Pet": "dog"}


def test_a_copy_of_a_worked_example_is_repaired_not_solved():
    from plait.solvers import FEW_SHOT

    copy = format_model(FEW_SHOT[0].model)
    part = FEW_SHOT[0].model.model_dump(by_alias=True)
    part["constraints"] = part["constraints"][:2]  # a part of the example is no model of this puzzle either
    formulation, _, _ = formulate([copy, json.dumps(part), json.dumps(CRYPT_UNDER)], problem=CRYPT)
    first, second, third = formulation.rounds
    assert first.copied and first.status == "invalid" and "worked example's model (variables Ann, Bob, Cid)" \
        in first.finding
    assert second.copied and second.status == "invalid" and second.result is None  # never solved
    assert third.status == "ambiguous" and third.restored == []  # a copy is never the model a repair edits


def test_the_example_names_with_constraints_of_its_own_are_not_a_copy():
    formulation, _, _ = formulate([json.dumps(UNSAT)], problem="seats", max_rounds=1)
    assert formulation.status == "unsat" and not formulation.rounds[0].copied


def test_the_puzzle_naming_the_example_names_is_not_a_copy():
    formulation, _, _ = formulate([json.dumps(GOOD)])  # PUZZLE is about Ann, Bob and Cid
    assert formulation.status == "solved" and not formulation.rounds[0].copied


def test_explain_of_an_unsolved_formulation_says_so_without_calling_the_model():
    result, backend = run_graph([json.dumps(INVALID)], max_rounds=1)
    assert result.output.startswith("No checked solution (invalid after 1 round(s)): These constraints are invalid")
    assert len(backend.requests) == 1
