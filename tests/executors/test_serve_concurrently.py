"""serve_concurrently: the one way backends that serve requests one by one serve a batch."""

import anyio
import pytest

from plait import BackendError, Request, SamplingParams, ScriptedBackend
from plait.executors import _openai, _scripted
from plait.executors._base import serve_concurrently

pytestmark = pytest.mark.anyio


def requests(n):
    return [Request(prompt=f"q{i}", params=SamplingParams()) for i in range(n)]


async def test_completions_come_back_in_request_order_while_served_at_once():
    backend = ScriptedBackend(lambda r: r.prompt_text().upper())
    both_started = anyio.Event()
    started = []

    async def serve(request):
        started.append(request.prompt)
        if len(started) == 3:
            both_started.set()
        with anyio.fail_after(30):  # ended, not hung: all three must be in flight together
            await both_started.wait()
        if request.prompt == "q0":
            await anyio.sleep(0.01)  # the first finishes last
        return (await backend.generate([request]))[0]

    completions = await serve_concurrently(requests(3), serve)
    assert [c.text for c in completions] == ["Q0", "Q1", "Q2"]


async def test_the_first_failure_propagates_as_itself_and_cancels_the_rest():
    cancelled = []

    async def serve(request):
        if request.prompt == "q1":
            raise BackendError("q1 refused")
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append(request.prompt)

    with anyio.fail_after(30):
        with pytest.raises(BackendError, match="q1 refused"):
            await serve_concurrently(requests(3), serve)
    assert sorted(cancelled) == ["q0", "q2"]


async def test_a_lone_requests_failure_propagates_as_itself():
    async def serve(request):
        raise KeyError("lone")

    with pytest.raises(KeyError):
        await serve_concurrently(requests(1), serve)


def test_scripted_and_http_backends_share_it():
    assert _scripted.serve_concurrently is _openai.serve_concurrently is serve_concurrently
