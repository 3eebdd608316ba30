"""Formulate in the formulation language (its default): the grammar and examples sent, replies read, repairs."""

import anyio

from plait import CSP, Graph, ScriptedBackend
from plait.executors import Grammar, Sample
from plait.solvers import FORMULATION_EXAMPLES, FORMULATION_GRAMMAR, FewShot, Formulate, format_formulation
from plait.solvers._prompts import LANGUAGE_SYSTEM

PUZZLE = "Ann, Bob and Cid sit in seats 1-3, one each. Ann is not in seat 1. Bob sits directly left of Cid."
SEATS = "Ann Bob Cid in 1..3\nalldifferent(Ann,Bob,Cid)"
GOOD = f"{SEATS}\nAnn != 1\nBob+1 == Cid"
UNDER = f"{SEATS}\nAnn != 1"
UNSAT = f"{GOOD}\nCid == 1"


def formulate(replies, problem=PUZZLE, **options):
    g = Graph("formulate")
    g.add(Formulate(**options))
    backend = ScriptedBackend(replies)
    result = anyio.run(lambda: g.run({"problem": problem}, backend=backend))
    return result.output, backend


def test_the_language_is_the_default_decoded_under_its_grammar_with_its_worked_examples():
    formulation, backend = formulate([GOOD])
    assert formulation.status == "solved" and formulation.solution == {"Ann": 3, "Bob": 1, "Cid": 2}
    [request] = backend.requests
    assert request.params.constraint == Grammar(grammar=FORMULATION_GRAMMAR)
    assert request.params.max_tokens == 1024
    system, *turns, puzzle = request.prompt
    assert system.content == LANGUAGE_SYSTEM and puzzle.content == PUZZLE
    shown = [(turns[i].content, turns[i + 1].content) for i in range(0, len(turns), 2)]
    assert shown == [(ex.problem, ex.formulation) for ex in FORMULATION_EXAMPLES]  # verbatim, comments kept


def test_a_reply_that_cannot_be_read_is_shown_back_with_its_line_and_column():
    typo = f"{SEATS}\nAnn != 1\nBob+1 == Cid +"
    formulation, backend = formulate([typo, GOOD])
    finding = formulation.rounds[0].finding
    assert finding.startswith("Your model could not be read: line 4, column ")
    repair = backend.requests[1].prompt
    assert repair[-2].role == "assistant" and repair[-2].content == typo and repair[-1].content.startswith(finding)
    assert formulation.status == "solved"


def test_a_repair_shows_the_latest_model_in_the_language():
    formulation, backend = formulate([UNDER, UNSAT, GOOD])
    assert [r.status for r in formulation.rounds] == ["ambiguous", "unsat", "solved"]
    for k, previous in ((1, UNDER), (2, UNSAT)):
        shown = backend.requests[k].prompt[-2].content
        assert shown == format_formulation(CSP.model_validate(formulation.rounds[k - 1].csp))
        assert shown.splitlines()[0] == "Ann Bob Cid in 1..3" and "{" not in shown  # the language, not JSON
    assert "Cid == 1" in backend.requests[2].prompt[-1].content  # the unsat core names the clashing line


def test_a_cut_off_reply_is_not_read_even_when_its_prefix_is_a_model():
    cut = Sample(text=UNDER, finish_reason="length", completion_tokens=1024)  # would read as an ambiguous model
    formulation, backend = formulate([cut, GOOD])
    first = formulation.rounds[0]
    assert first.truncated and first.csp is None and first.result is None
    assert first.finding.startswith("Your reply was cut at 1024 tokens")
    assert all(m.content != UNDER for m in backend.requests[1].prompt)


def test_a_fenced_reply_is_read():
    formulation, _ = formulate([f"```text\n{GOOD}\n```"])
    assert formulation.status == "solved"


def test_a_copy_of_a_language_worked_example_is_repaired():
    queens = FORMULATION_EXAMPLES[1].formulation
    formulation, _ = formulate([queens, GOOD])
    assert formulation.rounds[0].copied and formulation.rounds[0].status == "invalid"
    assert formulation.status == "solved"


def test_fewshot_examples_are_written_in_the_language():
    example = FewShot(problem="x and y in 1..2, x < y", model={"variables": [{"name": "x", "domain": [1, 2]},
                                                                             {"name": "y", "domain": [1, 2]}],
                                                                "constraints": ["x < y"]})
    _, backend = formulate([GOOD], examples=[example])
    assert [m.content for m in backend.requests[0].prompt[1:3]] == [example.problem, "x y in {1,2}\nx < y"]


def test_the_solver_time_limit_holds_on_a_two_line_model():
    formulation, _ = formulate(["A B in 0..99999\nA == B+100000"], max_rounds=1, time_limit=1)
    assert formulation.status == "timeout" and "within 1s" in formulation.feedback[0]
