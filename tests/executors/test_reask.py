"""The one re-ask loop (plait/executors/_reask.py) that chain steps, subtask trees, the planner and Formulate share."""

import pytest

from plait import Message, Request, SamplingParams, ScriptedBackend
from plait.executors import _reask
from plait.executors._reask import ask_until_usable, reask_request
from plait.planners import _asking, _planner, _subtasks
from plait.solvers import _formulate_repair

pytestmark = pytest.mark.anyio


class Ctx:
    """What the loop needs of a run context: generate() on a real (scripted) backend."""

    def __init__(self, replies):
        self.backend = ScriptedBackend(replies)

    async def generate(self, request):
        return (await self.backend.generate([request]))[0]


def number(request, completion, call):
    """A judge: the reply as an int, or the problem with it."""
    try:
        return int(completion.text), None
    except ValueError:
        return None, f"{completion.text!r} is not a number"


def text_follow_up(request, raw, problem):
    return reask_request(request, raw, f"Problem: {problem}", "A: ")


async def test_asks_again_with_the_problem_until_a_reply_is_usable():
    ctx = Ctx(["seven", "7"])
    reply = await ask_until_usable(ctx, Request(prompt="Q: how many? A: ", params=SamplingParams()), number,
                                   rounds=3, follow_up=text_follow_up)
    assert (reply.value, reply.problem, reply.raw, reply.calls) == (7, None, "7", 2)
    assert ctx.backend.requests[1].prompt == "Q: how many? A: seven\n\nProblem: 'seven' is not a number\nA: "


async def test_stops_after_rounds_and_returns_the_last_reply_with_its_problem():
    ctx = Ctx(["a", "b", "c", "4"])
    reply = await ask_until_usable(ctx, Request(prompt="Q", params=SamplingParams()), number, rounds=3,
                                   follow_up=text_follow_up)
    assert (reply.value, reply.problem, reply.raw, reply.calls) == (None, "'c' is not a number", "c", 3)
    assert len(ctx.backend.requests) == 3  # the fourth reply is never asked for


async def test_chat_follow_ups_append_the_reply_and_the_feedback_as_messages():
    ctx = Ctx(["x", "5"])
    first = Request(prompt=(Message(role="user", content="How many?"),), params=SamplingParams())
    await ask_until_usable(ctx, first, number, rounds=2,
                           follow_up=lambda request, raw, problem: reask_request(request, raw, problem))
    assert [(m.role, m.content) for m in ctx.backend.requests[1].prompt] == [
        ("user", "How many?"), ("assistant", "x"), ("user", "'x' is not a number")]


async def test_before_runs_ahead_of_every_call_and_may_stop_the_loop():
    seen = []

    def before(request):
        seen.append(request.prompt)
        if len(seen) == 2:
            raise RuntimeError("budget spent")
        return request.model_copy(update={"params": SamplingParams(max_tokens=5)})

    ctx = Ctx(["x", "5"])
    with pytest.raises(RuntimeError, match="budget spent"):
        await ask_until_usable(ctx, Request(prompt="Q", params=SamplingParams()), number, rounds=3,
                               follow_up=text_follow_up, before=before)
    assert len(seen) == 2 and len(ctx.backend.requests) == 1
    assert ctx.backend.requests[0].params.max_tokens == 5


async def test_an_async_judge_is_awaited_and_sees_the_call_number():
    calls = []

    async def judge(request, completion, call):
        calls.append(call)
        return number(request, completion, call)

    reply = await ask_until_usable(Ctx(["?", "?", "3"]), Request(prompt="Q", params=SamplingParams()), judge,
                                   rounds=5, follow_up=text_follow_up)
    assert reply.value == 3 and calls == [1, 2, 3]


async def test_rounds_below_one_is_refused():
    with pytest.raises(ValueError, match="rounds >= 1"):
        await ask_until_usable(Ctx([]), Request(prompt="Q", params=SamplingParams()), number, rounds=0,
                               follow_up=text_follow_up)


def test_every_re_asking_node_uses_the_one_loop():
    for module in (_asking, _subtasks, _planner, _formulate_repair):
        assert module.ask_until_usable is ask_until_usable
    assert _asking.reask_request is _reask.reask_request
