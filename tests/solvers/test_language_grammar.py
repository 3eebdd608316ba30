"""The grammar and the parser agree: what the grammar accepts parses, what the printer writes the grammar accepts.

Checked with xgrammar's own matcher (the engine vLLM compiles grammars with)
over a one-character vocabulary, so the grammar can also be *sampled*: a
seeded random walk picks among the characters the matcher allows next, and
every string it completes must parse once the names it uses are declared.
What a context-free grammar cannot know (is a range empty? is a variable
compared with text declared with text values?) and the grammar's documented
superset (a keyword used as a name, a size over a limit) are the only ways
such a string may still fail, and those failures are listed here by their messages.
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
    r"is already declared", r"is empty; write the smaller",
    r"more than \d+ values", r"domain values must be distinct", r"row .* has \d+ values for \d+ variables",
    r"more than once", r"comparing text with a number", r"text values in", r"sums need integer domains",
    r"the limit MAX_\w+", r"characters long; the limit is", r"syntax nodes", r"nesting deeper",  # size limits
    r"cannot name a variable",  # a keyword used as a name: the grammar's documented superset
]))


@pytest.fixture(scope="module")
def compiled():
    info = xgr.TokenizerInfo(_VOCAB, vocab_type=xgr.VocabType.RAW, stop_token_ids=[_EOS])
    return xgr.GrammarCompiler(info).compile_grammar(FORMULATION_GRAMMAR)


def accepts(compiled, text: str) -> bool:
    matcher = xgr.GrammarMatcher(compiled)
    return matcher.accept_string(text) and matcher.accept_token(_EOS)


_ENDINGS = ["", ")", "))", "}", ")}", '"', '"}', "1", ",1)", "..2", " in 1..2", " == 1", ")) == 1"]


def sample(compiled, rng: random.Random, budget: int) -> str:
    """A random string of the grammar: uniform among allowed characters, then steering to the end.

    Past ``budget`` the walk ends as soon as one of a few short endings completes it (lists and lines are
    unbounded, so it must be steered), else takes a calm step: no new brackets, operators or spaces."""
    matcher, out = xgr.GrammarMatcher(compiled), []
    mask = xgr.allocate_token_bitmask(1, len(_VOCAB))
    for step in range(budget + 2_000):
        if step >= budget:
            text = "".join(out)
            for ending in _ENDINGS:
                if accepts(compiled, text + ending):
                    return text + ending
        matcher.fill_next_token_bitmask(mask)
        words = mask[0].tolist()
        allowed = [i for i in range(len(_VOCAB)) if (words[i // 32] >> (i % 32)) & 1]
        if step >= budget:
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
    "_x in 1..3", "1x in 1..3",  # a leading underscore or digit
    "A in 1..3\n\nA == 1",  # a blank line
    "A in 1..3 ",  # a trailing space
    "A in 1..3\nA  == 1",  # two spaces
    "A in 1..3\nA ==1", "A in 1..3\nA+ 1 == 2", "A B in 1..3\nalldifferent(A ,B)",  # a space on one side only
    "A in 1..3\nA == 1 ** 2 ** 3",  # nested powers
    "A in 1..3\nA + 1",  # not a condition
    "A in 1..3\nalldifferent(A == 1, A)",  # a condition inside alldifferent
    'A in {1, "x"}',  # a domain mixing numbers and text
])
def test_the_grammar_refuses_what_would_not_parse_or_could_loop(compiled, text):
    assert not accepts(compiled, text)


@pytest.mark.parametrize("text", ["if in 1..3", "True in 1..3", "sum in 1..3", "A in 1..3\nA == lambda"])
def test_keywords_as_names_pass_the_grammar_and_the_parser_refuses_them_where_they_stand(compiled, text):
    # the documented superset: excluding keywords from names cost half the grammar's compile time
    assert accepts(compiled, text)
    with pytest.raises(FormulationError) as caught:
        parse_formulation(text)
    assert (caught.value.line, caught.value.column) == (text.count("\n") + 1, 1)
    assert "cannot name a variable" in str(caught.value) or "not a valid expression" in str(caught.value)


def test_spacing_is_tight_or_one_space_on_each_side(compiled):
    assert accepts(compiled, "A B in 1..3\nA+B == 3\nA + B==3\nalldifferent(A, B)\nA == 1 -> B != 1\nA==1->B!=1")


def test_bounds_are_at_their_limits(compiled):
    assert accepts(compiled, "A in 1.." + "9" * MAX_DIGITS)
    assert accepts(compiled, "A" * MAX_NAME + " in 1..3")
    assert accepts(compiled, "iff in 1..3\nTruex in 1..3\nsums in 1..3\nassert_ in 1..3")


_DECLARED = re.compile(r"^([A-Za-z]\w*(?: [A-Za-z]\w*)*) (?:in|not in) ", re.M)
_NOT_VARIABLES = {"and", "or", "not", "in", "abs", "min", "max", "sum", "alldifferent", "any", "compare"}


def with_declarations(text: str) -> str:
    """``text`` after one declaration of every name it uses but does not declare itself."""
    declared = {name for m in _DECLARED.finditer(text) for name in m.group(1).split(" ")}
    used = dict.fromkeys(re.findall(r'"[^"]*"|#[^\n]*|([A-Za-z]\w*)', text))
    missing = [n for n in used if n and n not in declared and n not in _NOT_VARIABLES]
    return (" ".join(missing) + " in 0..9\n" if missing else "") + text


def test_sampled_strings_parse_or_fail_only_on_what_a_grammar_cannot_know(compiled):
    rng = random.Random(20)
    outcomes = {"parsed": 0, "semantic": 0}
    for _ in range(200):
        text = "\n".join(sample(compiled, rng, budget=rng.choice([10, 40, 150])).rstrip("\n")
                         for _ in range(rng.randint(1, 4)))
        assert accepts(compiled, text)
        try:
            parse_formulation(with_declarations(text))
            outcomes["parsed"] += 1
        except FormulationError as exc:
            assert SEMANTIC.search(str(exc)), f"{exc}\n--- sampled text:\n{text}"
            outcomes["semantic"] += 1
    assert outcomes["parsed"] >= 50 and outcomes["semantic"] > 0, outcomes  # both paths are exercised


def test_the_csp_json_schema_compiles_without_the_oneof_warning(capfd):
    import json

    from plait.executors import JsonSchema
    from plait.solvers import CSP

    overlapping = {"oneOf": [{"type": "integer"}, {"type": "integer", "minimum": 0}]}
    xgr.Grammar.from_json_schema(json.dumps(overlapping))
    assert "falling back to anyOf" in capfd.readouterr().err  # the warning is seen where it is printed
    schema = JsonSchema.of(CSP).schema_
    xgr.Grammar.from_json_schema(json.dumps(schema))
    assert "oneOf" not in json.dumps(schema) and "falling back" not in capfd.readouterr().err
    assert CSP.model_validate({"variables": [{"name": "A", "domain": [1]}],
                               "constraints": [{"kind": "sum", "variables": ["A"], "value": 1}]}).constraints[0].kind == "sum"


# -- on the real engine -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_engine():
    """The in-process engine on the tiny random model (its own module-scoped engine: random replies are the point)."""
    from plait.executors import VLLMBackend, pull_model

    pull_model("tiny-random")
    keeper = VLLMBackend("tiny-random", max_model_len=1024)
    anyio.run(keeper.start)
    yield lambda: VLLMBackend("tiny-random", max_model_len=1024)
    anyio.run(keeper.aclose)


@pytest.mark.vllm
def test_replies_decoded_under_the_grammar_on_vllm_parse(tiny_engine, compiled):
    from plait.executors import Message

    example = FORMULATION_EXAMPLES[2]
    prompt = (Message(role="user", content=example.problem), Message(role="assistant", content=example.formulation),
              Message(role="user", content=FORMULATION_EXAMPLES[0].problem))
    params = SamplingParams(temperature=1.0, max_tokens=200, n=24, seed=7,
                            constraint=Grammar(grammar=FORMULATION_GRAMMAR))

    async def main():
        async with tiny_engine() as backend:
            return await backend.generate([Request(prompt=prompt, params=params)])

    (completion,) = anyio.run(main)
    finished = [s.text for s in completion.samples if s.finish_reason == "stop"]
    for sample in completion.samples:
        matcher = xgr.GrammarMatcher(compiled)
        assert matcher.accept_string(sample.text), sample.text  # vLLM held the reply to the grammar
    for text in finished:
        assert accepts(compiled, text)
        try:
            parse_formulation(with_declarations(text))
        except FormulationError as exc:
            assert SEMANTIC.search(str(exc)), f"{exc}\n--- reply:\n{text}"
    print(f"{len(finished)} of {len(completion.samples)} replies ended within max_tokens")
