"""The LLM backend interface: requests, sampling parameters, completions.

A backend is one async method, :meth:`Backend.generate`, that takes a batch of
requests and returns one :class:`Completion` per request, in order. Backends
that can batch (vLLM) should submit the whole list at once; the runtime also
calls ``generate`` concurrently from independent branches, so a backend must
be safe to call from several tasks at the same time.

Sampling options live in one pydantic model, :class:`SamplingParams`, so that
no call site can forget or silently drop one.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plait.executors._schema_bounds import MAX_INTEGER, MAX_ITEMS, MAX_STRING, bound_schema

__all__ = [
    "JsonSchema",
    "bound_schema",
    "Regex",
    "Choice",
    "Grammar",
    "Constraint",
    "SamplingParams",
    "Message",
    "Request",
    "TokenLogprob",
    "Sample",
    "Completion",
    "Backend",
    "prompt_token_bound",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class JsonSchema(_Frozen):
    """Constrain output to JSON matching ``schema`` (a JSON Schema dict).

    The schema is sent as given; :meth:`of` and :func:`bound_schema` bound its
    strings, arrays and numbers so that a looping model cannot run to ``max_tokens``.
    """

    kind: Literal["json"] = "json"
    schema_: dict[str, Any] = Field(alias="schema")

    @classmethod
    def of(cls, model: type[BaseModel], *, max_string: int = MAX_STRING, max_items: int = MAX_ITEMS,
           max_integer: int = MAX_INTEGER) -> JsonSchema:
        """The constraint for a pydantic model's JSON schema, bounded by :func:`bound_schema`.

        Limits set on the model (``Field(max_length=...)``, ``le=``...) are kept.
        """
        schema = bound_schema(model.model_json_schema(), max_string=max_string, max_items=max_items,
                              max_integer=max_integer)
        return cls(schema=schema)


class Regex(_Frozen):
    """Constrain output to match a regular expression."""

    kind: Literal["regex"] = "regex"
    pattern: str


class Choice(_Frozen):
    """Constrain output to exactly one of ``options``."""

    kind: Literal["choice"] = "choice"
    options: list[str] = Field(min_length=1)


class Grammar(_Frozen):
    """Constrain output to a context-free grammar (EBNF / GBNF text, as the backend accepts)."""

    kind: Literal["grammar"] = "grammar"
    grammar: str


Constraint = Annotated[Union[JsonSchema, Regex, Choice, Grammar], Field(discriminator="kind")]


class SamplingParams(_Frozen):
    """Every sampling option a request can carry. Immutable: use ``model_copy(update=...)``."""

    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(default=256, ge=1)
    min_tokens: int = Field(default=0, ge=0,
                            description="generate at least this many tokens: end-of-sequence and stop strings wait")
    n: int = Field(default=1, ge=1, description="samples drawn from one prefill of the prompt")
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: int | None = Field(default=None, ge=0, description="top-k logprobs per generated token")
    constraint: Constraint | None = None

    @model_validator(mode="after")
    def _min_within_max(self) -> SamplingParams:
        if self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens ({self.min_tokens}) must not exceed max_tokens ({self.max_tokens})")
        return self


class Message(_Frozen):
    """One chat message."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str


class Request(_Frozen):
    """One generation request: a raw text prompt or a list of chat messages."""

    prompt: str | tuple[Message, ...]
    params: SamplingParams = SamplingParams()
    tag: str | None = Field(default=None, description="free-form label (the node name) for tracing")
    route: str | None = Field(default=None, description="routing key: requests sharing one (a run) share prompt "
                              "prefixes, so an EndpointPool keeps them on one replica; sent as X-Plait-Route")

    @model_validator(mode="after")
    def _non_empty(self) -> Request:
        if not self.prompt:
            raise ValueError("a request needs a non-empty prompt or at least one message")
        return self

    @property
    def is_chat(self) -> bool:
        return not isinstance(self.prompt, str)

    def prompt_text(self) -> str:
        """The prompt flattened to text (chat messages as ``role: content`` lines)."""
        if isinstance(self.prompt, str):
            return self.prompt
        return "\n".join(f"{m.role}: {m.content}" for m in self.prompt)


class TokenLogprob(_Frozen):
    token: str
    logprob: float
    top: dict[str, float] = {}


FinishReason = Literal["stop", "length", "abort", "error"]


class Sample(_Frozen):
    """One of the ``n`` samples of a completion."""

    text: str
    finish_reason: FinishReason = "stop"
    completion_tokens: int = 0
    cumulative_logprob: float | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None


class Completion(_Frozen):
    """A backend's answer to one :class:`Request`: ``n`` samples plus token counts."""

    samples: tuple[Sample, ...] = Field(min_length=1)
    prompt_tokens: int = 0
    cached_tokens: int = Field(default=0, description="prompt tokens served from the prefix cache")
    model: str = ""

    @property
    def text(self) -> str:
        """The first sample's text."""
        return self.samples[0].text

    @property
    def completion_tokens(self) -> int:
        return sum(s.completion_tokens for s in self.samples)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Backend(abc.ABC):
    """Abstract LLM backend. Implement :meth:`generate`; override the rest when needed.

    Use as ``async with backend: ...`` to start and stop resources (engines,
    HTTP clients). Capabilities tell nodes which request features are honoured.

    ``model`` names the model that answers (a registry name, a path, a server's
    model id; None when the backend picks one itself). :attr:`identity` says
    who answers, before the first request: durable runs key recorded samples by
    it, so backends that may answer differently must have different identities.
    """

    name: str = "backend"
    model: str | None = None
    supports_structured_output: bool = False
    supports_logprobs: bool = False
    supports_streaming: bool = False

    @property
    def identity(self) -> str:
        """Who answers requests, known before the first one: ``model``, else the class's qualified name.

        Override when ``model`` is not set at construction (a server's default model).
        """
        return self.model or f"{type(self).__module__}.{type(self).__qualname__}"

    @abc.abstractmethod
    async def generate(self, requests: list[Request]) -> list[Completion]:
        """Serve a batch of requests; return one completion per request, in order."""

    async def generate_one(self, request: Request) -> Completion:
        """Convenience wrapper for a single request."""
        (completion,) = await self.generate([request])
        return completion

    def count_prompt_tokens(self, request: Request) -> int:
        """Tokens ``request``'s prompt will cost here, or an upper bound on them.

        A run with a ``token_budget`` reserves this plus ``max_tokens * n``
        before sending the request. Backends that can tokenize override it
        with the exact count; the default is :func:`prompt_token_bound`.
        """
        return prompt_token_bound(request)

    async def stream(self, request: Request, on_text: Callable[[str], Any]) -> Completion:
        """Serve one request, calling ``on_text(chunk)`` (sync or async) as the first sample's text arrives.

        Returns the whole completion (token counts included). Backends that
        stream set ``supports_streaming`` and override this; the default
        calls ``on_text`` once, with the whole text, when generation is done.
        """
        completion = await self.generate_one(request)
        result = on_text(completion.text)
        if inspect.isawaitable(result):
            await result
        return completion

    async def start(self) -> None:
        """Acquire resources. Called by ``__aenter__``; idempotent."""

    async def aclose(self) -> None:
        """Release resources. Called by ``__aexit__``; idempotent."""

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()


_TEXT_MARGIN = 8  # special tokens a tokenizer adds around a text prompt (BOS, a leading-space marker)
_MESSAGE_MARGIN = 16  # special tokens a chat template wraps around each message
_CHAT_MARGIN = 128  # what a chat template adds of its own (a default system prompt, a date line)


def prompt_token_bound(request: Request) -> int:
    """An upper bound on the tokens of ``request``'s prompt, for backends that cannot count them.

    The UTF-8 bytes of the prompt (a token of a byte-level BPE or byte-fallback
    tokenizer covers at least one byte), plus 8 for a text prompt, or 16 per
    chat message and 128 for the chat template. Real prompts cost 3 to 4 times
    less, so a budget reserves more than it will spend until the reply returns.
    """
    text = request.prompt_text()
    if isinstance(request.prompt, str):
        return len(text.encode()) + _TEXT_MARGIN
    return len(text.encode()) + _MESSAGE_MARGIN * len(request.prompt) + _CHAT_MARGIN
