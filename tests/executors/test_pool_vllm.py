"""EndpointPool over two real vLLM OpenAI servers (the random model, one core each), started once for the module.

Which replica served what is read from the servers themselves (their prefix-cache
counters on ``/metrics``) and from the cached-token counts of the replies; the
model's text is noise and is never asserted. The SIGKILL test comes last: it
leaves one server dead.
"""

from __future__ import annotations

import signal
from typing import Any

import anyio
import pytest

from benchmarks._scaleout_routing import cache_counters, document, vllm_servers
from plait import Graph, OpenAIBackend, Request, RunContext, SamplingParams
from plait.executors import EndpointPool, pull_model

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

PARAMS = SamplingParams(max_tokens=4, seed=1)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    with vllm_servers(str(pull_model("tiny-random")), 2, log_dir=tmp_path_factory.mktemp("pool-vllm")) as started:
        anyio.run(_warm_up, started)
        yield started


async def _warm_up(servers) -> None:
    """A first request to each server (a fresh one may take a minute on a busy machine), cached nowhere later."""
    for server in servers:
        async with OpenAIBackend(server.url, timeout=600) as backend:
            await backend.generate_one(Request(prompt="warm up", params=PARAMS))


def pool_of(servers, routing: Any) -> EndpointPool:
    """Generous deadlines: these tests are about where requests go, not about a slow machine."""
    return EndpointPool([s.url for s in servers], routing=routing, timeout=600, attempt_timeout=300)


def reading_graph(steps: int, on_step=None) -> Graph:
    graph = Graph("reading")

    @graph.node
    async def read(doc: str, ctx: RunContext) -> list[int]:
        cached = []
        for i in range(steps):
            completion = await ctx.generate(Request(prompt=f"{doc}Question {i}: what comes next?\nAnswer:",
                                                    params=PARAMS))
            cached.append(completion.cached_tokens)
            if on_step is not None:
                await on_step(i)
        return cached

    return graph


def queries(servers) -> list[float]:
    return [cache_counters(s.url)["queries"] for s in servers]


def test_program_routing_keeps_each_run_on_one_replica(servers):
    graph = reading_graph(4)
    before = queries(servers)

    async def main():
        async with pool_of(servers, "program") as pool:
            first = await graph.run({"doc": document(1, 300)}, backend=pool)
            after_first = queries(servers)
            second = await graph.run({"doc": document(2, 300)}, backend=pool)
            return first, after_first, second

    first, after_first, second = anyio.run(main)
    after = queries(servers)
    grew_first = [a > b for a, b in zip(after_first, before)]
    grew_second = [a > b for a, b in zip(after, after_first)]
    assert sorted(grew_first) == [False, True]  # the first run's four requests reached one server only
    assert sorted(grew_second) == [False, True] and grew_second != grew_first  # the second run: the other one
    for result in (first, second):
        assert result.status == "ok"
        assert result.output[0] == 0 and all(c >= 256 for c in result.output[1:])  # its prefix stayed cached
        assert result.tokens.cached_tokens == sum(result.output)


def test_round_robin_spreads_one_run_over_both(servers):
    before = queries(servers)

    async def main():
        async with pool_of(servers, "round-robin") as pool:
            return await reading_graph(4).run({"doc": document(3, 300)}, backend=pool)

    result = anyio.run(main)
    assert result.status == "ok"
    assert all(a > b for a, b in zip(queries(servers), before))
    assert result.output[:2] == [0, 0]  # each server prefilled the document once


def test_a_replica_killed_mid_run_the_run_completes_on_the_other(servers):
    pool = pool_of(servers, "program")

    async def kill_after_second(step: int) -> None:
        if step == 1:
            (home,) = [i for i, r in enumerate(pool.replicas) if r.served]
            servers[home].kill(signal.SIGKILL)

    async def main():
        async with pool:
            return await reading_graph(5, kill_after_second).run({"doc": document(4, 300)}, backend=pool)

    result = anyio.run(main)
    assert result.status == "ok" and len(result.output) == 5
    dead, alive = sorted(pool.replicas, key=lambda r: r.down_until is None)
    assert dead.down_until is not None and dead.served == 2
    assert alive.served == 3
    assert result.output[2] == 0 and all(c >= 256 for c in result.output[3:])  # the survivor cached it anew
