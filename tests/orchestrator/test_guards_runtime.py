"""Runtime guards under hostile load: token budgets under concurrency, timeouts and threads of sync nodes.

Each test reproduces a case seen at 481d1d6 (issue 19, items 4 and 5) and fails there.
"""

import os
import signal
import subprocess
import sys
import threading
import time

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait import (
    Backend,
    BudgetExceededError,
    Completion,
    FunctionBackend,
    Graph,
    NodeFailedError,
    Request,
    RetryPolicy,
    run_batch,
    RunContext,
    SamplingParams,
    ScriptedBackend,
)
from plait.errors import GraphError
from plait.executors import Sample
from plait.orchestrator import ThreadAbandoned
from plait.executors._base import prompt_token_bound
from plait.orchestrator import _threads

pytestmark = pytest.mark.anyio


def _mapped_model_calls(width: int, params: SamplingParams, stream: bool = False) -> Graph:
    g = Graph("mapped_calls")

    @g.node
    async def items(n: int) -> list[int]:
        return list(range(n))

    @g.node
    async def ask(i: int, ctx: RunContext) -> str:
        request = Request(prompt=f"item {i}", params=params)
        if stream:
            return (await ctx.generate_stream(request, lambda chunk: None)).text
        return (await ctx.generate(request)).text

    g.map(items, ask)
    return g


# -- token budgets -------------------------------------------------------------------------------------------


async def test_200_wide_map_under_a_budget_of_10_sends_nothing():
    backend = ScriptedBackend(lambda r: "twenty one tokens " * 7)
    with pytest.raises(BudgetExceededError, match=r"needs up to 258 tokens .* but 0 of 10 are used") as info:
        await _mapped_model_calls(200, SamplingParams()).run(200, backend=backend, token_budget=10)
    assert backend.requests == []  # 481d1d6 sent 200 requests, spent 4,200 tokens and ended ok
    assert info.value.partial.tokens.total == 0


@pytest.mark.parametrize("stream", [False, True])
async def test_concurrent_requests_never_spend_past_the_budget(stream):
    # Each request reserves 2 prompt + 5 max_tokens = 7 tokens and spends 3 (a one-token reply).
    backend = FunctionBackend(lambda r: "ok", latency=0.01)
    with pytest.raises(BudgetExceededError) as info:
        await _mapped_model_calls(200, SamplingParams(max_tokens=5), stream).run(200, backend=backend,
                                                                                 token_budget=100)
    spent = info.value.partial.tokens.total
    assert 100 - 7 < spent <= 100  # refused only once 7 more could not fit
    assert spent == 3 * len(backend.requests)
    assert info.value.needed == 7


async def test_requests_wait_for_reservations_in_flight_instead_of_failing():
    # 50 requests reserve 7 each (350 > 200 at once) but spend 3 each (150 <= 200): all must be served.
    backend = FunctionBackend(lambda r: "ok", latency=0.01)
    result = await _mapped_model_calls(50, SamplingParams(max_tokens=5)).run(50, backend=backend, token_budget=200)
    assert result.output == ["ok"] * 50 and result.tokens.total == 150


async def test_a_backend_overrunning_its_reservation_stops_the_next_request():
    # A hostile backend claims 500 tokens for a request that reserved 7: the overrun is that request's, no more.
    def claim(request: Request) -> Completion:
        return Completion(samples=(Sample(text="x", completion_tokens=498),), prompt_tokens=2)

    backend = FunctionBackend(claim)
    g = Graph("overrun")

    @g.node
    async def twice(q: str, ctx: RunContext) -> str:
        await ctx.generate(Request(prompt=q, params=SamplingParams(max_tokens=5)))
        return (await ctx.generate(Request(prompt=q, params=SamplingParams(max_tokens=5)))).text

    with pytest.raises(BudgetExceededError) as info:
        await g.run("a b", backend=backend, token_budget=100)
    assert len(backend.requests) == 1 and info.value.partial.tokens.total == 500  # 100 + one request's 400


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(width=st.integers(1, 40), budget=st.integers(0, 400), max_tokens=st.integers(1, 12), n=st.integers(1, 3),
       replies=st.lists(st.text(alphabet="ab ,{}", max_size=60), min_size=1, max_size=8))
def test_a_hostile_model_never_drives_spending_past_the_budget(width, budget, max_tokens, n, replies):
    # Replies of any length (cut at max_tokens by the backend, as an engine does), any width, any budget.
    turn = iter(range(10**6))
    backend = FunctionBackend(lambda r: replies[next(turn) % len(replies)], latency=0.001)
    g = _mapped_model_calls(width, SamplingParams(max_tokens=max_tokens, n=n))
    try:
        result = anyio.run(lambda: g.run(width, backend=backend, token_budget=budget))
    except BudgetExceededError as err:
        assert err.partial.tokens.total <= budget
        assert err.needed is None or err.used + err.needed > budget  # refused only what could not fit
    else:
        assert result.tokens.total <= budget and len(result.output) == width


class _WordCounter(Backend):
    """A real backend that cannot count prompts before sending: the run must reserve the documented bound."""

    def __init__(self):
        self.requests: list[Request] = []

    async def generate(self, requests: list[Request]) -> list[Completion]:
        self.requests.extend(requests)
        return [Completion(samples=(Sample(text="ok", completion_tokens=1),),
                           prompt_tokens=len(r.prompt_text().split())) for r in requests]


@pytest.mark.parametrize("prompt", ["how many, exactly?",
                                    (("user", "hi"), ("assistant", "yes"), ("user", "é€😀"))])
async def test_a_backend_that_cannot_count_reserves_the_byte_bound(prompt):
    from plait import Message

    if not isinstance(prompt, str):
        prompt = tuple(Message(role=role, content=text) for role, text in prompt)
    request = Request(prompt=prompt, params=SamplingParams(max_tokens=4))
    bound = prompt_token_bound(request)
    text = request.prompt_text()
    assert bound >= len(text.encode())  # at least one byte per token
    g = Graph("bounded")

    @g.node
    async def ask(q: str, ctx: RunContext) -> str:
        return (await ctx.generate(request)).text

    backend = _WordCounter()
    with pytest.raises(BudgetExceededError, match=f"needs up to {bound + 4} tokens"):
        await g.run("x", backend=backend, token_budget=bound + 3)
    assert backend.requests == []
    assert (await g.run("x", backend=backend, token_budget=bound + 4)).output == "ok"


# -- sync nodes: timeouts, concurrency, retries, threads ------------------------------------------------------


@pytest.mark.parametrize("blocking", [None, True])
async def test_sync_node_fails_at_its_timeout(release, blocking):
    g = Graph("slow_sync")
    options = {} if blocking is None else {"blocking": blocking}

    @g.node(timeout=0.2, **options)
    def slow(x: int) -> int:
        release.wait(5)
        return x

    start = time.perf_counter()
    with pytest.raises(NodeFailedError, match="timed out after 0.2s") as info:
        await g.run(1)
    assert time.perf_counter() - start < 2.0  # 481d1d6 waited the whole 5 s and ended ok
    record = info.value.partial.nodes["slow"]
    assert record.abandoned_threads == 1
    events = [e for e in info.value.partial.events if isinstance(e, ThreadAbandoned)]
    assert [(e.node, e.running >= 1) for e in events] == [("slow", True)]


async def test_sync_nodes_run_concurrently():
    barrier = threading.Barrier(8, timeout=3)  # passes only when 8 calls wait on it at once
    g = Graph("sync_width")

    @g.node
    def items(n: int) -> list[int]:
        return list(range(n))

    @g.node
    def work(i: int) -> int:
        barrier.wait()
        return i

    g.map(items, work)
    assert (await g.run(8, max_concurrency=8)).output == list(range(8))


async def test_a_batch_of_sync_graphs_runs_concurrently():
    barrier = threading.Barrier(8, timeout=3)
    g = Graph("sync_item")

    @g.node
    def work(x: int) -> int:
        barrier.wait()
        return x * 2

    result = await run_batch(g, list(range(8)), concurrency=8)
    assert [item.output for item in result.items] == [x * 2 for x in range(8)]


async def test_a_retry_waits_for_the_attempt_it_replaces(release):
    spans: list[tuple[float, float]] = []
    g = Graph("retried")

    @g.node(timeout=0.1, retry=RetryPolicy(attempts=30, backoff=0, jitter=0))
    def flaky(x: int) -> int:
        start = time.monotonic()
        if not spans and not release.is_set():
            release.wait(3)  # the first attempt hangs until the other branch releases it
        spans.append((start, time.monotonic()))
        return x

    @g.node
    async def releaser(x: int) -> int:
        await anyio.sleep(0.3)
        release.set()
        return x

    result = await g.run(7)
    assert result.output == {"flaky": 7, "releaser": 7}
    assert result.nodes["flaky"].attempts >= 2  # the first attempt did time out
    spans.sort()
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:])), spans


async def test_threads_left_by_hung_sync_nodes_are_bounded_and_reported(release):
    before = threading.active_count()
    g = Graph("hung_map")

    @g.node
    async def items(n: int) -> list[int]:
        return list(range(n))

    @g.node(timeout=0.2, retry=RetryPolicy(attempts=3, backoff=0, jitter=0))
    def hang(i: int) -> int:
        release.wait(10)
        return i

    g.map(items, hang)
    start = time.perf_counter()
    with pytest.raises(NodeFailedError, match="timed out") as info:
        await g.run(60)
    assert time.perf_counter() - start < 6.0  # 3 attempts of 0.2 s, with room for a loaded machine
    assert threading.active_count() - before <= _threads.MAX_THREADS  # 481d1d6 ran past the test's limit here
    reported = sum(r.abandoned_threads for r in info.value.partial.nodes.values())
    events = [e for e in info.value.partial.events if isinstance(e, ThreadAbandoned)]
    assert 0 < reported == len(events) == _threads.abandoned_threads()
    release.set()
    deadline = time.monotonic() + 10 + _threads.IDLE_SECONDS
    while threading.active_count() > before and time.monotonic() < deadline:
        await anyio.sleep(0.05)
    assert threading.active_count() <= before  # released threads end once idle: none is kept


async def test_cheap_sync_nodes_can_run_inline_but_not_with_a_timeout():
    g = Graph("inline")
    loop_thread = threading.get_ident()

    @g.node(blocking=False)
    def cheap(x: int) -> bool:
        return threading.get_ident() == loop_thread

    @g.node
    def default(x: int) -> bool:
        return threading.get_ident() == loop_thread

    assert (await g.run(1)).output == {"cheap": True, "default": False}
    with pytest.raises(GraphError, match="blocking=False runs this sync function on the event loop"):
        g.add(lambda x: x, name="bad", blocking=False, timeout=1)


async def test_a_sync_node_in_a_thread_cannot_touch_run_state():
    g = Graph("emitter")

    @g.node
    def noisy(x: int, ctx: RunContext) -> int:
        ctx.emit("progress", x=x)
        return x

    with pytest.raises(NodeFailedError, match=r"ctx.emit\(\) was called from the worker thread of sync node"):
        await g.run(1)


def test_sigterm_stops_a_run_stuck_in_a_sync_node(tmp_path):
    started = tmp_path / "started"
    module = tmp_path / "stuck.py"
    module.write_text(
        "import pathlib, time\nfrom plait import Graph\ngraph = Graph('stuck')\n\n"
        "@graph.node\ndef stuck(x: int) -> int:\n"
        f"    pathlib.Path({str(started)!r}).touch()\n    time.sleep(60)\n    return x\n")
    proc = subprocess.Popen([sys.executable, "-m", "plait.cli", "run", f"{module}:graph", "--input", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 30
        while not started.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.01)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)  # 481d1d6 ran the sleep on the event loop: 60 s
        assert time.monotonic() - sent < 10
        assert proc.returncode == 128 + signal.SIGTERM, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
