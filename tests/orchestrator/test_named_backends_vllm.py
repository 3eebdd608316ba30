"""Two real engines in one graph: smollm2-135m in process (core 0) and tiny-random behind a vLLM server (core 1).

vLLM's CPU build runs one engine per process well (two bind the same cores),
so the second model is an OpenAI-compatible server in a process of its own.
The models' text is noise and is never asserted: which engine answered is read
from the model id each reply carries.
"""

from __future__ import annotations

import signal
import time

import anyio
import pytest

from benchmarks._scaleout_routing import START_TIMEOUT, Server
from plait import FanOut, Graph, MemoryCheckpointer, OpenAIBackend, Request, RunContext, SamplingParams, VLLMBackend
from plait.executors import pull_model
from plait.orchestrator import TokensUsed
from plait.planners import ChainStep

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

SHORT = SamplingParams(max_tokens=6, seed=3)


def graph() -> Graph:
    g = Graph("two_engines")

    @g.node(model="small")
    async def draft(q: str, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt=f"Question: {q}\nAnswer:", params=SHORT))).text

    @g.node(model="large")
    async def verify(draft: str, q: str, ctx: RunContext) -> str:
        checked = await ctx.generate(Request(prompt=f"{q}\nDraft: {draft}\nVerdict:", params=SHORT))
        return checked.text

    vote = FanOut(ChainStep("Say one word about {q}:", sampling=SHORT, name="word"), k=3, model="large",
                  sampling=SHORT.model_copy(update={"temperature": 0.8}), keep_truncated=True)
    g.chain(draft, verify)
    g.add(vote)
    return g


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """tiny-random behind vLLM's OpenAI server, in a process group of its own on core 1."""
    started = Server(str(pull_model("tiny-random")), 1, blocks=None, log_dir=tmp_path_factory.mktemp("two-engines"))
    try:
        started.wait_healthy(time.monotonic() + START_TIMEOUT)
        yield started.url
    finally:
        started.kill(signal.SIGTERM)


def test_two_engines_serve_their_own_nodes_and_the_run_replays_without_them(server, monkeypatch):
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0")  # the in-process engine keeps to core 0
    store = MemoryCheckpointer()

    async def main():
        async with VLLMBackend("smollm2-135m", max_model_len=2048) as small, \
                OpenAIBackend(server, timeout=600) as large:
            return await graph().run("What is 2 + 3?", backends={"small": small, "large": large},
                                     checkpoint=store, run_id="two")

    result = anyio.run(main)
    served = {(e.node.split("[")[0], e.model_name, e.model) for e in result.events if isinstance(e, TokensUsed)}
    assert served == {("draft", "small", "smollm2-135m"), ("verify", "large", "tiny-random"),
                      ("vote_word", "large", "tiny-random")}
    assert set(result.tokens_by_model) == {"small", "large"}
    assert all(u.completion_tokens > 0 for u in result.tokens_by_model.values())
    assert result.tokens_by_model["large"].requests == 2  # verify, and the vote's one n=3 request

    replayed = anyio.run(lambda: graph().run(None, checkpoint=store, run_id="two", replay=True))
    assert replayed.output == result.output
    assert {m: u.total for m, u in replayed.tokens_by_model.items()} == \
        {m: u.total for m, u in result.tokens_by_model.items()}
