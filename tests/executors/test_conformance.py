"""One conformance suite, run against every backend: scripted, in-process vLLM, vLLM over HTTP.

The real backends serve smollm2-135m; tests therefore check properties any engine must
satisfy (counts, order, constraints, determinism of greedy decoding), never particular text.
"""

from __future__ import annotations

import json
import re

import anyio
import pytest
from pydantic import BaseModel, Field

from plait import BackendError, JsonSchema, Message, Request, SamplingParams
from plait.executors import Choice, Grammar, Regex

# A generation that cannot end early (no EOS until 1500 digits): for cancellation and timeouts.
ENDLESS = Request(prompt="Digits:", params=SamplingParams(max_tokens=1500, constraint=Regex(pattern="[0-9]{1500}")))
pytestmark = pytest.mark.timeout(900)  # includes starting the session engine or server (minutes on a busy CPU)

LONG_CONTEXT = " ".join(f"Fact {i}: the number {i} is {'even' if i % 2 == 0 else 'odd'}." for i in range(60))


def run(make_backend, check, **options):
    async def main():
        async with make_backend(**options) as backend:
            await check(backend)

    anyio.run(main)


def test_single_generate(make_backend):
    async def check(backend):
        (c,) = await backend.generate([Request(prompt="The capital of France is", params=SamplingParams(max_tokens=8))])
        assert len(c.samples) == 1
        assert c.prompt_tokens > 0
        assert 1 <= c.completion_tokens <= 8
        assert c.samples[0].finish_reason in ("stop", "length")
        assert c.total_tokens == c.prompt_tokens + c.completion_tokens

    run(make_backend, check)


def test_batch_keeps_request_order(make_backend):
    options = [["red", "green"], ["cat", "dog"], ["one", "two"]]

    async def check(backend):
        requests = [Request(prompt=f"Pick one of {o}:", params=SamplingParams(max_tokens=4, constraint=Choice(options=o)))
                    for o in options]
        completions = await backend.generate(requests)
        assert len(completions) == 3
        for completion, allowed in zip(completions, options):
            assert completion.text in allowed

    run(make_backend, check)


def test_n_sampling_is_one_request_with_n_samples(make_backend):
    async def check(backend):
        params = SamplingParams(n=4, temperature=1.0, seed=7, max_tokens=6)
        (c,) = await backend.generate([Request(prompt="Write a word:", params=params)])
        assert len(c.samples) == 4
        assert all(1 <= s.completion_tokens <= 6 for s in c.samples)
        assert c.completion_tokens == sum(s.completion_tokens for s in c.samples)
        (single,) = await backend.generate([Request(prompt="Write a word:", params=params.model_copy(update={"n": 1}))])
        assert c.prompt_tokens == single.prompt_tokens  # the prompt is counted (and prefilled) once

    run(make_backend, check)


def test_max_tokens_cuts_generation(make_backend):
    async def check(backend):
        request = Request(prompt="Count upwards: 1, 2, 3, 4,", params=SamplingParams(max_tokens=5))
        (c,) = await backend.generate([request])
        assert c.samples[0].completion_tokens == 5
        assert c.samples[0].finish_reason == "length"

    run(make_backend, check)


def test_stop_string_truncates_greedy_output(make_backend):
    async def check(backend):
        prompt = "List some animals: cat, dog,"
        (free,) = await backend.generate([Request(prompt=prompt, params=SamplingParams(max_tokens=24))])
        words = re.findall(r"[A-Za-z]{3,}", free.text)
        assert len(words) >= 2, free.text
        stop = words[1]
        (cut,) = await backend.generate([Request(prompt=prompt, params=SamplingParams(max_tokens=24, stop=(stop,)))])
        assert cut.text == free.text[: free.text.index(stop)]
        assert cut.samples[0].finish_reason == "stop"

    run(make_backend, check)


def test_min_tokens_holds_off_stop_strings(make_backend):
    async def check(backend):
        prompt = "List some animals: cat, dog,"
        stopped = SamplingParams(max_tokens=16, stop=(" ",))
        (cut,) = await backend.generate([Request(prompt=prompt, params=stopped)])
        assert cut.samples[0].completion_tokens < 12, cut.text
        (held,) = await backend.generate([Request(prompt=prompt, params=stopped.model_copy(update={"min_tokens": 12}))])
        assert 12 <= held.samples[0].completion_tokens <= 16, held.text

    run(make_backend, check)
    with pytest.raises(ValueError, match="min_tokens"):
        SamplingParams(max_tokens=4, min_tokens=5)


def test_choice_constraint(make_backend):
    async def check(backend):
        params = SamplingParams(n=3, temperature=1.0, seed=1, max_tokens=5, constraint=Choice(options=["yes", "no"]))
        (c,) = await backend.generate([Request(prompt="Is water wet? Answer:", params=params)])
        assert {s.text for s in c.samples} <= {"yes", "no"}

    run(make_backend, check)


def test_regex_constraint(make_backend):
    async def check(backend):
        params = SamplingParams(max_tokens=12, constraint=Regex(pattern=r"[0-9]{3}-[a-z]{2}"))
        (c,) = await backend.generate([Request(prompt="Give a code like 123-xy:", params=params)])
        assert re.fullmatch(r"[0-9]{3}-[a-z]{2}", c.text), c.text

    run(make_backend, check)


class City(BaseModel):
    city: str = Field(max_length=12)
    population: int = Field(ge=0, le=100_000_000)  # bounded, so a small model cannot loop on digits


def test_json_schema_constraint_parses_into_the_model(make_backend):
    schema = City.model_json_schema()

    async def check(backend):
        params = SamplingParams(max_tokens=40, constraint=JsonSchema(schema=schema))
        (c,) = await backend.generate([Request(prompt="Describe Paris as JSON:", params=params)])
        assert c.samples[0].finish_reason == "stop", c.text
        city = City.model_validate(json.loads(c.text))
        assert len(city.city) <= 12

    run(make_backend, check)


def test_grammar_constraint(make_backend):
    async def check(backend):
        grammar = 'root ::= "(" [0-9] [0-9] ")"'
        params = SamplingParams(max_tokens=10, constraint=Grammar(grammar=grammar))
        (c,) = await backend.generate([Request(prompt="A two-digit number in parentheses:", params=params)])
        assert re.fullmatch(r"\([0-9]{2}\)", c.text), c.text

    run(make_backend, check)


def test_logprobs_when_asked(make_backend):
    async def check(backend):
        params = SamplingParams(max_tokens=5, logprobs=2)
        (c,) = await backend.generate([Request(prompt="Once upon a time", params=params)])
        sample = c.samples[0]
        assert sample.logprobs is not None
        assert len(sample.logprobs) == sample.completion_tokens
        for entry in sample.logprobs:
            assert entry.logprob <= 0.0
            assert len(entry.top) >= 2
        (plain,) = await backend.generate([Request(prompt="Once upon a time", params=SamplingParams(max_tokens=5))])
        assert plain.samples[0].logprobs is None

    run(make_backend, check)


def test_chat_messages_use_a_template(make_backend):
    async def check(backend):
        messages = (Message(role="system", content="You are terse."), Message(role="user", content="Say hi."))
        (chat,) = await backend.generate([Request(prompt=messages, params=SamplingParams(max_tokens=6))])
        (raw,) = await backend.generate([Request(prompt="Say hi.", params=SamplingParams(max_tokens=6))])
        assert chat.completion_tokens >= 1
        assert chat.prompt_tokens > raw.prompt_tokens  # the template (roles, markers) adds tokens

    run(make_backend, check)


def test_shared_prefix_reports_cached_tokens(make_backend):
    async def check(backend):
        params = SamplingParams(max_tokens=2)
        (first,) = await backend.generate([Request(prompt=LONG_CONTEXT + " Question: is 7 odd?", params=params)])
        (second,) = await backend.generate([Request(prompt=LONG_CONTEXT + " Question: is 8 odd?", params=params)])
        assert first.prompt_tokens > 500
        assert second.cached_tokens >= 0.5 * second.prompt_tokens
        assert second.cached_tokens < second.prompt_tokens

    run(make_backend, check)


def test_cancelled_request_leaves_backend_usable(make_backend):
    async def check(backend):
        with anyio.move_on_after(1.0) as scope:
            await backend.generate([ENDLESS])
        assert scope.cancelled_caught
        (c,) = await backend.generate([Request(prompt="Hello", params=SamplingParams(max_tokens=3))])
        assert 1 <= c.completion_tokens <= 3

    run(make_backend, check)


def test_backend_timeout_gives_backend_error(make_backend, backend_kind):
    if backend_kind == "scripted":
        pytest.skip("the scripted double has no request timeout; it simulates latency only")

    async def check(backend):
        with pytest.raises(BackendError, match="timeout"):
            await backend.generate([ENDLESS])
        backend.timeout = 120.0  # the same backend serves the next request
        (c,) = await backend.generate([Request(prompt="Hello", params=SamplingParams(max_tokens=3))])
        assert c.completion_tokens >= 1

    run(make_backend, check, timeout=0.5)


def test_stream_hands_over_text_as_it_arrives(make_backend):
    async def check(backend):
        assert backend.supports_streaming
        pieces: list[str] = []
        request = Request(prompt="Count upwards: 1, 2, 3, 4,", params=SamplingParams(max_tokens=8))
        completion = await backend.stream(request, pieces.append)
        assert len(pieces) >= 2
        assert "".join(pieces) == completion.text
        assert completion.completion_tokens == 8
        assert completion.prompt_tokens > 0

    run(make_backend, check)
