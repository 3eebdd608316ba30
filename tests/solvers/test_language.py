"""The formulation language: every statement form, round trips with the CSP model, errors with positions."""

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings

from plait.errors import ConstraintSyntaxError, FormulationError
from plait.solvers import (
    CSP, FORMULATION_EXAMPLES, FORMULATION_SYNTAX, AllDifferent, AnyOf, Compare, Expression, Implies, IntRange, Sum, Table, Variable,
    format_formulation, parse_formulation, solve)
from tests.solvers.language_csps import csps

EVERY_FORM = """\
# a comment line
S E N D in 0..9   # a trailing comment
Color in {"red", "blue #1"}
Neg in {-3,0,5}
alldifferent(S, E,N)
sum(S,E) == 9
sum(2*S, -1 * E) >= -4
(S,E) in {(1,2), (3, 4)}
(Color) not in {("red")}
S > 1 -> E < 9
any(S == 1, max(E, N) == 2)
compare(S+1 == E)
Color == "red" or S == 0
alldifferent(S+1, E+2, N)
"""


def test_every_statement_form_becomes_its_constraint():
    csp = parse_formulation(EVERY_FORM)
    assert csp.variables == [
        *(Variable(name=n, domain=IntRange(min=0, max=9)) for n in "SEND"),
        Variable(name="Color", domain=["red", "blue #1"]), Variable(name="Neg", domain=[-3, 0, 5])]
    assert csp.constraints == [
        AllDifferent(variables=["S", "E", "N"]),
        Sum(variables=["S", "E"], op="==", value=9),
        Sum(variables=["S", "E"], weights=[2, -1], op=">=", value=-4),
        Table(variables=["S", "E"], rows=[[1, 2], [3, 4]]),
        Table(variables=["Color"], rows=[["red"]], forbidden=True),
        Implies.model_validate({"if": "S > 1", "then": "E < 9"}),
        AnyOf(conditions=["S == 1", "max(E, N) == 2"]),
        Compare(left="S+1", op="==", right="E"),
        Expression(expression='Color == "red" or S == 0'),
        Expression(expression="S+1 != E+2"), Expression(expression="S+1 != N"), Expression(expression="E+2 != N"),
    ]


def test_the_printer_writes_every_kind_compactly_and_reads_back():
    csp = parse_formulation(EVERY_FORM)
    text = format_formulation(csp)
    assert text.splitlines()[:4] == ['S E N D in 0..9', 'Color in {"red","blue #1"}', "Neg in {-3,0,5}",
                                     "alldifferent(S,E,N)"]
    assert "sum(2*S,-1*E) >= -4" in text and "(S,E) in {(1,2),(3,4)}" in text and "compare(S+1 == E)" in text
    assert not any(line.startswith("{") for line in text.splitlines())
    assert parse_formulation(text) == csp


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csps())
def test_random_csps_round_trip(csp):
    assert csp.validate_constraints() == []
    assert parse_formulation(format_formulation(csp)) == csp


@pytest.mark.parametrize("constraint", [
    Expression(expression="(A ==\n B)"),  # a newline inside the text
    Expression(expression="sum(A, B) == 3"),  # reads as a Sum statement
    Expression(expression="A == 1  "),  # trailing spaces
    Compare(left="A < B", op="==", right="B"),  # a comparison inside one side
    AnyOf(conditions=["A == 1", "(B == 2)"]),
    Table(variables=["A"], rows=[]),
    AllDifferent(variables=["A", "B"]),
])
def test_constraints_without_an_exact_compact_form_fall_back_to_json(constraint):
    csp = CSP(variables=[Variable(name="A", domain=IntRange(min=0, max=3)),
                         Variable(name="B", domain=IntRange(min=0, max=3))], constraints=[constraint])
    text = format_formulation(csp)
    assert parse_formulation(text) == csp
    if isinstance(constraint, Expression) and constraint.expression in ("(A ==\n B)", "sum(A, B) == 3", "A == 1  "):
        assert text.splitlines()[-1] == json.dumps(constraint.model_dump(mode="json"))


def test_text_values_survive_any_characters():
    csp = CSP(variables=[Variable(name="T", domain=['say "hi"', "tab\there", "new\nline", "#hash", "é\u2028", "\\"])],
              constraints=[Table(variables=["T"], rows=[['say "hi"'], ["new\nline"]])])
    assert parse_formulation(format_formulation(csp)) == csp


@pytest.mark.parametrize("example", FORMULATION_EXAMPLES, ids=lambda e: e.formulation.split("\n")[0][:30])
def test_worked_examples_parse_and_have_one_solution(example):
    result = solve(parse_formulation(example.formulation), mode="all", max_solutions=5, timeout=60)
    assert result.status == "sat" and result.count == 1, result


def test_worked_examples_solve_to_the_known_answers():
    send, queens, zebra, futoshiki, sudoku = (solve(parse_formulation(e.formulation), timeout=60).solution
                                              for e in FORMULATION_EXAMPLES)
    assert send == dict(S=9, E=5, N=6, D=7, M=1, O=0, R=8, Y=2)
    assert [queens[f"q{i}"] for i in range(1, 9)] == [1, 5, 8, 6, 3, 7, 2, 4]
    assert zebra["eric"] == zebra["root_beer"] == zebra["cat"] == 1  # Eric lives in house 1
    assert [futoshiki[f"r{r}c{c}"] for r in range(1, 5) for c in range(1, 5)] == \
        [1, 3, 4, 2, 4, 2, 1, 3, 2, 4, 3, 1, 3, 1, 2, 4]
    assert [sudoku[f"r{r}c{c}"] for r in range(1, 5) for c in range(1, 5)] == \
        [1, 2, 3, 4, 3, 4, 1, 2, 2, 1, 4, 3, 4, 3, 2, 1]


def test_every_statement_the_syntax_note_quotes_parses():
    quoted = re.findall(r"`([^`]+)`", FORMULATION_SYNTAX)
    statements = [q for q in quoted if q != "#"]
    assert len(statements) == 14
    declarations = 'S E N D A B C Q1 Q2 Q3 in 0..9\nColor in {"red","green"}\n'
    for statement in statements:
        if " in " in statement and not statement.startswith("("):
            parse_formulation(statement)
        else:
            parse_formulation(declarations + statement)


# -- errors: line, column, the statement, what to do ----------------------------------------------------------
@pytest.mark.parametrize("text, line, column, says", [
    ("A B in 1..3\nA + Q == 2", 2, 5, "unknown variable 'Q'; declare it"),
    ("A B in 1..3\nalldifferent(A, B, brown)", 2, 20, "unknown variable(s) 'brown'"),
    ("A in 5..1", 1, 6, "the range 5..1 is empty; write the smaller bound first"),
    ("A in 0..99999999999999999999", 1, 9, "has 20 digits"),
    ("A in 0..5000000000000", 1, 1, "outside -1000000000000..1000000000000"),
    ("A in 0..200000", 1, 1, "more than 100000 values"),
    ("A B C", 1, 1, "a declaration needs 'in' and a domain"),
    ("A in {1, 2\nA == 1", 1, 11, "expected ','"),
    ("A in {1, 1}", 1, 1, "domain values must be distinct"),
    ("A in {'x'}", 1, 7, "write text values in double quotes"),
    ("A in 1..2\nA in 1..3", 2, 1, "'A' is already declared on line 1"),
    ("A in 1..2\n(A, B) in {(1)}", 2, 1, "table row [1] has 1 values for 2 variables"),
    ("A in 1..3\nA == \"x", 2, 6, "not closed"),
    ("A in 1..3\nA ==", 2, 1, "not a valid expression"),
    ("A in 1..3\nA.real == 1", 2, 1, "attribute access"),
    ("A in 1..3\nA -> ", 2, 3, "needs a condition on each side of '->'"),
    ("A in 1..3\nalldifferent(A) == 1", 2, 17, "must be the whole statement"),
    ("A in 1..3\nalldifferent(A, A == 1)", 2, 17, "takes variables or arithmetic expressions"),
    ("A in 1..3\ncompare(A)", 2, 1, "compare(...) holds one comparison"),
    ("A B in 1..3\nalldifferent(A, B]", 2, 18, "expected ')' here, to close the '(' at column 13"),
    ("A in 1..3\nany()", 2, 1, "at least 1 item"),
    ("A in 1..3\n{\"kind\": \"bogus\"}", 2, 1, "as JSON, and this one is not valid"),
    ("A in 1..3\n" + "(" * 500 + "A" + ")" * 500 + " == 1", 2, 1, "constraint"),
    ("if in 1..3", 1, 1, "'if' cannot name a variable"),
    ("# nothing declared", 1, 1, "no variables are declared"),
])
def test_errors_name_the_line_the_column_and_the_fix(text, line, column, says):
    with pytest.raises(FormulationError) as caught:
        parse_formulation(text)
    error = caught.value
    assert (error.line, error.column) == (line, column), str(error)
    assert says in str(error)
    assert str(error).startswith(f"line {line}, column {column}: ")
    assert isinstance(error, ConstraintSyntaxError)


def test_every_problem_is_listed_at_once_for_one_repair():
    text = "A B in 1..3\nA + brown == 2\nC in 4..1\nalldifferent(A, B, white)\nA -> \nalldifferent(A+1, gray, B)"
    with pytest.raises(FormulationError) as caught:
        parse_formulation(text)
    assert [p.split(":")[0] for p in caught.value.problems] == ["line 3, column 6", "line 5, column 3"]
    text = "A B in 1..3\nA + brown == 2\nalldifferent(A, B, white)\nalldifferent(A+1, gray, B)\nA == Color"
    with pytest.raises(FormulationError) as caught:
        parse_formulation(text)
    error = caught.value
    assert [p.split(": ")[0] for p in error.problems] == [
        "line 2, column 5", "line 3, column 20", "line 4, column 19", "line 5, column 6"]
    assert str(error) == "\n".join(error.problems) and (error.line, error.column) == (2, 5)


def test_listing_stops_at_max_listed():
    from plait.solvers._language import MAX_LISTED

    with pytest.raises(FormulationError) as caught:
        parse_formulation("\n".join(f"V{i} in 5..1" for i in range(1000)))
    assert len(caught.value.problems) == MAX_LISTED
    assert str(caught.value).endswith(f"(the first {MAX_LISTED} problems; fix them and check the rest)")


def test_the_error_quotes_the_statement():
    with pytest.raises(FormulationError, match=r"\(in: alldifferent\(A, B, brown\)\)$"):
        parse_formulation("A B in 1..3\n\nalldifferent(A, B, brown)   # comment")


# -- hostile input: every limit holds, work stays linear ---------------------------------------------------------
def test_limits_hold_on_hostile_texts():
    from plait.solvers._language import MAX_FORMULATION_CHARS
    from plait.solvers._limits import MAX_CONSTRAINTS, MAX_TOTAL_VALUES, MAX_VARIABLES

    cases = {
        "x" * (MAX_FORMULATION_CHARS + 1): "MAX_FORMULATION_CHARS",
        " ".join(f"V{i}" for i in range(MAX_VARIABLES + 1)) + " in 0..1": "MAX_VARIABLES",
        "\n".join(f"V{i} in 0..99999" for i in range(MAX_TOTAL_VALUES // 100_000 + 1)): "MAX_TOTAL_VALUES",
        "A in 0..1\n" + "A == 1\n" * (MAX_CONSTRAINTS + 1): "MAX_CONSTRAINTS",
        # 300 expressions pair up into 44,850 constraints: refused before the pairs are built
        "A in 0..1\nalldifferent(" + ",".join(["A+1"] * 300) + ")": "MAX_CONSTRAINTS",
        "A in 0..1\nA == " + "+".join(["A"] * 2000): "limit is",
        "A in 0..1\n" + "A ** 8 * " * 20 + "A == 1": "MAX_BITS",
        "A in 0..1\n" + "[" * 100_000 + " == 1": "constraint",
        "A in 0..1\n{" + "[" * 100_000 + "}": "not valid",  # JSON nested past the recursion limit
    }
    for text, says in cases.items():
        with pytest.raises(FormulationError, match=says):
            parse_formulation(text)


def test_thousands_of_lines_parse():
    text = "\n".join(f"V{i} in 0..9" for i in range(3000)) + "\n" + "\n".join(
        f"V{i} != V{i + 1}" for i in range(2999))
    csp = parse_formulation(text)
    assert len(csp.variables) == 3000 and len(csp.constraints) == 2999


@pytest.mark.parametrize("value", [None, 12, b"A in 0..1"])
def test_non_text_is_refused(value):
    with pytest.raises(FormulationError, match="must be text"):
        parse_formulation(value)  # type: ignore[arg-type]
