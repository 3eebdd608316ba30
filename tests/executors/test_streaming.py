"""Backend.stream: text handed over as it is generated, with token accounting through RunContext."""

import time

import anyio

from plait import Backend, Completion, Graph, Request, RunContext, ScriptedBackend
from plait.executors import Sample


def test_scripted_backend_streams_tokens_paced_by_token_latency():
    backend = ScriptedBackend(["one two\nthree four\nfive"], token_latency=0.05)
    chunks = []

    async def main():
        start = time.perf_counter()
        completion = await backend.stream(Request(prompt="go"), lambda c: chunks.append((c, time.perf_counter() - start)))
        return completion

    completion = anyio.run(main)
    assert [c for c, _ in chunks] == ["one", " two", "\nthree", " four", "\nfive"]
    assert completion.text == "one two\nthree four\nfive" and completion.completion_tokens == 5
    assert chunks[0][1] < chunks[4][1]  # later tokens arrive later
    assert chunks[4][1] >= 0.2  # 5 tokens x 50 ms, never faster
    assert backend.requests == [Request(prompt="go")]


def test_token_latency_also_paces_plain_generate():
    backend = ScriptedBackend(["a b c d e f g h i j"], token_latency=0.03)
    start = time.perf_counter()
    anyio.run(backend.generate_one, Request(prompt="go"))
    assert time.perf_counter() - start >= 0.25  # 10 tokens x 30 ms, never faster


class _Whole(Backend):
    """A backend that cannot stream: the base class hands over the whole text at the end."""

    async def generate(self, requests):
        return [Completion(samples=(Sample(text="all at once", completion_tokens=3),), prompt_tokens=2)
                for _ in requests]


def test_default_stream_hands_over_the_whole_text_and_ctx_counts_tokens():
    g = Graph("s")
    seen = []

    @g.node
    async def ask(q: str, ctx: RunContext) -> str:
        async def on_text(chunk):
            seen.append(chunk)

        return (await ctx.generate_stream(Request(prompt=q), on_text)).text

    result = anyio.run(lambda: g.run({"q": "hi"}, backend=_Whole()))
    assert result.output == "all at once" and seen == ["all at once"]
    assert (result.tokens.prompt_tokens, result.tokens.completion_tokens, result.tokens.requests) == (2, 3, 1)
    assert _Whole.supports_streaming is False and ScriptedBackend.supports_streaming is True
