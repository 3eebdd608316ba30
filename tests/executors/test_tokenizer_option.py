"""The scripted backends count, cut and stream text with a pluggable tokenizer."""

import json

import pytest

from plait import FunctionBackend, Request, SamplingParams, ScriptedBackend
from plait.errors import ModelError
from plait.executors import count_tokens, hf_tokenizer, pull_model, word_spans

pytestmark = pytest.mark.anyio


def char_pairs(text: str) -> list[tuple[int, int]]:
    """A toy tokenizer: every two characters are one token."""
    return [(i, min(i + 2, len(text))) for i in range(0, len(text), 2)]


async def test_default_counts_words_and_punctuation():
    backend = ScriptedBackend(["Paris, France."])
    completion = await backend.generate_one(Request(prompt="Capital of France?"))
    assert completion.samples[0].completion_tokens == 4 == count_tokens("Paris, France.")
    assert completion.prompt_tokens == 4
    assert backend.count_tokens("a {b}") == len(word_spans("a {b}")) == 4


async def test_custom_tokenizer_counts_cuts_and_caches_by_its_tokens():
    backend = ScriptedBackend(["abcdefghij", "abcdefghij"], tokenizer=char_pairs)
    full = await backend.generate_one(Request(prompt="xxxxyy"))
    assert (full.samples[0].completion_tokens, full.prompt_tokens, full.cached_tokens) == (5, 3, 0)
    cut = await backend.generate_one(Request(prompt="xxxxzz", params=SamplingParams(max_tokens=3)))
    assert cut.samples[0].text == "abcdef" and cut.samples[0].finish_reason == "length"
    assert cut.samples[0].completion_tokens == 3
    assert cut.cached_tokens == 2  # "xx", "xx" shared with the first prompt; "zz" differs


async def test_stream_hands_over_one_chunk_per_token():
    backend = FunctionBackend(lambda r: "abcde", tokenizer=char_pairs)
    chunks: list[str] = []
    completion = await backend.stream(Request(prompt="p"), chunks.append)
    assert chunks == ["ab", "cd", "e"] and completion.text == "abcde"


async def test_min_tokens_counts_in_the_tokenizer_s_tokens():
    backend = FunctionBackend(lambda r: "ab.cd.ef", tokenizer=char_pairs)
    request = Request(prompt="p", params=SamplingParams(stop=["."], min_tokens=2))
    sample = (await backend.generate_one(request)).samples[0]
    assert sample.text == "ab.cd"  # the first "." falls inside the first 2 tokens, so it cannot stop


async def test_hf_tokenizer_counts_like_the_model():
    from tokenizers import Tokenizer

    folder = pull_model("smollm2-135m")
    reference = Tokenizer.from_file(str(folder / "tokenizer.json"))
    plan = json.dumps({"steps": [{"tool": "lookup", "args": {"country": "France"}}]})
    backend = ScriptedBackend([plan], tokenizer="smollm2-135m")
    completion = await backend.generate_one(Request(prompt="Make a plan."))
    expected = len(reference.encode(plan, add_special_tokens=False).ids)
    assert completion.samples[0].completion_tokens == expected
    assert expected < count_tokens(plan)  # JSON punctuation merges into fewer real tokens
    assert hf_tokenizer(folder)(plan) == hf_tokenizer(folder / "tokenizer.json")(plan)


def test_bad_tokenizer_sources_are_refused_clearly(tmp_path):
    with pytest.raises(ModelError, match="neither a file, a folder nor a registry model.*smollm2-135m"):
        hf_tokenizer("no-such-model")
    with pytest.raises(ModelError, match="no tokenizer.json"):
        hf_tokenizer(tmp_path)
    with pytest.raises(TypeError, match="tokenizer must be"):
        ScriptedBackend(["x"], tokenizer=42)
