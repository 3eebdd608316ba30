"""Request bodies and response parsing for OpenAI-compatible servers (vLLM's in particular).

Text prompts go to ``/completions``, chat messages to ``/chat/completions``.
Besides the OpenAI fields we send vLLM's extensions, which other servers
ignore: ``structured_outputs`` (json / regex / choice / grammar) and
``return_token_ids`` (exact per-sample token counts). Cached prompt tokens come
from ``usage.prompt_tokens_details.cached_tokens``, which vLLM reports when
started with ``--enable-prompt-tokens-details``.
"""

from __future__ import annotations

from typing import Any

from plait.executors._base import Completion, Request, Sample, TokenLogprob
from plait.executors._constraints import vllm_structured_fields

__all__ = ["request_body", "endpoint", "parse_response", "StreamAccumulator"]

_FINISH = {"stop": "stop", "length": "length", "abort": "abort", "tool_calls": "stop", "content_filter": "stop"}


def endpoint(request: Request) -> str:
    return "/chat/completions" if request.is_chat else "/completions"


def request_body(request: Request, model: str, *, stream: bool = False) -> dict[str, Any]:
    """The JSON body for one plait request."""
    p = request.params
    body: dict[str, Any] = {
        "model": model,
        "n": p.n,
        "max_tokens": p.max_tokens,
        "temperature": p.temperature,
        "top_p": p.top_p,
        "return_token_ids": True,
    }
    if request.is_chat:
        body["messages"] = [{"role": m.role, "content": m.content} for m in request.prompt]
        if p.logprobs is not None:
            body["logprobs"] = True
            body["top_logprobs"] = p.logprobs
    else:
        body["prompt"] = request.prompt
        if p.logprobs is not None:
            body["logprobs"] = p.logprobs
    if p.stop:
        body["stop"] = list(p.stop)
    if p.seed is not None:
        body["seed"] = p.seed
    if p.min_tokens:
        body["min_tokens"] = p.min_tokens  # a vLLM extension of the OpenAI API
    structured = vllm_structured_fields(request)
    if structured:
        body["structured_outputs"] = structured
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def parse_response(data: dict[str, Any], model: str) -> Completion:
    """A non-streamed completions or chat-completions response as a :class:`Completion`."""
    choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
    samples = tuple(_sample(c) for c in choices)
    return _completion(samples, data.get("usage") or {}, data.get("model") or model)


def _completion(samples: tuple[Sample, ...], usage: dict[str, Any], model: str) -> Completion:
    if samples and all(s.completion_tokens == 0 for s in samples) and usage.get("completion_tokens"):
        # Servers without per-choice token ids: share the reported total out.
        share = usage["completion_tokens"] // len(samples)
        samples = tuple(s.model_copy(update={"completion_tokens": share}) for s in samples)
    details = usage.get("prompt_tokens_details") or {}
    return Completion(
        samples=samples,
        prompt_tokens=usage.get("prompt_tokens") or 0,
        cached_tokens=details.get("cached_tokens") or 0,
        model=model,
    )


def _sample(choice: dict[str, Any]) -> Sample:
    text = choice["message"].get("content") or "" if "message" in choice else choice.get("text") or ""
    token_ids = choice.get("token_ids")
    logprobs = _logprobs(choice.get("logprobs"))
    count = len(token_ids) if token_ids is not None else (len(logprobs) if logprobs else 0)
    return Sample(
        text=text,
        finish_reason=_FINISH.get(choice.get("finish_reason") or "stop", "stop"),
        completion_tokens=count,
        cumulative_logprob=sum(t.logprob for t in logprobs) if logprobs else None,
        logprobs=logprobs,
    )


def _logprobs(raw: dict[str, Any] | None) -> tuple[TokenLogprob, ...] | None:
    if not raw:
        return None
    if "content" in raw:  # chat format: a list of {token, logprob, top_logprobs: [{token, logprob}]}
        return tuple(
            TokenLogprob(
                token=item["token"],
                logprob=item["logprob"],
                top={t["token"]: t["logprob"] for t in item.get("top_logprobs") or []},
            )
            for item in raw["content"] or []
        )
    tops = raw.get("top_logprobs") or [None] * len(raw.get("tokens") or [])
    return tuple(
        TokenLogprob(token=token, logprob=logprob if logprob is not None else 0.0, top=dict(top or {}))
        for token, logprob, top in zip(raw.get("tokens") or [], raw.get("token_logprobs") or [], tops)
    )


class StreamAccumulator:
    """Folds server-sent chunks of a streamed response into one :class:`Completion`."""

    def __init__(self, model: str):
        self.model = model
        self.choices: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, Any] = {}

    def add(self, chunk: dict[str, Any]) -> None:
        self.usage = chunk.get("usage") or self.usage
        self.model = chunk.get("model") or self.model
        for delta in chunk.get("choices") or []:
            state = self.choices.setdefault(
                delta.get("index", 0), {"text": [], "token_ids": [], "logprobs": [], "finish_reason": None}
            )
            piece = (delta.get("delta") or {}).get("content") if "delta" in delta else delta.get("text")
            state["text"].append(piece or "")
            state["token_ids"].extend(delta.get("token_ids") or [])
            state["logprobs"].extend(_logprobs(delta.get("logprobs")) or ())
            state["finish_reason"] = delta.get("finish_reason") or state["finish_reason"]

    def completion(self) -> Completion:
        samples = tuple(
            Sample(
                text="".join(state["text"]),
                finish_reason=_FINISH.get(state["finish_reason"] or "stop", "stop"),
                completion_tokens=len(state["token_ids"]) or len(state["logprobs"]),
                cumulative_logprob=sum(t.logprob for t in state["logprobs"]) if state["logprobs"] else None,
                logprobs=tuple(state["logprobs"]) or None,
            )
            for _, state in sorted(self.choices.items())
        )
        return _completion(samples, self.usage, self.model)
