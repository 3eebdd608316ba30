"""Scheduling, failure policies, timeouts, retries, cancellation, budgets and limits."""

import asyncio
import time

import anyio
import pytest
from pydantic import BaseModel

from plait import (
    BudgetExceededError,
    DeadlineExceededError,
    Graph,
    NodeFailedError,
    NodeTimeoutError,
    Request,
    RetryPolicy,
    RunCancelledError,
    RunContext,
    SamplingParams,
    ScriptedBackend,
)
from plait.orchestrator import NodeRetried

pytestmark = pytest.mark.anyio


async def test_slow_branch_does_not_delay_independent_branch():
    """No superstep barrier: the fast branch's whole chain finishes while the slow node still sleeps."""
    g = Graph("no_barrier")
    finished: dict[str, float] = {}
    t0 = time.perf_counter()

    @g.node
    def start(x: int) -> int:
        return x

    @g.node
    async def slow(start: int) -> int:
        await anyio.sleep(0.5)
        finished["slow"] = time.perf_counter() - t0
        return start

    @g.node
    async def fast1(start: int) -> int:
        await anyio.sleep(0.01)
        return start + 1

    @g.node
    async def fast2(fast1: int) -> int:
        await anyio.sleep(0.01)
        return fast1 + 1

    @g.node
    async def fast3(fast2: int) -> int:
        finished["fast3"] = time.perf_counter() - t0
        return fast2 + 1

    @g.node
    def join(slow: int, fast3: int) -> int:
        return slow + fast3

    g.fan_out(start, slow, fast1).chain(fast1, fast2, fast3).join([slow, fast3], join)
    result = await g.run(1)
    assert result.output == 1 + 4
    assert finished["fast3"] < 0.25 < finished["slow"]
    assert result.nodes["fast3"].finished < result.nodes["slow"].finished


async def test_slow_llm_branch_does_not_delay_independent_llm_branch():
    backend = ScriptedBackend(
        {"slow": "s", "fast": "f"}, latency=lambda r: 0.5 if "slow" in r.prompt_text() else 0.02)
    g = Graph("llm_branches")
    done_at: dict[str, float] = {}

    def make(name: str):
        async def call(q: str, ctx: RunContext) -> str:
            text = (await ctx.generate(Request(prompt=f"{name} {q}"))).text
            done_at[name] = ctx._state.now()
            return text
        return call

    g.add(make("slow"), name="slow")
    g.add(make("fast"), name="fast")
    result = await g.run({"q": "?"}, backend=backend)
    assert result.output == {"slow": "s", "fast": "f"}
    assert done_at["fast"] < 0.25 < done_at["slow"]


async def test_timeout_fails_the_node_with_node_timeout_error():
    g = Graph("timeout")

    @g.node(timeout=0.05)
    async def hang(x: int) -> int:
        await anyio.sleep(10)
        return x

    t0 = time.perf_counter()
    with pytest.raises(NodeFailedError) as info:
        await g.run(1)
    assert time.perf_counter() - t0 < 5
    assert isinstance(info.value.cause, NodeTimeoutError)
    assert "timed out after 0.05s" in str(info.value)
    assert info.value.partial.nodes["hang"].status == "failed"


async def test_retry_with_backoff_then_success():
    g = Graph("retry")
    calls = []

    @g.node(retry=RetryPolicy(attempts=4, backoff=0.02, multiplier=2.0, jitter=0.0))
    def flaky(x: int) -> int:
        calls.append(time.perf_counter())
        if len(calls) < 3:
            raise ConnectionError("try again")
        return x

    result = await g.run(7)
    assert result.output == 7
    assert len(calls) == 3
    retries = [e for e in result.events if isinstance(e, NodeRetried)]
    assert [e.attempt for e in retries] == [2, 3]
    assert [round(e.delay, 3) for e in retries] == [0.02, 0.04]
    assert calls[1] - calls[0] >= 0.015 and calls[2] - calls[1] >= 0.035
    assert result.nodes["flaky"].attempts == 3


async def test_retry_only_listed_exceptions_and_give_up_after_attempts():
    g = Graph("retry_filter")
    calls = {"a": 0, "b": 0}

    @g.node(retry=RetryPolicy(attempts=3, backoff=0, retry_on=(ConnectionError,)))
    def not_retried(x: int) -> int:
        calls["a"] += 1
        raise ValueError("bad value")

    with pytest.raises(NodeFailedError, match="ValueError: bad value"):
        await g.run(1)
    assert calls["a"] == 1

    g2 = Graph("retry_exhausted")

    @g2.node(retry=RetryPolicy(attempts=3, backoff=0))
    def always(x: int) -> int:
        calls["b"] += 1
        raise ConnectionError("down")

    with pytest.raises(NodeFailedError):
        await g2.run(1)
    assert calls["b"] == 3


def test_retry_policy_jitter_stays_in_bounds():
    policy = RetryPolicy(attempts=5, backoff=1.0, multiplier=2.0, max_backoff=3.0, jitter=0.5)
    for retry, base in [(1, 1.0), (2, 2.0), (3, 3.0), (4, 3.0)]:
        delays = [policy.delay(retry) for _ in range(200)]
        assert all(base * 0.5 <= d <= base * 1.5 for d in delays)
        assert max(delays) - min(delays) > 0.1  # jitter actually varies
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


async def test_failure_with_raise_policy_cancels_other_branches():
    g = Graph("fail_fast")
    state = {"slow_finished": False, "slow_cancelled": False}

    @g.node
    async def boom(x: int) -> int:
        await anyio.sleep(0.01)
        raise RuntimeError("kaboom")

    @g.node
    async def slow(x: int) -> int:
        try:
            await anyio.sleep(5)
            state["slow_finished"] = True
        except BaseException:
            state["slow_cancelled"] = True
            raise
        return x

    t0 = time.perf_counter()
    with pytest.raises(NodeFailedError, match="'boom' failed: RuntimeError: kaboom") as info:
        await g.run(1)
    assert time.perf_counter() - t0 < 2
    assert state == {"slow_finished": False, "slow_cancelled": True}
    assert info.value.partial.nodes["slow"].status == "cancelled"


async def test_skip_policy_skips_dependents_and_keeps_independent_work():
    g = Graph("fail_soft")

    @g.node(on_error="skip")
    def broken(x: int) -> int:
        raise ValueError("no good")

    @g.node
    def needs_broken(broken: int) -> int:
        return broken

    @g.node
    async def independent(x: int) -> int:
        await anyio.sleep(0.01)
        return x * 2

    g.edge(broken, needs_broken)
    result = await g.run(5)
    assert result.status == "partial"
    assert result.output == {"independent": 10}
    assert result.nodes["broken"].status == "failed"
    assert result.nodes["needs_broken"].status == "skipped"
    assert result.failures == {"broken": "ValueError: no good"}


async def test_fallback_value_used_when_node_fails():
    g = Graph("fallback")

    @g.node(fallback="default")
    def guess(x: int) -> str:
        raise KeyError(x)

    @g.node
    def use(guess: str) -> str:
        return guess + "!"

    g.edge(guess, use)
    result = await g.run(1)
    assert result.output == "default!"
    assert result.nodes["guess"].error == "KeyError: 1"


async def test_runtime_values_validated_and_coerced_with_pydantic():
    class Point(BaseModel):
        x: int
        y: int

    g = Graph("coerce")

    @g.node
    def make(n: int) -> dict:
        return {"x": n, "y": n + 1} if n >= 0 else {"x": "nope"}

    @g.node
    def norm(make: Point) -> int:
        return make.x + make.y

    g.edge(make, norm)
    assert (await g.run(2)).output == 5
    with pytest.raises(NodeFailedError, match="input 'make' of node 'norm' is invalid"):
        await g.run(-1)


def _live_tasks() -> set:
    return {t for t in asyncio.all_tasks() if not t.done()}


async def _assert_no_stray_tasks(before: set) -> None:
    await anyio.sleep(0)
    assert _live_tasks() - before == set()


async def test_cancel_from_outside_stops_everything_and_keeps_partial_results():
    g = Graph("cancel")
    running = set()

    @g.node
    def quick(x: int) -> int:
        return x + 1

    def sleeper(name: str):
        async def node(quick: int) -> int:
            running.add(name)
            try:
                await anyio.sleep(30)
            finally:
                running.discard(name)
            return quick
        return node

    for name in ("s1", "s2", "s3"):
        g.add(sleeper(name), name=name)
        g.edge(quick, name)

    before = _live_tasks()
    run = g.stream(1)
    errors = []

    async def drive():
        try:
            await run.result()
        except RunCancelledError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(drive)
        while len(running) < 3:
            await anyio.sleep(0.001)
        run.cancel()
        t0 = time.perf_counter()
    assert time.perf_counter() - t0 < 1
    assert running == set()
    (error,) = errors
    partial = error.partial
    assert partial.status == "cancelled"
    assert partial.nodes["quick"].output == 2
    assert {partial.nodes[n].status for n in ("s1", "s2", "s3")} == {"cancelled"}
    await _assert_no_stray_tasks(before)


async def test_outer_cancel_scope_cancels_run_cleanly():
    g = Graph("outer_cancel")
    state = {"exited": 0}

    @g.node
    async def forever(x: int) -> int:
        try:
            await anyio.sleep(30)
        finally:
            state["exited"] += 1
        return x

    before = _live_tasks()
    with anyio.move_on_after(0.05) as scope:
        await g.run(1)
    assert scope.cancelled_caught
    assert state["exited"] == 1
    await _assert_no_stray_tasks(before)


async def test_deadline_exceeded_carries_partial_results():
    g = Graph("deadline")

    @g.node
    def first(x: int) -> int:
        return x

    @g.node
    async def second(first: int) -> int:
        await anyio.sleep(10)
        return first

    g.edge(first, second)
    with pytest.raises(DeadlineExceededError, match="deadline of 0.1s") as info:
        await g.run(3, deadline=0.1)
    assert info.value.partial.nodes["first"].output == 3
    assert info.value.partial.nodes["second"].status == "cancelled"


async def test_token_budget_exceeded_stops_llm_work_and_returns_partial_results():
    backend = ScriptedBackend(lambda r: "word " * 10)
    g = Graph("budget")
    params = SamplingParams(max_tokens=10)

    @g.node
    async def step1(q: str, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt=q, params=params))).text  # reserves 1 + 10, spends 11

    @g.node
    async def step2(step1: str, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt=step1, params=params))).text  # reserves 10 + 10, spends 20

    @g.node
    async def step3(step2: str, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt=step2, params=params))).text  # 31 + 20 > 45: refused

    g.chain(step1, step2, step3)
    with pytest.raises(BudgetExceededError, match="needs up to 20 tokens .* but 31 of 45 are used") as info:
        await g.run("hello", backend=backend, token_budget=45)
    err = info.value
    assert err.budget == 45 and err.used == 31 and err.needed == 20
    assert err.node == "step3"
    assert len(backend.requests) == 2  # step3 never sent its request
    partial = err.partial
    assert partial.nodes["step1"].output.startswith("word")
    assert partial.nodes["step2"].output.startswith("word")
    assert partial.nodes["step3"].status == "failed"
    assert partial.tokens.total == err.used


async def test_global_and_per_node_concurrency_limits():
    def graph_with(per_node):
        g = Graph("limits")
        live = {"now": 0, "peak": 0}

        @g.node
        def items(n: int) -> list[int]:
            return list(range(n))

        @g.node(max_concurrency=per_node)
        async def work(i: int) -> int:
            live["now"] += 1
            live["peak"] = max(live["peak"], live["now"])
            await anyio.sleep(0.01)
            live["now"] -= 1
            return i

        g.map(items, work)
        return g, live

    g, live = graph_with(None)
    assert (await g.run(12)).output == list(range(12))
    assert live["peak"] == 12
    g, live = graph_with(None)
    await g.run(12, max_concurrency=3)
    assert live["peak"] == 3
    g, live = graph_with(2)
    await g.run(12)
    assert live["peak"] == 2


async def test_node_without_backend_gets_clear_error():
    g = Graph("no_backend")

    @g.node
    async def ask(q: str, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt=q))).text

    with pytest.raises(NodeFailedError, match="needs an LLM backend.*backend="):
        await g.run("hi")


async def test_blocking_sync_node_runs_in_thread_without_stalling_loop():
    g = Graph("blocking")

    @g.node(blocking=True)
    def heavy(x: int) -> int:
        time.sleep(0.3)
        return x

    @g.node
    async def ticker(x: int) -> int:
        ticks = 0
        for _ in range(5):
            await anyio.sleep(0.01)
            ticks += 1
        return ticks

    result = await g.run(1)
    assert result.output == {"heavy": 1, "ticker": 5}
    assert result.nodes["ticker"].finished < result.nodes["heavy"].finished


async def test_tokens_counted_per_node_and_cache_hits_reported():
    backend = ScriptedBackend(lambda r: "ok")
    g = Graph("tokens")
    prefix = "You are a careful assistant. " * 5

    @g.node
    async def a(q: str, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt=prefix + "first " + q))).text

    @g.node
    async def b(a: str, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt=prefix + "second " + a, params=SamplingParams(n=2)))).text

    g.edge(a, b)
    result = await g.run("x", backend=backend)
    assert result.nodes["a"].tokens.requests == 1 and result.nodes["b"].tokens.requests == 1
    assert result.nodes["b"].tokens.completion_tokens == 2  # two samples of one token
    assert result.tokens.cached_tokens == 30  # the shared prefix, served from the simulated cache
    assert 0 < result.tokens.cache_hit_rate < 1
