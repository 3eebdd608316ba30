"""The point of the language: a cryptarithm or an 8-queens model in under 150 tokens (JSON: 218 and 1,062).

Counted with Qwen2.5-Coder's own tokenizer (the demo and benchmark model), pulled like every test model.
"""

import pytest

from plait.executors import hf_tokenizer, pull_model
from plait.solvers import FORMULATION_EXAMPLES, parse_formulation

SEND_MORE_MONEY = FORMULATION_EXAMPLES[0].formulation
EIGHT_QUEENS = """\
Q1 Q2 Q3 Q4 Q5 Q6 Q7 Q8 in 1..8
alldifferent(Q1,Q2,Q3,Q4,Q5,Q6,Q7,Q8)
alldifferent(Q1+1,Q2+2,Q3+3,Q4+4,Q5+5,Q6+6,Q7+7,Q8+8)
alldifferent(Q1-1,Q2-2,Q3-3,Q4-4,Q5-5,Q6-6,Q7-7,Q8-8)"""


@pytest.fixture(scope="module")
def count():
    spans = hf_tokenizer(pull_model("qwen2.5-coder-0.5b"))
    return lambda text: len(spans(text))


def test_a_cryptarithm_and_eight_queens_fit_in_150_tokens(count):
    assert count(SEND_MORE_MONEY) == 105  # with its comment line
    assert count(EIGHT_QUEENS) == 114
    assert len(parse_formulation(EIGHT_QUEENS).constraints) == 1 + 2 * 28  # the diagonals expand pairwise


def test_the_same_models_as_json_cost_far_more(count):
    assert count(parse_formulation(SEND_MORE_MONEY).model_dump_json()) == 218
    assert count(parse_formulation(EIGHT_QUEENS).model_dump_json()) == 1062


def test_tight_spacing_is_what_saves_tokens(count):
    assert count("alldifferent(Q1+1,Q2+2)") < count("alldifferent(Q1 + 1, Q2 + 2)")
    assert parse_formulation("Q1 Q2 in 1..8\nalldifferent(Q1+1,Q2+2)") == \
        parse_formulation("Q1 Q2 in 1..8\nalldifferent(Q1+1, Q2+2)")
