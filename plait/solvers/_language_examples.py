"""The formulation language for prompts: its rules in a few lines, and worked examples (a puzzle and its model).

One per puzzle family the benchmarks use (cryptarithm, N-queens, zebra-style
assignment, futoshiki grid, mini sudoku), each with a unique solution
(tests/solvers check that each parses and solves to it). The puzzles are
worded and laid out as reasoning-gym's generators word them, but are not
taken from them; the models name things as a user would ask for them
(cells ``r1c1``, queens ``q1`` by row, a house number per attribute value),
and their comments say how each kind of clue is written, because a small
model copies an example's conventions rather than reading the rules.
"""

from __future__ import annotations

from pydantic import BaseModel

__all__ = ["FormulationExample", "FORMULATION_EXAMPLES", "FORMULATION_SYNTAX"]

FORMULATION_SYNTAX = """\
Write the model in the formulation language, one statement per line:
- variables with a range or a set of values: `S E N D in 0..9`, `Color in {"red","green"}`
- all different: `alldifferent(S,E,N,D)`; over expressions: `alldifferent(Q1+1,Q2+2,Q3+3)`
- sums: `sum(A,B,C) == 10`; weighted: `sum(2*A,3*B) <= 12`
- allowed or forbidden combinations: `(A,B) in {(1,2),(2,3)}`, `(A,B) not in {(1,1)}`
- if-then: `A == 1 -> B != 2`; at least one of: `any(A == 1,B == 2)`
- any other condition: `A+B == C`, `abs(A-B) == 1`, `A != 0 and B > A`, `Color == "red"`
Conditions use only declared names, integers, + - * // % **, abs min max sum, comparisons, and/or/not.
`#` starts a comment. Declare every variable you use, each once."""
"""The language's rules for a system prompt (every statement quoted in it parses; tests/solvers check)."""


class FormulationExample(BaseModel):
    """A puzzle and its model in the formulation language (what ``parse_formulation`` reads)."""

    problem: str
    formulation: str


_CRYPTARITHM = FormulationExample(
    problem=(
        "Solve this cryptarithm:\n\n   SEND\n+  MORE\n------\n  MONEY\n\n"
        "Each letter stands for a unique digit (0-9). No leading letter can be zero.\n"
        'Provide a comma separated mapping from letters to digits that satisfies the equation in your final '
        'answer. Output format: "A=1,B=2,C=3" (without quotes)'
    ),
    formulation="""\
# one digit per letter; leading letters are not zero
S M in 1..9
E N D O R Y in 0..9
alldifferent(S,E,N,D,M,O,R,Y)
1000*S+100*E+10*N+D+1000*M+100*O+10*R+E == 10000*M+1000*O+100*N+10*E+Y""",
)

_QUEENS = FormulationExample(
    problem=(
        "Your job is to complete an n x n chess board with n Queens in total, such that no two attack each "
        "other.\n\nNo two queens attack each other if they are not in the same row, column, or diagonal.\n\n"
        "You can place a queen by replacing an underscore (_) with a Q.\n\n"
        "Given the below board of size 8 x 8 your job is to place 4 queen(s) on the board such that no two "
        "queens attack each other.\n"
        "_ _ _ _ _ _ _ _\n_ _ _ _ Q _ _ _\n_ _ _ _ _ _ _ _\n_ _ _ _ _ Q _ _\n"
        "_ _ Q _ _ _ _ _\n_ _ _ _ _ _ _ _\n_ Q _ _ _ _ _ _\n_ _ _ _ _ _ _ _"
    ),
    formulation="""\
# qN is the column (1..8) of the queen in row N: one queen per row
q1 q2 q3 q4 q5 q6 q7 q8 in 1..8
# no two queens share a column or a diagonal
alldifferent(q1,q2,q3,q4,q5,q6,q7,q8)
alldifferent(q1+1,q2+2,q3+3,q4+4,q5+5,q6+6,q7+7,q8+8)
alldifferent(q1-1,q2-2,q3-3,q4-4,q5-5,q6-6,q7-7,q8-8)
# the queens on the board: row 2 has its Q in column 5
q2 == 5
q4 == 6
q5 == 3
q7 == 2""",
)

_ZEBRA = FormulationExample(
    problem=(
        "This is a logic puzzle. There are 3 houses (numbered 1 on the left, 3 on the right), from the perspective "
        "of someone standing across the street from them. Each has a different person in them. They have "
        "different characteristics:\n"
        " - Each person has a unique name: peter, eric, arnold\n"
        " - Everyone has a different favorite drink: tea, milk, root beer\n"
        " - Each person has a different pet: cat, dog, bird\n\n"
        "1. Eric is directly left of the person who likes milk.\n"
        "2. The root beer lover is the cat lover.\n"
        "3. The bird keeper is in the second house.\n"
        "4. Arnold is somewhere to the right of the cat lover.\n"
        "5. The person who likes tea and the bird keeper are next to each other.\n"
        "6. Peter is not in the third house.\n\n"
        "What is Name of the person who lives in House 1?? Provide only the name of the person as your final answer."
    ),
    formulation="""\
# each name is the house number (1..3) of that person, drink or pet; spaces become _
peter eric arnold tea milk root_beer cat dog bird in 1..3
alldifferent(peter,eric,arnold)
alldifferent(tea,milk,root_beer)
alldifferent(cat,dog,bird)
# directly left of: X+1 == Y; somewhere to the right of: X > Y; next to each other: abs(X-Y) == 1
eric+1 == milk
root_beer == cat
bird == 2
arnold > cat
abs(tea-bird) == 1
peter != 3""",
)

_FUTOSHIKI = FormulationExample(
    problem=(
        "Solve the following 4x4 Futoshiki puzzle:\n\n"
        "_ < _   4   _\n            ∧\n4   _   _ < _\n∨   ∧        \n2   _ > _   1\n             \n_   1   _   _\n\n"
        "Ensure your answer follows the same format as the puzzle above, just replace blanks (_) with the correct "
        "value for the cell.\nUse < and > for horizontal constraints. Use ∧ and ∨ for vertical constraints.\n"
        "Remember, in Futoshiki each row and column must contain each number from 1 to 4 exactly once."
    ),
    formulation="""\
# rNcM is the number in row N, column M
r1c1 r1c2 r1c3 r1c4 r2c1 r2c2 r2c3 r2c4 r3c1 r3c2 r3c3 r3c4 r4c1 r4c2 r4c3 r4c4 in 1..4
alldifferent(r1c1,r1c2,r1c3,r1c4)
alldifferent(r2c1,r2c2,r2c3,r2c4)
alldifferent(r3c1,r3c2,r3c3,r3c4)
alldifferent(r4c1,r4c2,r4c3,r4c4)
alldifferent(r1c1,r2c1,r3c1,r4c1)
alldifferent(r1c2,r2c2,r3c2,r4c2)
alldifferent(r1c3,r2c3,r3c3,r4c3)
alldifferent(r1c4,r2c4,r3c4,r4c4)
# the numbers given
r1c3 == 4
r2c1 == 4
r3c1 == 2
r3c4 == 1
r4c2 == 1
# < and > between two cells of a row
r1c1 < r1c2
r2c3 < r2c4
r3c2 > r3c3
# ∧ under a cell: it is smaller than the cell below it; ∨: larger
r1c4 < r2c4
r2c1 > r3c1
r2c2 < r3c2""",
)

_MINI_SUDOKU = FormulationExample(
    problem=(
        "In 4x4 Mini Sudoku:\n- Each row must contain each number from 1-4 exactly once\n"
        "- Each column must contain each number 1-4 exactly once\n"
        "- Each 2x2 subgrid must contain each number 1-4 exactly once\n"
        "Solve this 4x4 Mini Sudoku puzzle:\n_ 2 3 _\n3 _ _ _\n_ _ _ 3\n4 _ 2 _\n"
        "Format your response as the puzzle above, with spaces separating each number within a row, and newlines "
        "separating rows."
    ),
    formulation="""\
# rNcM is the number in row N, column M
r1c1 r1c2 r1c3 r1c4 r2c1 r2c2 r2c3 r2c4 r3c1 r3c2 r3c3 r3c4 r4c1 r4c2 r4c3 r4c4 in 1..4
alldifferent(r1c1,r1c2,r1c3,r1c4)
alldifferent(r2c1,r2c2,r2c3,r2c4)
alldifferent(r3c1,r3c2,r3c3,r3c4)
alldifferent(r4c1,r4c2,r4c3,r4c4)
alldifferent(r1c1,r2c1,r3c1,r4c1)
alldifferent(r1c2,r2c2,r3c2,r4c2)
alldifferent(r1c3,r2c3,r3c3,r4c3)
alldifferent(r1c4,r2c4,r3c4,r4c4)
# the 2x2 subgrids
alldifferent(r1c1,r1c2,r2c1,r2c2)
alldifferent(r1c3,r1c4,r2c3,r2c4)
alldifferent(r3c1,r3c2,r4c1,r4c2)
alldifferent(r3c3,r3c4,r4c3,r4c4)
# the numbers given: row 1 is "_ 2 3 _"
r1c2 == 2
r1c3 == 3
r2c1 == 3
r3c4 == 3
r4c1 == 4
r4c3 == 2""",
)

FORMULATION_EXAMPLES: list[FormulationExample] = [_CRYPTARITHM, _QUEENS, _ZEBRA, _FUTOSHIKI, _MINI_SUDOKU]
"""Worked examples of the language, one per puzzle family, for few-shot prompts."""
