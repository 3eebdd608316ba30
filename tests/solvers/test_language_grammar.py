"""The grammar and the parser agree: what the grammar accepts parses, what the printer writes the grammar accepts.

Checked with xgrammar's own matcher (the engine vLLM compiles grammars with)
over a one-character vocabulary, so the grammar can also be *sampled*: a
seeded random walk picks among the characters the matcher allows next, and
every string it completes must parse. What a context-free grammar cannot
know (is a name declared? is a range empty?) is the only way such a string
may fail, and those failures are listed here by their messages.
"""

import random
import re

import anyio
import pytest
from hypothesis import HealthCheck, given, settings

from plait.errors import FormulationError
from plait.executors import Grammar, Request, SamplingParams
from plait.executors._constraints import check_request_constraint
from plait.solvers import FORMULATION_EXAMPLES, FORMULATION_GRAMMAR, format_formulation, parse_formulation
from plait.solvers._language_grammar import MAX_DIGITS, MAX_NAME
from tests.solvers.language_csps import csps

xgr = pytest.importorskip("xgrammar")

_VOCAB = [chr(i) for i in range(32, 127)] + ["\n", "<eos>"]
_EOS = len(_VOCAB) - 1

# What the grammar cannot rule out; any other failure of a sampled string is a disagreement.
SEMANTIC = re.compile("|".join([
    r"unknown variable", r"no variables are declared", r"is already declared", r"is empty; write the smaller",
    r"more than \d+ values", r"domain values must be distinct", r"row .* has \d+ values for \d+ variables",
    r"more than once", r"comparing text with a number", r"text values in", r"sums need integer domains",
    r"MAX_BITS", r"a domain needs at least one value", r"Input should be a valid (integer|string)",
]))


@pytest.fixture(scope="module")
def compiled():
    info = xgr.TokenizerInfo(_VOCAB, vocab_type=xgr.VocabType.RAW, stop_token_ids=[_EOS])
    return xgr.GrammarCompiler(info).compile_grammar(FORMULATION_GRAMMAR)


def accepts(compiled, text: str) -> bool:
    matcher = xgr.GrammarMatcher(compiled)
    return matcher.accept_string(text) and matcher.accept_token(_EOS)


def sample(compiled, rng: random.Random, budget: int) -> str:
    """A random string of the grammar: uniform among allowed characters, then steering to the end."""
    matcher, out = xgr.GrammarMatcher(compiled), []
    mask = xgr.allocate_token_bitmask(1, len(_VOCAB))
    for step in range(budget + 20_000):  # the grammar bounds every list, so the wind-down ends
        matcher.fill_next_token_bitmask(mask)
        words = mask[0].tolist()
        allowed = [i for i in range(len(_VOCAB)) if (words[i // 32] >> (i % 32)) & 1]
        if step >= budget:  # wind down: end if possible, else close brackets and leave names and numbers
            for preferred in (_EOS, _VOCAB.index(")"), _VOCAB.index("}"), _VOCAB.index('"')):
                if preferred in allowed:
                    allowed = [preferred]
                    break
            else:
                calm = [i for i in allowed if _VOCAB[i] not in "(-{ *+%/#"]
                allowed = calm or allowed
        token = rng.choice(allowed)
        if token == _EOS:
            return "".join(out)
        assert matcher.accept_token(token)
        out.append(_VOCAB[token])
    raise AssertionError(f"the walk did not end: {''.join(out)[:200]!r}")


def test_vllm_and_plait_accept_the_grammar():
    request = Request(prompt="x", params=SamplingParams(constraint=Grammar(grammar=FORMULATION_GRAMMAR)))
    check_request_constraint(request, xgrammar_only=True)
    assert "::=" in FORMULATION_GRAMMAR  # vLLM reads it as EBNF (not Lark) when it sees '::='


@pytest.mark.parametrize("example", FORMULATION_EXAMPLES, ids=lambda e: e.formulation.split("\n")[1][:30])
def test_every_worked_example_matches_the_grammar(compiled, example):
    assert accepts(compiled, example.formulation)
    assert accepts(compiled, example.formulation + "\n")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(csps())
def test_every_formatted_csp_matches_the_grammar(compiled, csp):
    # JSON lines are the printer's fallback for constraints without an exact compact form (here: an expression
    # that reads as a sum statement); the grammar leaves them out, as a model never needs to write one
    lines = [line for line in format_formulation(csp).split("\n") if not line.startswith("{")]
    assert accepts(compiled, "\n".join(lines)), "\n".join(lines)


@pytest.mark.parametrize("text", [
    "A in 1..123456789",  # more than MAX_DIGITS digits
    "A in 01..3",  # a leading zero (Python refuses 01)
    "A" * (MAX_NAME + 1) + " in 1..3",
    "if in 1..3", "True in 1..3", "sum in 1..3", "_x in 1..3",  # keywords, reserved names, a leading underscore
    "A in 1..3\n\nA == 1",  # a blank line
    "A in 1..3 ",  # a trailing space
    "A in 1..3\nA  == 1",  # two spaces
    "A in 1..3\nA == 1 ** 2 ** 3",  # nested powers
    "A in 1..3\nA + 1",  # not a condition
    "A in 1..3\nalldifferent(A == 1, A)",  # a condition inside alldifferent
])
def test_the_grammar_refuses_what_would_not_parse_or_could_loop(compiled, text):
    assert not accepts(compiled, text)


def test_bounds_are_at_their_limits(compiled):
    assert accepts(compiled, "A in 1.." + "9" * MAX_DIGITS)
    assert accepts(compiled, "A" * MAX_NAME + " in 1..3")
    assert accepts(compiled, "iff in 1..3\nTruex in 1..3\nsums in 1..3\nassert_ in 1..3")


def test_sampled_strings_parse_or_fail_only_on_what_a_grammar_cannot_know(compiled):
    rng = random.Random(20)
    outcomes = {"parsed": 0, "semantic": 0}
    for _ in range(150):
        text = sample(compiled, rng, budget=rng.choice([20, 60, 200]))
        assert accepts(compiled, text)
        try:
            parse_formulation(text)
            outcomes["parsed"] += 1
        except FormulationError as exc:
            assert SEMANTIC.search(str(exc)), f"{exc}\n--- sampled text:\n{text}"
            outcomes["semantic"] += 1
    assert outcomes["semantic"] > 0  # the walk reached errors (the list above is exercised)
