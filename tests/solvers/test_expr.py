"""The safe constraint language: what it accepts, how it evaluates, what it rejects and why."""

import pytest

from plait.errors import ConstraintSyntaxError, ParseError
from plait.solvers import parse_expr

VARS = {"A": "int", "B": "int", "C": "int", "Q1": "int", "Q2": "int", "Color": "str"}


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("A + B == C", {"A": 1, "B": 2, "C": 3}, True),
        ("A + B == C", {"A": 1, "B": 2, "C": 4}, False),
        ("abs(Q1 - Q2) != 1", {"Q1": 3, "Q2": 4}, False),
        ("abs(Q1 - Q2) != 1", {"Q1": 3, "Q2": 5}, True),
        ("A * B - C // 2 % 3 >= -4", {"A": 2, "B": 3, "C": 9}, True),
        ("0 < A < B <= C", {"A": 1, "B": 2, "C": 2}, True),
        ("0 < A < B <= C", {"A": 1, "B": 3, "C": 2}, False),
        ("sum([A, B, C]) == 6", {"A": 1, "B": 2, "C": 3}, True),
        ("sum(A, B, C) == 6", {"A": 1, "B": 2, "C": 3}, True),
        ("min(A, B) == 1 and max([A, B, C]) == 9", {"A": 1, "B": 5, "C": 9}, True),
        ("A == 1 or not B == 2", {"A": 0, "B": 2}, False),
        ("A ** 2 + B ** 2 == C ** 2", {"A": 3, "B": 4, "C": 5}, True),
        ("Color == 'red'", {"Color": "red"}, True),
        ("Color != 'red'", {"Color": "red"}, False),
        ("A // B == 1", {"A": 1, "B": 0}, False),  # division by zero: false, not an exception
        ("A % B == 0", {"A": 1, "B": 0}, False),
        ("+A == -(-A)", {"A": 7}, True),
    ],
)
def test_accepted_expressions_evaluate_like_python(text, values, expected):
    expr = parse_expr(text, VARS)
    assert expr.holds(values) is expected
    assert set(expr.variables) == set(values)


def test_variables_are_listed_in_first_use_order_and_called_positionally():
    expr = parse_expr("C - A == B", VARS)
    assert expr.variables == ("C", "A", "B")
    assert expr(5, 2, 3) is True


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("A.__class__ == 1", "attribute access"),
        ("A.real == 1", "attribute access"),
        ("__import__('os') == 1", "calling '__import__'"),
        ("__builtins__ == 1", "dunder name"),
        ("open('x') == 1", "calling 'open'"),
        ("eval('1') == 1", "calling 'eval'"),
        ("(lambda: 1)() == 1", "calling"),
        ("(lambda: 1) == 1", "lambda"),
        ("[A][0] == 1", "subscripts"),
        ("A ** B == 1", "exponent"),
        ("A ** 100 == 1", "exponent"),
        ("(A ** 8) ** 8 == 1", "nested powers"),
        ("A == 10 ** 40", "exponent"),
        ("A == 100000000000000000000", "integer literal larger"),
        ("A / 2 == 1", "true division"),
        ("A & 1 == 1", "bitwise"),
        ("A in [1, 2]", "membership"),
        ("A is B", "identity"),
        ("[x for x in A] == 1", "comprehensions"),
        ("(A := 1) == 1", "assignment"),
        ("f'{A}' == 1", "f-strings"),
        ("A if B else C", "conditional"),
        ("A == 1.5", "literal 1.5"),
        ("A == True", "literal True"),
        ("abs(A, B) == 1", "abs() with 2"),
        ("max(A, key=B) == 1", "keyword arguments"),
        ("Color + 1 == 2", "text values"),
        ("Color < 'b'", "text allows only == and !="),
        ("Color == 1", "comparing text with a number"),
        ("A + B", "not a condition"),
        ("import os", "not a valid expression"),
        ("A ==", "not a valid expression"),
        ("abs == 1", "other than as a call"),
        ("A == " + "+".join(["1"] * 700), "too large"),
        ("x" * 5000, "characters long"),
    ],
)
def test_rejected_constructs_name_what_is_not_allowed(text, fragment):
    with pytest.raises(ConstraintSyntaxError) as info:
        parse_expr(text, VARS)
    assert fragment in str(info.value)
    assert isinstance(info.value, ParseError)


def test_unknown_variable_is_named_with_the_declared_ones():
    with pytest.raises(ConstraintSyntaxError, match="unknown variable 'D'.*A, B, C"):
        parse_expr("A + D == 1", VARS)


def test_deep_nesting_is_rejected_not_a_recursion_error():
    deep = "-" * 100 + "A == 1"
    with pytest.raises(ConstraintSyntaxError, match="nesting"):
        parse_expr(deep, VARS)
