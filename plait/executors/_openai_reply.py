"""Replies of OpenAI-compatible servers, validated, as :class:`Completion` values.

A server's reply is untrusted input. It is parsed into strict wire models (a
token count is a non-negative int below 2**31, never a float, string, bool or
NaN) and checked: exactly ``n`` choices with indices ``0..n-1``, the text where
the endpoint puts it (``text`` for completions, ``message`` for chat), cached
tokens within the prompt. Anything else raises :class:`ReplyError` naming the
field and what was wrong; unknown fields are ignored. Cached prompt tokens come
from ``usage.prompt_tokens_details.cached_tokens``.
"""

from __future__ import annotations

import json
import math
import reprlib
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from plait.executors._base import Completion, FinishReason, Sample, TokenLogprob
from plait.executors._openai_http import ReplyError, error_text, snippet

__all__ = ["parse_reply", "parse_models", "StreamAccumulator"]

_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length", "abort": "abort", "tool_calls": "stop",
                                    "content_filter": "stop"}
_MAX_COUNT = 2**31 - 1  # a token count beyond this is absurd, whatever a server claims
_Count = Annotated[int, Field(ge=0, le=_MAX_COUNT)]


class _Wire(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, allow_inf_nan=False)


class _TopLogprob(_Wire):
    token: str
    logprob: float


class _ChatTokenLogprob(_Wire):
    token: str
    logprob: float
    top_logprobs: list[_TopLogprob] | None = None


class _Logprobs(_Wire):
    content: list[_ChatTokenLogprob] | None = None  # chat format
    tokens: list[str] | None = None  # completions format: parallel lists
    token_logprobs: list[float | None] | None = None
    top_logprobs: list[dict[str, float] | None] | None = None

    @model_validator(mode="after")
    def _parallel(self) -> _Logprobs:
        lengths = {len(v) for v in (self.tokens, self.token_logprobs, self.top_logprobs) if v is not None}
        if len(lengths) > 1:
            raise ValueError("tokens, token_logprobs and top_logprobs differ in length")
        return self


class _Message(_Wire):
    content: str | None = None


class _Choice(_Wire):
    index: _Count = 0
    text: str | None = None
    message: _Message | None = None
    delta: _Message | None = None
    finish_reason: str | None = None
    token_ids: list[int] | None = None
    logprobs: _Logprobs | None = None


class _Details(_Wire):
    cached_tokens: _Count | None = None


class _Usage(_Wire):
    prompt_tokens: _Count | None = None
    completion_tokens: _Count | None = None
    prompt_tokens_details: _Details | None = None

    @model_validator(mode="after")
    def _cached_within_prompt(self) -> _Usage:
        cached = self.prompt_tokens_details.cached_tokens if self.prompt_tokens_details else None
        if cached and cached > (self.prompt_tokens or 0):
            raise ValueError(f"{cached} cached tokens of a {self.prompt_tokens or 0}-token prompt")
        return self


class _Reply(_Wire):
    """A completions or chat-completions reply, or one event of a streamed one."""

    choices: list[_Choice] = []
    usage: _Usage | None = None
    model: str | None = None
    error: Any = None


class _ModelEntry(_Wire):
    id: str = Field(min_length=1)


class _Models(_Wire):
    data: list[_ModelEntry] = []


_W = TypeVar("_W", bound=_Wire)


def _validate(kind: type[_W], raw: bytes, what: str) -> _W:
    """``raw`` parsed as ``kind``; ReplyError naming the first fault (not UTF-8, not JSON, wrong shape)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReplyError(f"sent a {what} that is not UTF-8 "
                         f"(byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    try:
        value = kind.model_validate_json(text)
    except ValidationError as exc:
        fault = exc.errors(include_url=False)[0]
        if fault["type"] == "json_invalid":
            reason = fault.get("ctx", {}).get("error", fault["msg"])
            raise ReplyError(f"sent a {what} that is not JSON ({reason}): {snippet(text)!r}") from None
        where = ".".join(str(part) for part in fault["loc"]) or "top level"
        raise ReplyError(f"sent a malformed {what}: {where}: {fault['msg']} "
                         f"(got {snippet(reprlib.repr(fault['input']), 60)})") from None
    return value


def _check_error(reply: _Reply, verb: str) -> _Reply:
    """A server may put an OpenAI error object where a reply (or stream event) belongs."""
    if reply.error is not None:
        raise ReplyError(f"{verb}: {error_text(json.dumps({'error': reply.error}).encode())}")
    return reply


def parse_models(raw: bytes) -> list[str]:
    """The ids of the models a ``/models`` reply lists (at least one), in the server's order."""
    models = _validate(_Models, raw, "model list")
    if not models.data:
        raise ReplyError("lists no model; pass model=...")
    return [m.id for m in models.data]


def parse_reply(raw: bytes, *, n: int, chat: bool, model: str) -> Completion:
    """A non-streamed completions or chat-completions reply, checked, as a :class:`Completion`."""
    reply = _check_error(_validate(_Reply, raw, "reply"), "reported an error")
    _check_indices([c.index for c in reply.choices], n)
    samples = tuple(_sample(c, chat) for c in sorted(reply.choices, key=lambda c: c.index))
    return _completion(samples, reply.usage, reply.model or model)


def _check_indices(indices: list[int], n: int) -> None:
    if len(indices) != n:
        raise ReplyError(f"returned {len(indices)} choice(s) for n={n}")
    if sorted(indices) != list(range(n)):
        shown = sorted(indices)[:8]
        raise ReplyError(f"returned choices with indices {shown}{'...' if len(indices) > 8 else ''} for n={n} "
                         f"(expected each of 0..{n - 1} once)")


def _completion(samples: tuple[Sample, ...], usage: _Usage | None, model: str) -> Completion:
    usage = usage or _Usage()
    if all(s.completion_tokens == 0 for s in samples) and usage.completion_tokens:
        # Servers without per-choice token ids: share the reported total out.
        share = usage.completion_tokens // len(samples)
        samples = tuple(s.model_copy(update={"completion_tokens": share}) for s in samples)
    details = usage.prompt_tokens_details
    return Completion(
        samples=samples,
        prompt_tokens=usage.prompt_tokens or 0,
        cached_tokens=(details.cached_tokens if details else None) or 0,
        model=model,
    )


def _sample(choice: _Choice, chat: bool) -> Sample:
    where = f"choices[{choice.index}]"
    if chat and choice.message is None:
        raise ReplyError(f"sent a chat reply whose {where}.message is missing or null")
    if not chat and choice.text is None:
        raise ReplyError(f"sent a completion whose {where}.text is missing or null")
    text = (choice.message.content or "") if chat and choice.message else (choice.text or "")
    logprobs = _logprobs(choice.logprobs)
    count = len(choice.token_ids) if choice.token_ids is not None else len(logprobs or ())
    return _make_sample(text, choice.finish_reason, count, logprobs)


def _make_sample(text: str, finish: str | None, tokens: int, logprobs: tuple[TokenLogprob, ...] | None) -> Sample:
    cumulative = sum(t.logprob for t in logprobs) if logprobs else None
    if cumulative is not None and not math.isfinite(cumulative):
        raise ReplyError("sent logprobs that sum to infinity")
    return Sample(
        text=text,
        finish_reason=_FINISH.get(finish or "stop", "stop"),
        completion_tokens=min(tokens, _MAX_COUNT),
        cumulative_logprob=cumulative,
        logprobs=logprobs or None,
    )


def _logprobs(raw: _Logprobs | None) -> tuple[TokenLogprob, ...] | None:
    if raw is None:
        return None
    if raw.content is not None or raw.tokens is None:  # chat format
        return tuple(TokenLogprob(token=item.token, logprob=item.logprob,
                                  top={t.token: t.logprob for t in item.top_logprobs or []})
                     for item in raw.content or [])
    tops = raw.top_logprobs or [None] * len(raw.tokens)
    return tuple(TokenLogprob(token=token, logprob=logprob if logprob is not None else 0.0, top=dict(top or {}))
                 for token, logprob, top in zip(raw.tokens, raw.token_logprobs or [], tops))


class StreamAccumulator:
    """Folds the events of a streamed reply into one :class:`Completion`, checking each as it comes."""

    def __init__(self, model: str, *, n: int, chat: bool):
        self.model, self.n, self.chat = model, n, chat
        self.choices: dict[int, dict[str, Any]] = {}
        self.usage: _Usage | None = None

    def add(self, raw: bytes) -> str:
        """Fold in one event's data; return the first sample's new text."""
        event = _check_error(_validate(_Reply, raw, "stream event"), "failed mid-stream")
        self.usage = event.usage or self.usage
        self.model = event.model or self.model
        first = ""
        for choice in event.choices:
            if choice.index >= self.n:
                raise ReplyError(f"streamed choice index {choice.index} for n={self.n}")
            state = self.choices.setdefault(choice.index, {"text": [], "tokens": 0, "logprobs": [], "finish": None})
            piece = ((choice.delta.content if choice.delta else None) if self.chat else choice.text) or ""
            state["text"].append(piece)
            state["tokens"] += len(choice.token_ids or ())
            state["logprobs"].extend(_logprobs(choice.logprobs) or ())
            state["finish"] = choice.finish_reason or state["finish"]
            first += piece if choice.index == 0 else ""
        return first

    def completion(self) -> Completion:
        _check_indices(list(self.choices), self.n)
        samples = tuple(
            _make_sample("".join(s["text"]), s["finish"], s["tokens"] or len(s["logprobs"]), tuple(s["logprobs"]))
            for _, s in sorted(self.choices.items())
        )
        return _completion(samples, self.usage, self.model)
