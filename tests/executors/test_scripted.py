"""The library's own test-double backends."""

import anyio
import pytest
from pydantic import BaseModel, ValidationError

from plait import (
    BackendError,
    Completion,
    FunctionBackend,
    JsonSchema,
    Message,
    Request,
    SamplingParams,
    ScriptedBackend,
)
from plait.errors import ScriptExhaustedError
from plait.executors import Choice, Sample

pytestmark = pytest.mark.anyio


async def test_list_script_consumed_in_order_one_reply_per_sample():
    backend = ScriptedBackend(["a", "b", "c", "d"])
    first = await backend.generate_one(Request(prompt="p"))
    three = await backend.generate_one(Request(prompt="p", params=SamplingParams(n=3)))
    assert first.text == "a"
    assert [s.text for s in three.samples] == ["b", "c", "d"]
    assert len(backend.requests) == 2 and len(backend.batches) == 2
    with pytest.raises(ScriptExhaustedError, match="no reply left"):
        await backend.generate_one(Request(prompt="p"))


async def test_dict_script_matches_substrings_and_cycles_lists():
    backend = ScriptedBackend({"capital": "Paris", "count": ["one", "two"]})
    assert (await backend.generate_one(Request(prompt="the capital of France"))).text == "Paris"
    texts = [(await backend.generate_one(Request(prompt="count please"))).text for _ in range(3)]
    assert texts == ["one", "two", "one"]
    with pytest.raises(ScriptExhaustedError, match="no entry matching"):
        await backend.generate_one(Request(prompt="unrelated"))


async def test_callable_script_exceptions_samples_and_completions():
    def handler(request: Request):
        text = request.prompt_text()
        if "fail" in text:
            return BackendError("scripted failure")
        if "full" in text:
            return Completion(samples=(Sample(text="x"),), prompt_tokens=99)
        return Sample(text="s", cumulative_logprob=-0.5)

    backend = ScriptedBackend(handler)
    with pytest.raises(BackendError, match="scripted failure"):
        await backend.generate_one(Request(prompt="fail"))
    assert (await backend.generate_one(Request(prompt="full"))).prompt_tokens == 99
    sample = (await backend.generate_one(Request(prompt="x"))).samples[0]
    assert sample.cumulative_logprob == -0.5


async def test_stop_strings_and_max_tokens():
    backend = ScriptedBackend(lambda r: "one two three four five\nsix")
    stopped = await backend.generate_one(Request(prompt="p", params=SamplingParams(stop=("\n",))))
    assert stopped.text == "one two three four five" and stopped.samples[0].finish_reason == "stop"
    cut = await backend.generate_one(Request(prompt="p", params=SamplingParams(max_tokens=2)))
    assert cut.text == "one two" and cut.samples[0].finish_reason == "length"
    assert cut.completion_tokens == 2


async def test_prefix_cache_simulation_counts_shared_leading_tokens():
    backend = ScriptedBackend(lambda r: "ok")
    a = await backend.generate_one(Request(prompt="system rules apply here. question one"))
    b = await backend.generate_one(Request(prompt="system rules apply here. question two"))
    assert a.cached_tokens == 0
    assert b.prompt_tokens == 7 and b.cached_tokens == 6
    off = ScriptedBackend(lambda r: "ok", prefix_cache=False)
    await off.generate_one(Request(prompt="same"))
    assert (await off.generate_one(Request(prompt="same"))).cached_tokens == 0


async def test_function_backend_async_handler_and_concurrent_batch():
    live = {"now": 0, "peak": 0}

    async def handler(request: Request) -> str:
        live["now"] += 1
        live["peak"] = max(live["peak"], live["now"])
        await anyio.sleep(0.02)
        live["now"] -= 1
        return request.prompt_text().upper()

    backend = FunctionBackend(handler)
    out = await backend.generate([Request(prompt=p) for p in ("a", "b", "c")])
    assert [c.text for c in out] == ["A", "B", "C"]
    assert live["peak"] == 3  # a batch is served concurrently, like a real engine


async def test_chat_requests_and_parameter_validation():
    backend = ScriptedBackend({"user: hi": "hello"})
    messages = (Message(role="system", content="be brief"), Message(role="user", content="hi"))
    assert (await backend.generate_one(Request(prompt=messages))).text == "hello"
    with pytest.raises(ValidationError):
        SamplingParams(n=0)
    with pytest.raises(ValidationError):
        Request(prompt="")
    with pytest.raises(ValidationError):
        Choice(options=[])


def test_json_schema_constraint_from_model():
    class Answer(BaseModel):
        value: int

    constraint = JsonSchema.of(Answer)
    assert constraint.schema_["properties"]["value"]["type"] == "integer"
    params = SamplingParams(constraint=constraint)
    assert SamplingParams.model_validate(params.model_dump(by_alias=True)).constraint == constraint


def test_bound_schema_limits_free_strings_and_lists_keeping_their_own_limits():
    from pydantic import BaseModel, Field

    from plait import JsonSchema

    class Item(BaseModel):
        name: str
        code: str = Field(pattern=r"^[A-Z]{3}$")
        tags: list[str]
        pair: list[int] = Field(min_length=2, max_length=2)

    class Order(BaseModel):
        items: list[Item] = Field(min_length=150)

    schema = JsonSchema.of(Order, max_string=40, max_items=100).schema_
    item = schema["$defs"]["Item"]["properties"]
    assert item["name"]["maxLength"] == 40 and "maxLength" not in item["code"]  # a pattern bounds it already
    assert item["tags"]["maxItems"] == 100 and item["tags"]["items"]["maxLength"] == 40
    assert item["pair"]["maxItems"] == 2  # its own limit stays
    assert schema["properties"]["items"]["maxItems"] == 150  # never below minItems
    assert JsonSchema.of(Order).schema_["$defs"]["Item"]["properties"]["name"]["maxLength"] == 240  # by default
