"""Recording and replay as a backend wrapper: what a checkpointed run's nodes reach through ``ctx.backend``.

:class:`RecordingBackend` wraps the run's backend (``inner``). Every request is
looked up in the checkpoint's records first; what is missing goes to ``inner``
and is recorded. Samples are keyed by (backend identity, node, prompt, sampling
parameters with the seed, sample index), where the index counts identical
requests of a node within the run: the eight samples of a width-8 fan-out stay
eight distinct samples, and two nodes asking the same thing never swap samples.
The records are shared by runs: a later run asking the same node the same thing
gets the same samples (give a new ``seed``, or ``cache=False``, for fresh ones).

The backend's capabilities (structured outputs, logprobs, streaming, token
counting) are recorded too, so a replay (``inner`` None) reports what the
recorded backend reported, nodes send the same requests, and every request is
answered from the records or raises :class:`~plait.errors.ReplayMissError`.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from plait.durable._codec import canonical, load_record
from plait.durable._store import Checkpointer
from plait.errors import BackendError, ReplayMissError
from plait.executors._base import Backend, Completion, Request, Sample

__all__ = ["RecordingBackend"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Capabilities(_Record):
    name: str = "replay"
    supports_structured_output: bool = False
    supports_logprobs: bool = False
    supports_streaming: bool = False
    count_tokens: bool = False


class _SampleRecord(_Record):
    sample: Sample
    prompt_tokens: int = Field(ge=0)
    cached_tokens: int = Field(ge=0)
    model: str


class _TokenCount(_Record):
    tokens: int = Field(ge=0)


class RecordingBackend(Backend):
    """Serves a run's requests from ``store``'s records, sending what is missing to ``inner`` (None: replay)."""

    def __init__(self, inner: Backend | None, store: Checkpointer, identity: str, run_id: str):
        self.inner, self.store, self.run_id = inner, store, run_id
        self.model = identity
        caps_key = f"backend:{identity}"
        if inner is None:
            blob = store.get_record(caps_key)
            caps = _Capabilities() if blob is None else load_record(blob, _Capabilities, "capabilities of the backend")
        else:
            caps = _Capabilities(name=inner.name, supports_structured_output=inner.supports_structured_output,
                                 supports_logprobs=inner.supports_logprobs,
                                 supports_streaming=inner.supports_streaming,
                                 count_tokens=callable(getattr(inner, "count_tokens", None)))
            store.put_record(caps_key, caps.model_dump_json().encode())
        self.name = caps.name if inner is None else f"recorded({inner.name})"
        self.supports_structured_output = caps.supports_structured_output
        self.supports_logprobs = caps.supports_logprobs
        self.supports_streaming = caps.supports_streaming
        if caps.count_tokens:  # nodes look for it with getattr (SubtaskTree's context figures)
            self.count_tokens = self._count_tokens
        self._occurrences: dict[str, int] = defaultdict(int)

    @property
    def identity(self) -> str:
        return self.model or ""

    async def generate(self, requests: list[Request]) -> list[Completion]:
        self.store.flush()  # what led up to a model call is worth committing before it
        keys = [self._sample_keys(r) for r in requests]
        found = [[self.store.get_record(k) for k in ks] for ks in keys]
        missing = [i for i, blobs in enumerate(found) if any(b is None for b in blobs)]
        fresh: dict[int, Completion] = {}
        if missing:
            inner = self._inner_for(requests[missing[0]])
            completions = await inner.generate([requests[i] for i in missing])
            if len(completions) != len(missing):
                raise BackendError(f"backend {inner.name!r} returned {len(completions)} completion(s) for "
                                   f"{len(missing)} request(s)")
            for i, completion in zip(missing, completions):
                fresh[i] = completion
                self._record(keys[i], completion)
        return [fresh[i] if i in fresh else self._assemble(found[i], requests[i]) for i in range(len(requests))]

    async def stream(self, request: Request, on_text: Callable[[str], Any]) -> Completion:
        self.store.flush()
        keys = self._sample_keys(request)
        blobs = [self.store.get_record(k) for k in keys]
        if all(b is not None for b in blobs):
            completion = self._assemble(blobs, request)
            result = on_text(completion.text)
            if hasattr(result, "__await__"):
                await result
            return completion
        completion = await self._inner_for(request).stream(request, on_text)
        self._record(keys, completion)
        return completion

    def _count_tokens(self, text: str) -> int:
        key = f"tokens:{self.identity}:{hashlib.blake2b(text.encode(), digest_size=20).hexdigest()}"
        blob = self.store.get_record(key)
        if blob is not None:
            return load_record(blob, _TokenCount, "a recorded token count").tokens
        if self.inner is None:
            raise ReplayMissError(f"run {self.run_id!r} has no recorded token count for {text[:60]!r}; replay "
                                  "needs the same graph, input and prompts as the recorded run")
        count = int(self.inner.count_tokens(text))  # type: ignore[attr-defined]
        self.store.put_record(key, _TokenCount(tokens=count).model_dump_json().encode())
        return count

    def count_prompt_tokens(self, request: Request) -> int:
        """The inner backend's count (exact where it tokenizes), recorded: a replay gets the same number.

        Nodes given a token ``budget=`` size their requests by it, so a replay
        that counted differently would send requests the record does not hold.
        Unrecorded on replay: the byte bound.
        """
        prompt = request.prompt if isinstance(request.prompt, str) else [m.model_dump() for m in request.prompt]
        key = f"prompt-tokens:{self.identity}:{hashlib.blake2b(canonical(prompt), digest_size=20).hexdigest()}"
        blob = self.store.get_record(key)
        if blob is not None:
            return load_record(blob, _TokenCount, "a recorded prompt token count").tokens
        if self.inner is None:
            return super().count_prompt_tokens(request)
        count = int(self.inner.count_prompt_tokens(request))
        self.store.put_record(key, _TokenCount(tokens=count).model_dump_json().encode())
        return count

    async def start(self) -> None:
        if self.inner is not None:
            await self.inner.start()

    def _inner_for(self, request: Request) -> Backend:
        if self.inner is None:
            raise ReplayMissError(f"run {self.run_id!r} has no recorded response for a request from node "
                                  f"{request.tag!r} (prompt starts {request.prompt_text()[:60]!r}); replay needs "
                                  "the same graph, input and prompts as the recorded run")
        return self.inner

    def _sample_keys(self, request: Request) -> list[str]:
        params = request.params
        prompt = request.prompt if isinstance(request.prompt, str) else [m.model_dump() for m in request.prompt]
        body = canonical({"model": self.identity, "node": request.tag, "prompt": prompt,
                          "params": params.model_dump(exclude={"n"}, mode="json", by_alias=True)})
        base = "llm:" + hashlib.blake2b(body, digest_size=20).hexdigest()
        start = self._occurrences[base]
        self._occurrences[base] = start + params.n
        return [f"{base}:{start + i}" for i in range(params.n)]

    def _record(self, keys: list[str], completion: Completion) -> None:
        for key, sample in zip(keys, completion.samples):
            record = _SampleRecord(sample=sample, prompt_tokens=max(completion.prompt_tokens, 0),
                                   cached_tokens=max(completion.cached_tokens, 0), model=completion.model)
            self.store.put_record(key, record.model_dump_json().encode())

    def _assemble(self, blobs: list[bytes | str | None], request: Request) -> Completion:
        what = f"a recorded response for node {request.tag!r}"
        records = [load_record(b, _SampleRecord, what) for b in blobs if b is not None]
        first = records[0]
        return Completion(samples=tuple(r.sample for r in records), prompt_tokens=first.prompt_tokens,
                          cached_tokens=first.cached_tokens, model=first.model)
