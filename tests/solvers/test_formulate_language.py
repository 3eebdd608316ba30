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


def test_a_cut_off_reply_is_read_up_to_its_last_complete_line_each_line_once():
    looping = "\n".join([SEATS, "Ann != 1", *["Bob+1 == Cid"] * 30, "Bob+1 =="])  # a greedy loop, then the cut
    cut = Sample(text=looping, finish_reason="length", completion_tokens=1024)
    formulation, backend = formulate([cut])
    first = formulation.rounds[0]
    assert first.truncated and first.status == "solved" and formulation.solution == {"Ann": 3, "Bob": 1, "Cid": 2}
    assert len(first.csp.constraints) == 3  # the repeated line once, the cut one left out
    assert len(backend.requests) == 1


def test_a_cut_off_reply_that_reads_but_is_wrong_says_it_was_cut():
    cut = Sample(text=UNDER + "\nBob+", finish_reason="length", completion_tokens=1024)
    formulation, backend = formulate([cut, GOOD])
    first = formulation.rounds[0]
    assert first.truncated and first.status == "ambiguous" and first.csp is not None
    assert first.finding.startswith("Your reply was cut at 1024 tokens")
    assert "alldifferent(...) instead of pairwise != lines" in first.finding  # the language's advice, not JSON's
    assert "Its complete lines, each once, were read: The model is under-constrained" in first.finding
    assert backend.requests[1].prompt[-2].content == format_formulation(first.csp)  # shown as read, never raw
    assert formulation.status == "solved"


def test_a_cut_off_reply_without_a_complete_line_is_not_read():
    cut = Sample(text="Ann Bob Cid Ann Bob Cid Ann Bob", finish_reason="length", completion_tokens=1024)
    formulation, _ = formulate([cut, GOOD])
    first = formulation.rounds[0]
    assert first.truncated and first.csp is None and first.finding.startswith("Your reply was cut at 1024 tokens")


def test_a_fenced_reply_is_read():
    formulation, _ = formulate([f"```text\n{GOOD}\n```"])
    assert formulation.status == "solved"


def test_a_copy_of_a_language_worked_example_is_repaired():
    queens = FORMULATION_EXAMPLES[1].formulation
    formulation, _ = formulate([queens, GOOD])
    assert formulation.rounds[0].copied and formulation.rounds[0].status == "invalid"
    assert formulation.status == "solved"


def test_a_whole_copy_of_a_grid_example_is_repaired_even_when_the_puzzle_names_its_cells():
    sudoku = FORMULATION_EXAMPLES[4].formulation
    puzzle = "Solve this 4x4 Mini Sudoku puzzle:\n1 _ _ _\n_ _ 1 _\n_ 1 _ _\n_ _ _ 1\nVariables: r1c1 .. r4c4."
    own = sudoku.split("# the numbers given")[0] + "r1c1 == 1\nr2c3 == 1\nr3c2 == 1\nr4c4 == 1\nr1c2 == 2\nr1c3 == 3"
    formulation, _ = formulate([sudoku, own], problem=puzzle, max_rounds=2)
    first, second = formulation.rounds
    assert first.copied and first.status == "invalid" and "worked example's model" in first.finding
    assert not second.copied  # its own givens on the example's cells and rules: not a copy
    part = sudoku.split("# the 2x2 subgrids")[0]  # the example's rows and columns only, which this puzzle shares
    formulation, _ = formulate([part], problem=puzzle, max_rounds=1)
    assert not formulation.rounds[0].copied and formulation.status == "ambiguous"


def test_the_puzzle_of_a_worked_example_itself_may_be_answered_with_its_model():
    example = FORMULATION_EXAMPLES[0]
    formulation, _ = formulate([example.formulation], problem=example.problem)
    assert formulation.status == "solved" and not formulation.rounds[0].copied
    assert formulation.solution["M"] == 1


def test_fewshot_examples_are_written_in_the_language():
    example = FewShot(problem="x and y in 1..2, x < y", model={"variables": [{"name": "x", "domain": [1, 2]},
                                                                             {"name": "y", "domain": [1, 2]}],
                                                                "constraints": ["x < y"]})
    _, backend = formulate([GOOD], examples=[example])
    assert [m.content for m in backend.requests[0].prompt[1:3]] == [example.problem, "x y in {1,2}\nx < y"]


def test_the_solver_time_limit_holds_on_a_two_line_model():
    model = "A B in 0..99999\nA == B+100000"
    formulation, _ = formulate([model], max_rounds=1, time_limit=1)
    assert formulation.status == "timeout" and "within 1s" in formulation.feedback[0]
    # CP-SAT's presolve proves it at once; a generous limit so a loaded machine cannot turn that into a timeout
    formulation, _ = formulate([model], max_rounds=1, time_limit=60, engine="auto")
    assert formulation.status == "unsat" and formulation.rounds[0].result.engine == "ortools"


def test_every_undeclared_name_is_listed_though_the_parser_stops_at_the_first():
    wrong = 'Brown Red in 1..2\nPet in {"cat","dog"}\nbrown < Red\nPet == dog\nZed == 1'
    right = 'Brown Red in 1..2\nPet in {"cat","dog"}\nBrown < Red\nPet == "dog"'
    formulation, backend = formulate([wrong, right], problem="Houses 1..2. The Brown house is left of the red one.")
    finding = formulation.rounds[0].finding
    assert finding.startswith("Your model could not be read: line 3, column 1: constraint 'brown < Red' uses "
                              "unknown variable 'brown'")
    assert finding.endswith('\nUndeclared names: brown (you declared Brown), dog (a text value: write it in quotes, '
                            '"dog"), Zed. Declare each one as a variable with its domain, or use a declared name.')
    assert backend.requests[1].prompt[-2].content == wrong  # shown as written: the line numbers point into it
    assert formulation.status == "solved" and formulation.solution == {"Brown": 1, "Red": 2, "Pet": "dog"}


def test_a_reply_that_names_no_undeclared_variable_gets_no_list():
    formulation, _ = formulate([f"{SEATS}\nAnn <", GOOD])
    assert "Undeclared" not in formulation.rounds[0].finding and formulation.status == "solved"


CRYPT = "Solve SEND+MORE=MONEY: distinct digits, no leading zeros."
CRYPT_MODEL = ("S E N D M O R Y in 0..9\nalldifferent(S,E,N,D,M,O,R,Y)\nS != 0\nM != 0\n"
               "1000*S+100*E+10*N+D+1000*M+100*O+10*R+E == 10000*M+1000*O+100*N+10*E+Y")


def test_each_model_is_solved_by_the_engine_formulate_was_given():
    for engine in ("ortools", "python-constraint"):
        formulation, _ = formulate([CRYPT_MODEL], problem=CRYPT, engine=engine)
        assert formulation.status == "solved", formulation.rounds[0].finding
        assert formulation.solution == {"S": 9, "E": 5, "N": 6, "D": 7, "M": 1, "O": 0, "R": 8, "Y": 2}
        assert formulation.rounds[0].result.engine == engine


def test_formulate_refuses_an_unknown_engine_before_running():
    import pytest

    from plait.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown solver engine 'cplex'"):
        Formulate(engine="cplex")
