"""Worked examples of the formulation language, for prompts: a puzzle and the text a model should write.

One per puzzle family the benchmarks use (cryptarithm, N-queens, zebra-style
assignment, futoshiki grid), each with a unique solution (tests/solvers
check that each parses and solves to it). The puzzles are written in the
style of reasoning-gym's generators but are not taken from them.
"""

from __future__ import annotations

from pydantic import BaseModel

__all__ = ["FormulationExample", "FORMULATION_EXAMPLES"]


class FormulationExample(BaseModel):
    """A puzzle and its model in the formulation language (what ``parse_formulation`` reads)."""

    problem: str
    formulation: str


_CRYPTARITHM = FormulationExample(
    problem=(
        "Solve this cryptarithm:\n\n   SEND\n+  MORE\n------\n  MONEY\n\n"
        "Each letter stands for a unique digit (0-9). No leading letter can be zero."
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
        "Complete the 8 x 8 board with 8 queens in total, no two attacking each other (same row, column or "
        "diagonal). Queens already placed:\n"
        "Q _ _ _ _ _ _ _\n_ _ _ _ _ _ _ _\n_ _ _ _ _ _ _ Q\n_ _ _ _ _ _ _ _\n"
        "_ _ Q _ _ _ _ _\n_ _ _ _ _ _ _ _\n_ Q _ _ _ _ _ _\n_ _ _ _ _ _ _ _"
    ),
    formulation="""\
# Qi is the column (1-8) of the queen in row i: one queen per row by construction
Q1 Q2 Q3 Q4 Q5 Q6 Q7 Q8 in 1..8
alldifferent(Q1,Q2,Q3,Q4,Q5,Q6,Q7,Q8)
alldifferent(Q1+1,Q2+2,Q3+3,Q4+4,Q5+5,Q6+6,Q7+7,Q8+8)
alldifferent(Q1-1,Q2-2,Q3-3,Q4-4,Q5-5,Q6-6,Q7-7,Q8-8)
# the queens already on the board
Q1 == 1
Q3 == 8
Q5 == 3
Q7 == 2""",
)

_ZEBRA = FormulationExample(
    problem=(
        "There are 3 houses, numbered 1 to 3 from left to right. Each has a different person: alice, bob, carol. "
        "Each person has a different favorite color: red, green, blue, and a different pet: cat, dog, fish.\n"
        "1. Bob lives directly left of the person who loves green.\n"
        "2. Alice loves red.\n"
        "3. The cat owner loves blue.\n"
        "4. The fish owner lives next to the dog owner.\n"
        "5. Carol does not live in the first house.\n"
        "6. The dog owner lives in the second house.\n"
        "Who owns the fish?"
    ),
    formulation="""\
# each name is the house number of that person, color or pet
alice bob carol red green blue cat dog fish in 1..3
alldifferent(alice,bob,carol)
alldifferent(red,green,blue)
alldifferent(cat,dog,fish)
bob+1 == green
alice == red
cat == blue
abs(fish-dog) == 1
carol != 1
dog == 2""",
)

_FUTOSHIKI = FormulationExample(
    problem=(
        "Solve the following 4x4 Futoshiki puzzle:\n\n"
        "_ > _   4   _\n∧\n_ > _   _   _\n                \n_   _   _   _\n"
        "        ∨   ∧\n_   2   _   _\n\n"
        "Each row and column must contain each number from 1 to 4 exactly once. Use < and > for horizontal "
        "constraints; ∧ means the upper cell is smaller, ∨ larger."
    ),
    formulation="""\
# cell = row letter A-D + column 1-4
A1 A2 A3 A4 B1 B2 B3 B4 C1 C2 C3 C4 D1 D2 D3 D4 in 1..4
alldifferent(A1,A2,A3,A4)
alldifferent(B1,B2,B3,B4)
alldifferent(C1,C2,C3,C4)
alldifferent(D1,D2,D3,D4)
alldifferent(A1,B1,C1,D1)
alldifferent(A2,B2,C2,D2)
alldifferent(A3,B3,C3,D3)
alldifferent(A4,B4,C4,D4)
A3 == 4
D2 == 2
A1 > A2
A1 < B1
B1 > B2
C3 > D3
C4 < D4""",
)

FORMULATION_EXAMPLES: list[FormulationExample] = [_CRYPTARITHM, _QUEENS, _ZEBRA, _FUTOSHIKI]
"""Worked examples of the language, one per puzzle family, for few-shot prompts."""
