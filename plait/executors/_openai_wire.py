"""Request bodies for OpenAI-compatible servers (vLLM's in particular).

Text prompts go to ``/completions``, chat messages to ``/chat/completions``.
Besides the OpenAI fields we send vLLM's extensions, which other servers
ignore: ``structured_outputs`` (json / regex / choice / grammar) and
``return_token_ids`` (exact per-sample token counts). Cached prompt tokens come
from ``usage.prompt_tokens_details.cached_tokens``, which vLLM reports when
started with ``--enable-prompt-tokens-details``. Replies are read by
:mod:`plait.executors._openai_reply`.
"""

from __future__ import annotations

from typing import Any

from plait.executors._base import Request
from plait.executors._constraints import vllm_structured_fields

__all__ = ["request_body", "endpoint"]


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
    if not isinstance(request.prompt, str):  # chat messages
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
