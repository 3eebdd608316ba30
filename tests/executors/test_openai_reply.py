"""Reply parsing against arbitrary server output: a checked Completion or a one-line ReplyError, nothing else.

Hypothesis writes what a broken or malicious server could send: random bytes,
and JSON built from the reply's own field names with values of every type
(negative, huge, fractional, NaN, strings where objects belong).
"""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from plait.executors._openai_http import ReplyError
from plait.executors._openai_reply import StreamAccumulator, parse_reply

FIELDS = ["choices", "index", "text", "message", "content", "delta", "usage", "prompt_tokens", "completion_tokens",
          "prompt_tokens_details", "cached_tokens", "logprobs", "tokens", "token_logprobs", "top_logprobs", "token",
          "logprob", "token_ids", "finish_reason", "model", "error"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 5), st.integers(-(10**40), 10**40),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=4), inner, max_size=5)), max_leaves=30)


def mostly(good):
    """``good`` three times in four, else any value: replies that are nearly right find the subtle faults."""
    return st.one_of(good, good, good, values)


counts = mostly(st.integers(0, 9))
message = mostly(st.fixed_dictionaries({}, optional={"content": st.text(max_size=8) | st.none()}))
choice = st.fixed_dictionaries(
    {"text": mostly(st.text(max_size=8)), "message": message},
    optional={"delta": message, "token_ids": mostly(st.lists(st.integers(0, 9), max_size=3)), "logprobs": values,
              "finish_reason": mostly(st.sampled_from(["stop", "length"]))})
usage = st.fixed_dictionaries({}, optional={"prompt_tokens": counts, "completion_tokens": counts,
                                            "prompt_tokens_details": st.fixed_dictionaries({"cached_tokens": counts})})


@st.composite
def replies(draw) -> tuple[bytes, int]:
    """A reply (nearly right, or anything at all) and the ``n`` it answers (mostly its number of choices)."""
    choices = draw(st.lists(choice, min_size=1, max_size=3))
    k = len(choices)
    indices = draw(st.one_of(*[st.just(list(range(k)))] * 3, st.lists(st.integers(0, 3), min_size=k, max_size=k)))
    choices = [{**c, "index": i} for c, i in zip(choices, indices)]
    reply = draw(st.fixed_dictionaries({"choices": st.just(choices)},
                                       optional={"usage": mostly(usage), "model": mostly(st.text(max_size=4))}))
    raw = draw(mostly(st.just(reply)).map(_encoded) | st.binary(max_size=64))
    return raw, draw(st.one_of(*[st.just(k)] * 3, st.integers(1, 3)))


def _encoded(value) -> bytes:
    return json.dumps(value).encode()  # NaN and Infinity come out as the non-JSON tokens a server might send


def _check(parse, n: int) -> None:
    try:
        completion = parse()
    except ReplyError as error:
        event("refused")
        assert "\n" not in str(error) and len(str(error)) < 600
        return
    event("parsed")
    assert len(completion.samples) == n
    assert completion.prompt_tokens >= 0 and completion.cached_tokens <= completion.prompt_tokens
    for sample in completion.samples:
        assert 0 <= sample.completion_tokens < 2**31 and isinstance(sample.text, str)
        assert sample.cumulative_logprob is None or math.isfinite(sample.cumulative_logprob)


# derandomized: the same examples every run (health checks are about generation speed on a busy machine)
FUZZ = settings(derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))


@settings(FUZZ, max_examples=150)
@given(replies(), st.booleans())
def test_any_reply_parses_or_raises_reply_error(reply, chat):
    raw, n = reply
    _check(lambda: parse_reply(raw, n=n, chat=chat, model="m"), n)


@settings(FUZZ, max_examples=100)
@given(st.lists(replies(), min_size=1, max_size=4), st.booleans())
def test_any_stream_parses_or_raises_reply_error(events, chat):
    n = events[0][1]
    accumulator = StreamAccumulator("m", n=n, chat=chat)

    def parse():
        for raw, _ in events:
            assert isinstance(accumulator.add(raw), str)
        return accumulator.completion()

    _check(parse, n)
