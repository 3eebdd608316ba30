"""Streaming over HTTP assembles the same completion a non-streamed request returns."""

from __future__ import annotations

import anyio
import pytest

from plait import Message, Request, SamplingParams
from plait.executors import OpenAIBackend

pytestmark = pytest.mark.timeout(900)  # may include starting the session's vLLM server

MODEL = "smollm2-135m"  # as in conftest.py


@pytest.mark.parametrize("prompt", ["The three primary colours are", (Message(role="user", content="Name a fruit."),)],
                         ids=["completions", "chat"])
def test_streamed_greedy_output_matches_the_plain_response(vllm_server, prompt):
    request = Request(prompt=prompt, params=SamplingParams(max_tokens=12, logprobs=1))

    async def main():
        async with OpenAIBackend(vllm_server, MODEL) as plain, OpenAIBackend(vllm_server, MODEL, stream=True) as streamed:
            return (await plain.generate([request]))[0], (await streamed.generate([request]))[0]

    plain, streamed = anyio.run(main)
    assert streamed.text == plain.text
    assert streamed.samples[0].completion_tokens == plain.samples[0].completion_tokens >= 1
    assert streamed.samples[0].finish_reason == plain.samples[0].finish_reason
    assert len(streamed.samples[0].logprobs) == streamed.samples[0].completion_tokens
    assert streamed.prompt_tokens == plain.prompt_tokens > 0


def test_streamed_n_samples_are_kept_apart(vllm_server):
    request = Request(prompt="A colour:", params=SamplingParams(n=3, temperature=1.0, seed=5, max_tokens=6))

    async def main():
        async with OpenAIBackend(vllm_server, MODEL, stream=True) as backend:
            return (await backend.generate([request]))[0]

    completion = anyio.run(main)
    assert len(completion.samples) == 3
    assert all(1 <= s.completion_tokens <= 6 for s in completion.samples)
