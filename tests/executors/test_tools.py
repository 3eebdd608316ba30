"""Tools: declaration from typed functions, the registry, and running them (timeouts, retries, limits, cache)."""

import time

import anyio
import pytest

from plait import RetryPolicy, tool
from plait.errors import ToolError
from plait.executors import Tool, ToolFailure, ToolRegistry, ToolRunner


def test_tool_reads_argument_model_and_description_from_the_function():
    @tool
    def lookup(country: str, year: int = 2023) -> float:
        """Population of a country, in millions.

        More text that the planner does not need."""
        return 1.0

    assert isinstance(lookup, Tool)
    assert lookup.name == "lookup" and lookup.returns is float
    assert lookup.params == {"country": str, "year": int}
    assert lookup.primary_param == "country"
    assert lookup.describe() == "lookup(country: str, year: int = 2023) -> float: Population of a country, in millions."
    schema = lookup.args_schema()
    assert schema["required"] == ["country"] and schema["properties"]["year"]["type"] == "integer"
    assert lookup.validate_args({"country": "France", "year": "2020"}) == {"country": "France", "year": 2020}
    assert lookup("x") == 1.0  # still callable as the plain function


def test_tool_from_function_takes_options():
    async def fetch(url: str) -> str:
        return url

    t = Tool.from_function(fetch, name="get", timeout=2, cache=True, max_concurrency=3, description="Fetch a URL.")
    assert (t.name, t.timeout, t.cache, t.max_concurrency, t.is_async) == ("get", 2, True, 3, True)
    assert t.description == "Fetch a URL."


@pytest.mark.parametrize(
    "fn, message",
    [
        (lambda: None, "must be an identifier"),
        (None, "has no type hint"),
    ],
)
def test_bad_tool_declarations_are_refused_with_clear_messages(fn, message):
    def untyped(x):
        return x

    with pytest.raises(ToolError, match=message):
        Tool(fn or untyped)


def test_star_args_and_reserved_name_are_refused():
    def many(*items: int) -> int:
        return 0

    def llm(prompt: str) -> str:
        return prompt

    with pytest.raises(ToolError, match=r"\*args"):
        Tool(many)
    with pytest.raises(ToolError, match="reserved"):
        Tool(llm)
    with pytest.raises(ToolError, match="timeout must be > 0"):
        Tool(llm, name="ask", timeout=0)


def test_registry_is_case_insensitive_and_rejects_duplicates():
    def search(query: str) -> list[str]:
        """Search."""
        return [query]

    reg = ToolRegistry([search])
    assert "SEARCH" in reg and reg["Search"].name == "search" and reg.names == ["search"]
    assert reg.describe() == "- search(query: str) -> list[str]: Search."
    with pytest.raises(ToolError, match="already registered"):
        reg.add(Tool(search))
    with pytest.raises(ToolError, match="unknown tool 'nope'; known tools: \\['search'\\]"):
        reg["nope"]


def _run(coro_fn, *args):
    return anyio.run(coro_fn, *args)


def test_a_tool_that_raises_becomes_a_failure_value():
    @tool
    def boom(x: int) -> int:
        raise RuntimeError(f"exploded on {x}")

    runner = ToolRunner(ToolRegistry([boom]))
    result = _run(runner.call, "boom", {"x": 3})
    assert result == ToolFailure("boom", "RuntimeError: exploded on 3", 1)
    assert str(result) == "ERROR from boom: RuntimeError: exploded on 3"


def test_bad_arguments_and_unknown_tools_become_failure_values():
    @tool
    def add(a: int, b: int) -> int:
        return a + b

    runner = ToolRunner(ToolRegistry([add]))
    bad = _run(runner.call, "add", {"a": "one"})
    assert isinstance(bad, ToolFailure) and "a: Input should be a valid integer" in bad.error
    assert "b: Field required" in bad.error
    unknown = _run(runner.call, "sub", {})
    assert isinstance(unknown, ToolFailure) and "unknown tool 'sub'" in unknown.error
    assert _run(runner.call, "add", {"a": "1", "b": 2}) == 3


def test_timeout_of_an_async_tool():
    @tool(timeout=0.05)
    async def slow(x: int) -> int:
        await anyio.sleep(5)
        return x

    result = _run(ToolRunner(ToolRegistry([slow])).call, "slow", {"x": 1})
    assert isinstance(result, ToolFailure)
    assert result.error == "TimeoutError: tool 'slow' timed out after 0.05s"


def test_timeout_of_a_blocking_sync_tool_does_not_wait_for_it():
    @tool(timeout=0.05)
    def sleepy(x: int) -> int:
        time.sleep(1.5)
        return x

    start = time.perf_counter()
    result = _run(ToolRunner(ToolRegistry([sleepy])).call, "sleepy", {"x": 1})
    assert isinstance(result, ToolFailure) and "timed out" in result.error
    assert time.perf_counter() - start < 1.2  # abandoned, not awaited to the end


def test_retries_until_success_and_reports_attempts_on_final_failure():
    calls = []

    @tool(retry=RetryPolicy(attempts=3, backoff=0, jitter=0))
    def flaky(x: int) -> int:
        calls.append(x)
        if len(calls) < 3:
            raise ConnectionError("try again")
        return x * 10

    events = []
    runner = ToolRunner(ToolRegistry([flaky]), emit=lambda name, **data: events.append((name, data)))
    assert _run(runner.call, "flaky", {"x": 2}) == 20
    assert len(calls) == 3 and runner.calls == 3
    assert [e[0] for e in events] == ["tool_retry", "tool_retry"]

    @tool(retry=RetryPolicy(attempts=2, backoff=0, jitter=0))
    def broken(x: int) -> int:
        raise ValueError("never")

    failure = _run(ToolRunner(ToolRegistry([broken])).call, "broken", {"x": 1})
    assert failure == ToolFailure("broken", "ValueError: never", 2)


def test_cache_serves_identical_calls_once_per_runner():
    calls = []

    @tool(cache=True)
    async def lookup(country: str) -> int:
        calls.append(country)
        await anyio.sleep(0.05)
        return len(country)

    runner = ToolRunner(ToolRegistry([lookup]))

    async def main():
        results = {}

        async def one(i, country):
            results[i] = await runner.call("lookup", {"country": country})

        async with anyio.create_task_group() as tg:  # two identical calls in flight at once
            tg.start_soon(one, 0, "France")
            tg.start_soon(one, 1, "France")
            tg.start_soon(one, 2, "Spain")
        results[3] = await runner.call("lookup", {"country": "France"})
        return results

    assert _run(main) == {0: 6, 1: 6, 2: 5, 3: 6}
    assert sorted(calls) == ["France", "Spain"]
    assert runner.cache_hits == 2
    assert _run(ToolRunner(ToolRegistry([lookup])).call, "lookup", {"country": "France"}) == 6
    assert calls.count("France") == 2  # a new runner (a new run) starts with an empty cache


def test_failures_are_not_cached():
    calls = []

    @tool(cache=True)
    def once_broken(x: int) -> int:
        calls.append(x)
        if len(calls) == 1:
            raise RuntimeError("first call fails")
        return x

    runner = ToolRunner(ToolRegistry([once_broken]))
    assert isinstance(_run(runner.call, "once_broken", {"x": 1}), ToolFailure)
    assert _run(runner.call, "once_broken", {"x": 1}) == 1


def test_concurrency_limit_keeps_calls_apart():
    active, peak = [0], [0]

    @tool(max_concurrency=2)
    async def work(i: int) -> int:
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        await anyio.sleep(0.03)
        active[0] -= 1
        return i

    runner = ToolRunner(ToolRegistry([work]))

    async def main():
        async with anyio.create_task_group() as tg:
            for i in range(6):
                tg.start_soon(runner.call, "work", {"i": i})

    _run(main)
    assert peak[0] == 2
