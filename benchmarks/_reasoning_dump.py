"""``benchmarks/reasoning.py --dump PATH``: every formulation request, reply and verdict as JSON lines, to read.

:class:`Recorder` wraps the backend and writes one line per formulation
request (those decoded under a grammar or a JSON schema with ``variables``:
what ``Formulate`` sends): the last user turn (the puzzle, or the repair's
finding), and each sample's text, finish reason and token count. The
formulation arms add one ``item`` line per puzzle: its set, the answer
wanted, the answer found, and each round's status and finding.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from plait.executors import Backend, Completion, Grammar, JsonSchema, Request

__all__ = ["Recorder"]


class Recorder(Backend):
    """Passes every call to ``inner``; formulation requests and replies go to ``path`` as JSON lines."""

    def __init__(self, inner: Backend, path: str):
        self.inner, self.path = inner, path
        self.name, self.model = f"recorded({inner.name})", inner.model
        self.supports_structured_output = inner.supports_structured_output
        self.supports_logprobs = inner.supports_logprobs
        self.supports_streaming = inner.supports_streaming
        self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115  # closed by aclose

    @property
    def identity(self) -> str:
        return self.inner.identity

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()

    async def generate(self, requests: list[Request]) -> list[Completion]:
        completions = await self.inner.generate(requests)
        for request, completion in zip(requests, completions):
            constraint = request.params.constraint
            if isinstance(constraint, Grammar) or (isinstance(constraint, JsonSchema)
                                                   and "variables" in json.dumps(constraint.schema_)[:2000]):
                prompt = request.prompt if isinstance(request.prompt, str) else request.prompt[-1].content
                self.write({"kind": "request", "prompt_tail": prompt[-1500:], "temperature":
                            request.params.temperature, "samples": [
                                {"text": s.text, "finish": s.finish_reason,
                                 "tokens": s.completion_tokens} for s in completion.samples]})
        return completions

    async def stream(self, request: Request, on_text: Callable[[str], Any]) -> Completion:
        return await self.inner.stream(request, on_text)

    def count_prompt_tokens(self, request: Request) -> int:
        return self.inner.count_prompt_tokens(request)

    async def start(self) -> None:
        await self.inner.start()

    async def aclose(self) -> None:
        await self.inner.aclose()
        self._file.close()
