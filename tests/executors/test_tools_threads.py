"""Sync tools in worker threads: timeouts hold, retries never overlap, leftover threads are bounded and reported.

Each case failed at 481d1d6 (issue 19, item 5).
"""

import threading
import time

import anyio
import pytest

from plait import RetryPolicy, tool
from plait.errors import ToolError
from plait.executors import ToolFailure, ToolRegistry, ToolRunner
from plait.orchestrator import _threads

pytestmark = pytest.mark.anyio


async def test_retries_of_a_timed_out_sync_tool_never_overlap(release):
    spans: list[tuple[float, float]] = []

    @tool(timeout=0.1, retry=RetryPolicy(attempts=30, backoff=0, jitter=0))
    def lookup(x: int) -> int:
        start = time.monotonic()
        if not spans and not release.is_set():
            release.wait(3)  # the first attempt hangs until released below
        spans.append((start, time.monotonic()))
        return x

    events = []
    runner = ToolRunner(ToolRegistry([lookup]), emit=lambda name, **data: events.append((name, data)))
    async with anyio.create_task_group() as tg:
        async def release_later() -> None:
            await anyio.sleep(0.3)
            release.set()

        tg.start_soon(release_later)
        assert await runner.call("lookup", {"x": 5}) == 5
    spans.sort()
    assert len(spans) >= 2 and runner.calls >= 2  # the first attempt timed out and was retried
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:])), spans
    abandoned = [data for name, data in events if name == "tool_thread_abandoned"]
    assert abandoned and abandoned[0]["tool"] == "lookup"


async def test_hung_sync_tools_leave_a_bounded_number_of_threads(release):
    before = threading.active_count()

    @tool(timeout=0.2, retry=RetryPolicy(attempts=3, backoff=0, jitter=0))
    def hang(i: int) -> int:
        release.wait(10)
        return i

    events = []
    runner = ToolRunner(ToolRegistry([hang]), emit=lambda name, **data: events.append(name))
    results: list = [None] * 50
    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        async def call(i: int) -> None:
            results[i] = await runner.call("hang", {"i": i})

        for i in range(50):
            tg.start_soon(call, i)
    assert time.perf_counter() - start < 6.0  # 3 attempts of 0.2 s each, with room for a loaded machine
    assert all(isinstance(r, ToolFailure) and "timed out after 0.2s" in r.error for r in results)
    assert threading.active_count() - before <= _threads.MAX_THREADS  # 481d1d6 left 120 here
    assert 0 < _threads.abandoned_threads() == events.count("tool_thread_abandoned")
    release.set()
    deadline = time.monotonic() + 10 + _threads.IDLE_SECONDS
    while threading.active_count() > before and time.monotonic() < deadline:
        await anyio.sleep(0.05)
    assert threading.active_count() <= before  # released threads end once idle: none is kept


async def test_sync_tool_calls_overlap():
    barrier = threading.Barrier(6, timeout=3)

    @tool
    def wait_for_all(i: int) -> int:
        barrier.wait()
        return i

    runner = ToolRunner(ToolRegistry([wait_for_all]))
    results: list = [None] * 6
    async with anyio.create_task_group() as tg:
        async def call(i: int) -> None:
            results[i] = await runner.call("wait_for_all", {"i": i})

        for i in range(6):
            tg.start_soon(call, i)
    assert results == list(range(6))


def test_an_inline_sync_tool_cannot_have_a_timeout():
    def cheap(x: int) -> int:
        return x

    with pytest.raises(ToolError, match="tool 'cheap': blocking=False runs this sync function on the event loop"):
        tool(cheap, blocking=False, timeout=1)
    assert tool(cheap, blocking=False).blocking is False
