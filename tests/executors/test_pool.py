"""EndpointPool against real local HTTP servers: routing, the route header, failover, deadlines, probing back."""

from __future__ import annotations

import time

import anyio
import pytest

from plait import BackendError, Graph, Request, RunContext, SamplingParams, backend_for
from plait.executors import EndpointPool
from tests.executors.pool_servers import Replica, refusing_url

pytestmark = pytest.mark.timeout(60)

SHORT = SamplingParams(max_tokens=4)


def ask(prompt: str, route: str | None = None) -> Request:
    return Request(prompt=prompt, params=SHORT, route=route)


def served_by(completions) -> list[str]:
    return [c.text for c in completions]


def run(pool: EndpointPool, requests: list[Request]) -> list[str]:
    async def main():
        async with pool:
            return served_by(await pool.generate(requests))
    return anyio.run(main)


@pytest.fixture
def two():
    with Replica("a") as a, Replica("b") as b:
        yield a, b


# --- construction: bad URL lists fail at once, with one error naming every culprit ---

@pytest.mark.parametrize("urls, message", [
    ("http://a:1,,http://b:2", "entry 2 of 'http://a:1,,http://b:2' is empty"),
    ("http://a:1,http://a:1/v1/", "names the same server as 'http://a:1'"),
    ("http://a:1,ftp://b", "('ftp://b') is not an http(s):// server URL"),
    ("http://a:99999,http://b", "('http://a:99999') is not a URL: Port out of range"),
    ("http://a:1,http://b:2?x=1", "is not an http(s):// server URL"),
    ("smollm2-135m,http://b", "('smollm2-135m') is not an http(s):// server URL"),
])
def test_bad_url_lists_fail_at_construction(urls, message):
    with pytest.raises(ValueError, match="^EndpointPool: ") as caught:
        backend_for(urls)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_every_bad_entry_is_named_in_one_error():
    with pytest.raises(ValueError) as caught:
        EndpointPool(["http://a:1", "", "http://a:1", "nope"])
    text = str(caught.value)
    assert "entry 2" in text and "entry 3" in text and "entry 4" in text


def test_empty_list_and_unknown_routing_are_refused():
    with pytest.raises(ValueError, match="at least one server URL"):
        EndpointPool([])
    with pytest.raises(ValueError, match="routing='nearest' is not one of 'program', 'prefix'"):
        EndpointPool(["http://a:1"], routing="nearest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^EndpointPool: attempt_timeout=0 is not allowed"):
        EndpointPool(["http://a:1"], attempt_timeout=0)


def test_backend_for_a_url_list_gives_a_pool_with_a_stable_identity():
    pool = backend_for("http://a:1, http://b:2/v1")
    assert isinstance(pool, EndpointPool) and pool.urls == ["http://a:1", "http://b:2/v1"]
    assert pool.identity == "first model listed by http://a:1/v1,http://b:2/v1"
    assert EndpointPool("http://a:1,http://b:2", model="m").identity == "m"


# --- routing ---

def test_program_routing_keeps_each_run_on_one_replica_and_spreads_runs(two):
    graph = Graph("steps")

    @graph.node
    async def steps(topic: str, ctx: RunContext) -> list[str]:
        return [(await ctx.generate(Request(prompt=f"{topic} step {i}", params=SHORT))).text for i in range(4)]

    a, b = two
    results, parallel = [], []

    async def one(i: int, into: list) -> None:
        into.append(await graph.run({"topic": f"t{i}"}, backend=pool))

    async def main():
        async with pool:
            for i in range(6):
                await one(i, results)
            assert a.served == b.served == 12  # one after the other: new runs go to the replica with fewer runs
            async with anyio.create_task_group() as tg:  # and in parallel
                for i in range(6, 12):
                    tg.start_soon(one, i, parallel)

    pool = EndpointPool([r.url for r in two], routing="program")
    anyio.run(main)
    for result in results + parallel:
        assert len(set(result.output)) == 1, result.output  # the run's four requests: one replica
    assert {r.output[0] for r in parallel} == {"a", "b"}
    routes_a, routes_b = set(a.routes), set(b.routes)
    assert routes_a.isdisjoint(routes_b)  # the route header carried each run's id to one server only
    assert routes_a | routes_b == {r.run_id for r in results + parallel}


def test_prefix_routing_sends_a_shared_prefix_to_one_replica(two):
    documents = [f"document {d}: " + "lorem ipsum " * 40 for d in range(12)]
    requests = [ask(doc + f" question {q}") for doc in documents for q in range(3)]
    pool = EndpointPool([r.url for r in two], routing="prefix")

    async def main():  # one at a time: no load, so no cap
        async with pool:
            return [(await pool.generate_one(r)).text for r in requests]

    servers = anyio.run(main)
    for d in range(12):
        assert len(set(servers[3 * d:3 * d + 3])) == 1
    assert set(servers) == {"a", "b"}


def test_prefix_routing_caps_the_load_on_the_preferred_replica():
    with Replica("a", delay=0.3) as a, Replica("b", delay=0.3) as b:
        same = "one long shared prefix " * 20
        servers = run(EndpointPool([a.url, b.url], routing="prefix"), [ask(same + str(i)) for i in range(8)])
    assert sorted(servers.count(name) for name in "ab") == [3, 5]  # cap ceil(1.25 * (in flight + 1) / 2)


def test_least_loaded_spreads_concurrent_requests_evenly():
    with Replica("a", delay=0.2) as a, Replica("b", delay=0.2) as b:
        servers = run(EndpointPool([a.url, b.url], routing="least-loaded"), [ask(f"q{i}") for i in range(8)])
    assert servers.count("a") == servers.count("b") == 4


def test_route_header_is_printable_ascii_whatever_the_key(two):
    a, b = two
    run(EndpointPool([a.url], routing="round-robin"), [ask("x", route="run-7"), ask("x", route="ünïcode\nkey")])
    assert a.routes[0] == "run-7"
    assert a.routes[1].startswith("h-") and a.routes[1].isascii() and len(a.routes[1]) == 34


# --- failover ---

def test_refused_connections_fail_over_and_the_replica_is_taken_out(two):
    a, _ = two
    sock, dead = refusing_url()
    with sock:
        pool = EndpointPool([dead, a.url], routing="round-robin", model="stub-model")
        assert run(pool, [ask(f"q{i}") for i in range(6)]) == ["a"] * 6
    out = pool.replicas[0]
    assert out.down_until is not None and "ConnectError" in out.reason and out.served == 0


def test_5xx_fails_over_and_the_failing_replica_gets_no_more_requests(two):
    a, b = two
    pool = EndpointPool([a.url, b.url], routing="round-robin", probe_after=30)

    async def main():
        async with pool:
            a.mode = "fail"
            first = served_by(await pool.generate([ask("q0"), ask("q1")]))
            rest = [(await pool.generate_one(ask(f"r{i}"))).text for i in range(4)]
            return first + rest

    assert anyio.run(main) == ["b"] * 6
    assert pool.replicas[0].down_until is not None and "HTTP 503" in pool.replicas[0].reason


def test_a_hanging_replica_is_left_after_attempt_timeout_within_the_total_deadline(two):
    a, b = two
    pool = EndpointPool([a.url, b.url], routing="round-robin", timeout=20, attempt_timeout=1)

    async def main():
        async with pool:
            a.mode = "hang"  # (after the pool's first contact, which would time out too)
            return served_by(await pool.generate([ask("q0"), ask("q1")]))

    started = time.monotonic()
    assert anyio.run(main) == ["b", "b"]
    assert time.monotonic() - started < 15  # ended, not hung
    assert "did not complete the request within timeout=1s" in pool.replicas[0].reason


def test_the_total_deadline_holds_across_failover():
    with Replica("a") as a, Replica("b") as b:
        pool = EndpointPool([a.url, b.url], timeout=2, attempt_timeout=1.5, max_retries=5)

        async def main():
            async with pool:
                a.mode = b.mode = "hang"
                await pool.generate_one(ask("q"))

        started = time.monotonic()
        with pytest.raises(BackendError, match=r"did not complete the request within timeout=2s \(a total deadline"):
            anyio.run(main)
        assert time.monotonic() - started < 10  # ended, not hung


def test_when_every_replica_is_out_the_error_names_each(two):
    a, b = two
    pool = EndpointPool([a.url, b.url], routing="round-robin", max_retries=1, probe_after=30, timeout=5)

    async def main():
        async with pool:
            a.mode = b.mode = "fail"
            await pool.generate_one(ask("q"))

    with pytest.raises(BackendError) as caught:
        anyio.run(main)
    assert "2 attempt(s) failed" in str(caught.value) and a.url in str(caught.value) and b.url in str(caught.value)


def test_a_replica_taken_out_is_probed_back_in(two):
    a, b = two
    pool = EndpointPool([a.url, b.url], routing="round-robin", probe_after=0.2, max_probe_after=0.2)

    async def main():
        async with pool:
            a.mode = "fail"
            before = [(await pool.generate_one(ask(f"q{i}"))).text for i in range(3)]
            probes = a.probes
            a.mode = "ok"
            await anyio.sleep(0.3)
            after = [(await pool.generate_one(ask(f"r{i}"))).text for i in range(4)]
            return before, after, a.probes - probes

    before, after, probes = anyio.run(main)
    assert before == ["b"] * 3
    assert sorted(after) == ["a", "a", "b", "b"] and probes == 1
    assert pool.replicas[0].down_until is None


def test_start_fails_when_no_replica_answers():
    sock1, dead1 = refusing_url()
    sock2, dead2 = refusing_url()
    with sock1, sock2, pytest.raises(BackendError, match="none of its 2 server"):
        run(EndpointPool([dead1, dead2], timeout=4), [ask("q")])


# --- one model ---

def test_replicas_serving_different_models_are_refused_on_first_contact():
    with Replica("a", model="model-one") as a, Replica("b", model="model-two") as b:
        pool = EndpointPool([a.url, b.url])
        with pytest.raises(BackendError, match=rf"{b.url} serves 'model-two', not 'model-one' \(named by {a.url}\)"):
            run(pool, [ask("q")])
        assert a.served == b.served == 0
        with pytest.raises(BackendError, match="every server of a pool must serve the same model"):
            run(EndpointPool([a.url], model="model-two"), [ask("q")])


def test_a_replica_that_comes_back_with_another_model_is_refused():
    with Replica("a") as a, Replica("b") as b:
        pool = EndpointPool([a.url, b.url], routing="round-robin", probe_after=0.1, max_probe_after=0.1)

        async def main():
            async with pool:
                b.mode = "fail"
                assert served_by(await pool.generate([ask("q0"), ask("q1")])) == ["a", "a"]
                b.mode, b.model = "ok", "another-model"
                await anyio.sleep(0.2)
                await pool.generate_one(ask("r"))

        with pytest.raises(BackendError, match="serves 'another-model', not 'stub-model'"):
            anyio.run(main)


def test_streaming_through_the_pool_fails_over_before_any_text(two):
    a, b = two
    a.mode = "fail"
    pieces: list[str] = []

    async def main():
        async with EndpointPool([a.url, b.url], routing="round-robin", model="stub-model") as pool:
            return await pool.stream(ask("q"), pieces.append)

    assert anyio.run(main).text == "b" and "".join(pieces) == "b"


# --- the routing key ---

def test_the_runtime_sets_the_run_id_as_route_unless_a_node_sets_its_own():
    from plait import ScriptedBackend

    graph = Graph("keys")

    @graph.node
    async def ask_twice(ctx: RunContext) -> str:
        await ctx.generate(Request(prompt="mine", params=SHORT, route="subtree-1"))
        return (await ctx.generate(Request(prompt="default", params=SHORT))).text

    backend = ScriptedBackend(lambda request: "ok")
    result = anyio.run(lambda: graph.run(None, backend=backend))
    assert [r.route for r in backend.requests] == ["subtree-1", result.run_id]


def test_a_single_openai_backend_sends_the_route_header_too():
    from plait import OpenAIBackend

    graph = Graph("one")

    @graph.node
    async def ask_once(ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt="q", params=SHORT))).text

    with Replica("a") as a:
        async def main():
            async with OpenAIBackend(a.url) as backend:
                return await graph.run(None, backend=backend)

        result = anyio.run(main)
    assert a.routes == [result.run_id]


def test_flaky_draws_do_not_depend_on_the_route():
    from plait import ScriptedBackend
    from plait.executors import FlakyBackend

    def failures(route: str) -> list[bool]:
        flaky = FlakyBackend(ScriptedBackend(lambda request: "ok"), error_rate=0.5, seed=3)
        outcome = []
        for i in range(16):
            try:
                anyio.run(flaky.generate_one, Request(prompt=f"q{i}", route=route))
                outcome.append(False)
            except BackendError:
                outcome.append(True)
        return outcome

    assert failures("run-1") == failures("run-2") and any(failures("run-1"))


def test_when_every_replica_is_out_a_request_waits_for_the_next_probe(two):
    a, b = two
    pool = EndpointPool([a.url, b.url], routing="round-robin", max_retries=1, probe_after=0.3, max_probe_after=0.3,
                        timeout=20)

    async def main():
        async with pool:
            a.mode = b.mode = "fail"
            with pytest.raises(BackendError, match="2 attempt\\(s\\) failed"):
                await pool.generate_one(ask("q"))
            assert all(r.down_until is not None for r in pool.replicas)
            a.mode = "ok"
            return (await pool.generate_one(ask("r"))).text  # waits for a's probe, within its deadline

    assert anyio.run(main) == "a"
    assert pool.replicas[0].down_until is None and pool.replicas[1].down_until is not None


def test_program_routing_without_a_route_falls_back_to_the_prefix(two):
    documents = [f"document {d}: " + "lorem ipsum " * 40 for d in range(8)]
    pool = EndpointPool([r.url for r in two], routing="program")

    async def main():
        async with pool:
            return [(await pool.generate_one(ask(doc + f" q{q}"))).text for doc in documents for q in range(2)]

    servers = anyio.run(main)
    assert all(servers[2 * d] == servers[2 * d + 1] for d in range(8)) and set(servers) == {"a", "b"}
    assert two[0].routes + two[1].routes == [None] * 16  # no key, no header
