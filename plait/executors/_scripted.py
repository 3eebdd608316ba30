"""Test-double backends that ship with the library.

:class:`ScriptedBackend` answers from a script (a list, a dict, or a callable)
and records every request, so tests can assert on what a node sent.
:class:`FunctionBackend` answers by calling a handler. Both count tokens with
a simple word/punctuation tokenizer (or a real model's, ``tokenizer=``) and
simulate a prefix cache, so token budgets and cache-hit figures behave as
they would on a real engine.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import anyio

from plait.errors import BackendError, ConfigError, ScriptExhaustedError
from plait.executors._base import Backend, Completion, Request, Sample, serve_concurrently
from plait.executors._tokenize import Tokenizer, as_tokenizer, word_spans

__all__ = ["ScriptedBackend", "FunctionBackend", "count_tokens"]

Reply = Union[str, Sample, Completion, BaseException]
Handler = Callable[[Request], Union[Reply, Sequence[Reply], Awaitable[Any]]]

def count_tokens(text: str) -> int:
    """Approximate token count: words and punctuation marks."""
    return len(word_spans(text))


class _PrefixCache:
    """Remembers prompts to report how many leading tokens a real prefix cache would serve."""

    def __init__(self) -> None:
        self._seen: list[list[str]] = []

    def lookup_and_add(self, tokens: list[str]) -> int:
        best = 0
        for prior in self._seen:
            n = 0
            for a, b in zip(prior, tokens):
                if a != b:
                    break
                n += 1
            best = max(best, n)
        self._seen.append(tokens)
        return min(best, max(len(tokens) - 1, 0))


class FunctionBackend(Backend):
    """A backend whose replies come from ``handler(request)``.

    The handler (sync or async) returns a string, a :class:`Sample`, a full
    :class:`Completion`, a list of strings/samples (one per ``n``), or raises.
    For a request with ``n > 1`` a handler that returns one reply is called
    again until there are ``n`` samples.
    ``latency`` (seconds, or a function of the request) is slept before each
    reply, which makes concurrency observable in tests. ``token_latency``
    (seconds per generated token of the longest sample) is slept after it, as
    decoding would take; :meth:`stream` paces its chunks (one per token) by it.
    ``tokenizer`` decides what a token is, for token counts, latency,
    ``max_tokens``/``min_tokens`` and the simulated prefix cache: by default
    words and punctuation marks; a model's ``tokenizer.json``, its folder or a
    registry name (see :func:`~plait.executors.hf_tokenizer`) counts like that model.
    """

    name = "function"
    supports_structured_output = True
    supports_logprobs = True
    supports_streaming = True

    def __init__(
        self,
        handler: Handler,
        *,
        latency: float | Callable[[Request], float] = 0.0,
        token_latency: float = 0.0,
        prefix_cache: bool = True,
        model: str = "scripted",
        tokenizer: Tokenizer | str | Path | None = None,
    ):
        self._handler = handler
        self._spans = as_tokenizer(tokenizer)
        self._latency = latency
        self._token_latency = token_latency
        self._cache = _PrefixCache() if prefix_cache else None
        self.model: str = model
        self.requests: list[Request] = []
        self.batches: list[list[Request]] = []

    async def generate(self, requests: list[Request]) -> list[Completion]:
        batch = list(requests)
        self.batches.append(batch)
        self.requests.extend(batch)
        return await serve_concurrently(batch, self._serve)

    async def stream(self, request: Request, on_text: Callable[[str], Any]) -> Completion:
        """Serve one request, handing the first sample's text to ``on_text`` token by token, paced by ``token_latency``."""
        self.batches.append([request])
        self.requests.append(request)
        completion = await self._reply(request)
        text = completion.samples[0].text
        start, sent = anyio.current_time(), 0
        for n, (_, end) in enumerate(self._spans(text), start=1):
            late = start + n * self._token_latency - anyio.current_time()
            if late > 0.002:  # sleep in slices of a few ms at least: timers are not finer than that
                await anyio.sleep(late)
            await _call(on_text, text[sent:end])
            sent = end
        if sent < len(text):
            await _call(on_text, text[sent:])
        return completion

    async def _serve(self, request: Request) -> Completion:
        completion = await self._reply(request)
        if self._token_latency:
            await anyio.sleep(self._token_latency * max(s.completion_tokens for s in completion.samples))
        return completion

    async def _reply(self, request: Request) -> Completion:
        delay = self._latency(request) if callable(self._latency) else self._latency
        if delay:
            await anyio.sleep(delay)
        replies: list[Any] = []
        while len(replies) < request.params.n:
            reply = self._handler(request)
            if inspect.isawaitable(reply):
                reply = await reply
            if isinstance(reply, Completion):
                return reply
            if isinstance(reply, (list, tuple)):
                replies.extend(reply)
                break
            replies.append(reply)
        return self._to_completion(request, replies)

    def _to_completion(self, request: Request, replies: list[Any]) -> Completion:
        samples: list[Sample] = []
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
            if isinstance(reply, Completion):
                return reply
            if isinstance(reply, Sample):
                samples.append(reply)
            elif isinstance(reply, str):
                if request.params.logprobs is not None:  # made-up logprobs would silently skew a weighted vote
                    raise BackendError(
                        f"{type(self).__name__} was asked for logprobs={request.params.logprobs}, but its scripted "
                        f"reply {reply[:40]!r} is plain text, which has none; script a Sample(text=..., "
                        "cumulative_logprob=..., logprobs=...) instead")
                samples.append(self._sample(request, reply))
            else:
                raise BackendError(
                    f"{type(self).__name__} reply must be str, Sample, Completion or an exception, "
                    f"got {type(reply).__name__}"
                )
        if not samples:
            raise BackendError(f"{type(self).__name__} produced no samples for request {request.tag!r}")
        text = request.prompt_text()
        prompt = [text[a:b] for a, b in self._spans(text)]
        cached = self._cache.lookup_and_add(prompt) if self._cache else 0
        return Completion(samples=tuple(samples), prompt_tokens=len(prompt), cached_tokens=cached, model=self.model)

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` as this backend counts them (its ``tokenizer``)."""
        return len(self._spans(text))

    def count_prompt_tokens(self, request: Request) -> int:
        """The prompt tokens this backend reports for ``request``: exact."""
        return len(self._spans(request.prompt_text()))

    def _sample(self, request: Request, text: str) -> Sample:
        floor = 0
        if request.params.min_tokens:
            floor = _nth_token_end(self._spans(text), request.params.min_tokens, len(text))
        for stop in request.params.stop:  # like an engine: a stop string counts only after min_tokens
            at = text.find(stop, floor) if stop else -1
            if at >= 0:
                text = text[:at]
        spans = self._spans(text)
        if len(spans) > request.params.max_tokens:
            # Keep the text a real engine would have produced up to max_tokens.
            text = text[: _nth_token_end(spans, request.params.max_tokens, len(text))]
            return Sample(text=text, finish_reason="length", completion_tokens=request.params.max_tokens)
        return Sample(text=text, finish_reason="stop", completion_tokens=len(spans))


async def _call(fn: Callable[[str], Any], chunk: str) -> None:
    result = fn(chunk)
    if inspect.isawaitable(result):
        await result


def _nth_token_end(spans: Sequence[tuple[int, int]], n: int, length: int) -> int:
    """Where the n-th token ends (0 for n=0; the text's length past the last token)."""
    if n <= 0:
        return 0
    return spans[n - 1][1] if n <= len(spans) else length


class ScriptedBackend(FunctionBackend):
    """A backend that replies from a script and records every request.

    ``script`` may be:

    * a list: replies are consumed in order, one per sample (a request with
      ``n=3`` takes three); running out raises :class:`ScriptExhaustedError`;
    * a dict: the first key found *in* the prompt text picks the reply (a
      value that is a list is cycled through on repeated matches);
    * a callable ``request -> reply``.

    A reply is a string, a :class:`Sample`, a :class:`Completion`, or an
    exception instance (raised, to test failure paths).
    """

    name = "scripted"

    def __init__(
        self,
        script: Sequence[Reply] | Mapping[str, Reply | Sequence[Reply]] | Callable[[Request], Any],
        *,
        latency: float | Callable[[Request], float] = 0.0,
        token_latency: float = 0.0,
        prefix_cache: bool = True,
        model: str = "scripted",
        tokenizer: Tokenizer | str | Path | None = None,
    ):
        if isinstance(script, Mapping):
            handler = self._from_mapping(dict(script))
        elif callable(script):
            handler = script
        elif isinstance(script, Sequence) and not isinstance(script, str):
            handler = self._from_list(list(script))
        else:
            raise ConfigError(f"ScriptedBackend script must be a list, dict or callable, got {type(script).__name__}")
        super().__init__(handler, latency=latency, token_latency=token_latency, prefix_cache=prefix_cache, model=model,
                         tokenizer=tokenizer)

    def _from_list(self, replies: list[Reply]) -> Handler:
        self.remaining = replies

        def next_reply(request: Request) -> Reply:
            if not self.remaining:
                raise ScriptExhaustedError(
                    f"ScriptedBackend has no reply left for the request{f' {request.tag!r}' if request.tag else ''} "
                    f"whose prompt starts {request.prompt_text()[:60]!r}; add more replies to the script"
                )
            return self.remaining.pop(0)

        return next_reply

    def _from_mapping(self, table: dict[str, Any]) -> Handler:
        counters = dict.fromkeys(table, 0)

        def lookup(request: Request) -> Reply:
            text = request.prompt_text()
            for key, value in table.items():
                if key in text:
                    if isinstance(value, (list, tuple)):
                        value = value[counters[key] % len(value)]
                        counters[key] += 1
                    return value
            raise ScriptExhaustedError(
                f"ScriptedBackend has no entry matching prompt {text[:80]!r}; keys are {list(table)}"
            )

        return lookup
