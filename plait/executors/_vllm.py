"""The in-process vLLM backend: plait requests on vLLM's async engine (``AsyncLLM``).

Every request of every concurrent ``generate`` call goes to one engine, which
batches them continuously; nothing here serializes requests. A request with
``n=k`` is one engine request (the prompt is prefilled once, k samples are
drawn). Automatic prefix caching is on, and each completion reports how many
prompt tokens the cache served (vLLM's ``num_cached_tokens``).

Prompts are tokenized here, with the model's own tokenizer and chat template,
so that a prompt longer than the context window and an invalid constraint are
reported before any request of the batch is sent.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import anyio

from plait.errors import BackendError
from plait.executors._base import Backend, Completion, FinishReason, Request, Sample, TokenLogprob
from plait.executors._constraints import check_request_constraint, vllm_structured_fields
from plait.executors._vllm_engine import SharedEngine, acquire_engine, cpu_engine_defaults, release_engine

__all__ = ["VLLMBackend"]

DEFAULT_ENGINE_OPTIONS: dict[str, Any] = {
    "enforce_eager": True,  # torch.compile costs a minute per start on CPU for no gain at this size
    "enable_prefix_caching": True,
    "disable_log_stats": True,
    # Compact JSON: where whitespace was allowed, small models wrote ~2,000 spaces after a key, or newline-indented
    # JSON, until max_tokens. vLLM 0.32 reads this only from the engine's config (a request's own field is ignored), and
    # only for a named backend ("auto" refuses it); plait checks constraints with xgrammar already.
    "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
}

_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length", "abort": "abort"}


class VLLMBackend(Backend):
    """Serve requests from a vLLM engine running in this process.

    ``model`` is a registry name (pulled on first use), a local Hugging Face
    folder, or a hub id. ``timeout`` bounds each ``generate`` call (seconds);
    ``max_model_len`` caps the context window; ``engine_options`` go to
    vLLM's ``AsyncEngineArgs`` on top of :data:`DEFAULT_ENGINE_OPTIONS` and,
    on vLLM's CPU build, of ``cpu_engine_defaults()`` (float32 where the CPU
    lacks AVX-512, KV block size 32).
    Backends with the same model and options share one engine.
    """

    name = "vllm"
    supports_structured_output = True
    supports_logprobs = True
    supports_streaming = True

    def __init__(
        self,
        model: str = "smollm2-135m",
        *,
        timeout: float | None = None,
        max_model_len: int | None = None,
        engine_options: Mapping[str, Any] | None = None,
    ):
        self.model: str = model
        self.timeout = timeout
        options = {**DEFAULT_ENGINE_OPTIONS, **(engine_options or {})}
        if max_model_len is not None:
            options["max_model_len"] = max_model_len
        self._options = options
        self._xgrammar_only = _structured_backend(options) == "xgrammar"
        self._shared: SharedEngine | None = None
        self._start_lock = anyio.Lock()

    @property
    def max_model_len(self) -> int:
        """The context window in tokens (prompt plus generated), once started."""
        return self._require().max_model_len

    async def start(self) -> None:
        async with self._start_lock:
            if self._shared is None:
                self._shared = await anyio.to_thread.run_sync(self._acquire)

    def _acquire(self) -> SharedEngine:
        from plait.executors._models import resolve_model

        return acquire_engine(resolve_model(self.model), {**cpu_engine_defaults(), **self._options})

    async def aclose(self) -> None:
        shared, self._shared = self._shared, None
        if shared is not None:
            await anyio.to_thread.run_sync(release_engine, shared)

    async def reset_prefix_cache(self) -> None:
        """Empty the engine's prefix cache (benchmarks use it to measure each arm from cold)."""
        await self.start()
        shared = self._require()

        async def reset() -> None:
            await shared.engine.reset_prefix_cache()

        await asyncio.wrap_future(shared.portal.start_task_soon(reset))

    def _require(self) -> SharedEngine:
        if self._shared is None:
            raise BackendError("VLLMBackend is not started; use `async with VLLMBackend(...) as backend:`")
        return self._shared

    def count_prompt_tokens(self, request: Request) -> int:
        """Exact once the engine is started (its tokenizer and chat template); the generic bound before."""
        if self._shared is None:
            return super().count_prompt_tokens(request)
        return len(self._tokenize(self._shared, request, 0))

    async def generate(self, requests: list[Request]) -> list[Completion]:
        for i, request in enumerate(requests):
            check_request_constraint(request, i, xgrammar_only=self._xgrammar_only)  # before the engine starts
        await self.start()
        shared = self._require()
        prepared = [self._prepare(shared, request, i) for i, request in enumerate(requests)]
        futures = [
            shared.portal.start_task_soon(_run_one, shared.engine, prompt, params, f"plait-{uuid.uuid4().hex}")
            for prompt, params in prepared
        ]
        try:
            with anyio.fail_after(self.timeout):
                outputs = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        except TimeoutError:
            raise BackendError(
                f"vLLM did not finish {len(requests)} request(s) within the timeout of {self.timeout:g}s"
            ) from None
        except (BackendError, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise BackendError(f"vLLM failed to serve the request(s): {type(exc).__name__}: {exc}") from exc
        finally:
            for future in futures:
                future.cancel()  # no-op when done; aborts the engine request when the caller gave up
        return [self._completion(out) for out in outputs]

    async def stream(self, request: Request, on_text: Callable[[str], Any]) -> Completion:
        """Serve one request, handing the first sample's new text to ``on_text`` after each engine step."""
        check_request_constraint(request, xgrammar_only=self._xgrammar_only)
        await self.start()
        shared = self._require()
        prompt, params = self._prepare(shared, request, 0, streaming=True)
        loop = asyncio.get_running_loop()
        updates: asyncio.Queue = asyncio.Queue()

        def push(output: Any) -> None:  # runs on the engine's loop
            loop.call_soon_threadsafe(updates.put_nowait, output)

        future = shared.portal.start_task_soon(
            _run_streaming, shared.engine, prompt, params, f"plait-{uuid.uuid4().hex}", push
        )
        sent = 0
        try:
            with anyio.fail_after(self.timeout):
                while (output := await updates.get()) is not None:
                    text = output.outputs[0].text if output.outputs else ""
                    if len(text) > sent:
                        result = on_text(text[sent:])
                        sent = len(text)
                        if inspect.isawaitable(result):
                            await result
                final = await asyncio.wrap_future(future)
        except TimeoutError:
            raise BackendError(f"vLLM did not finish the request within the timeout of {self.timeout:g}s") from None
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(f"vLLM failed to serve the request: {type(exc).__name__}: {exc}") from exc
        finally:
            future.cancel()
        return self._completion(final)

    def _prepare(
        self, shared: SharedEngine, request: Request, index: int, *, streaming: bool = False
    ) -> tuple[dict, Any]:
        token_ids = self._tokenize(shared, request, index)
        limit = shared.max_model_len
        if len(token_ids) >= limit:
            raise BackendError(
                f"request {index}{_tag(request)}: the prompt has {len(token_ids)} tokens but model "
                f"{self.model!r} has a context window of {limit} tokens; shorten the prompt"
            )
        room = limit - len(token_ids)
        return {"prompt_token_ids": token_ids}, self._sampling_params(request, room, streaming)

    @staticmethod
    def _tokenize(shared: SharedEngine, request: Request, index: int) -> list[int]:
        tokenizer = shared.tokenizer
        if isinstance(request.prompt, str):
            return list(tokenizer(request.prompt)["input_ids"])
        if not getattr(tokenizer, "chat_template", None):
            raise BackendError(
                f"request {index}{_tag(request)}: the model has no chat template; send a text prompt instead"
            )
        messages = [{"role": m.role, "content": m.content} for m in request.prompt]
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    @staticmethod
    def _sampling_params(request: Request, room: int, streaming: bool = False) -> Any:
        from vllm import SamplingParams as VSamplingParams
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

        p = request.params
        structured = vllm_structured_fields(request)
        return VSamplingParams(
            n=p.n,
            temperature=p.temperature,
            top_p=p.top_p,
            max_tokens=min(p.max_tokens, room),
            min_tokens=min(p.min_tokens, p.max_tokens, room),
            stop=list(p.stop) or None,
            seed=p.seed,
            logprobs=p.logprobs,
            structured_outputs=StructuredOutputsParams(**structured) if structured else None,
            output_kind=RequestOutputKind.CUMULATIVE if streaming else RequestOutputKind.FINAL_ONLY,
        )

    def _completion(self, out: Any) -> Completion:
        samples = tuple(_sample(o) for o in sorted(out.outputs, key=lambda o: o.index))
        return Completion(
            samples=samples,
            prompt_tokens=len(out.prompt_token_ids or ()),
            cached_tokens=out.num_cached_tokens or 0,
            model=self.model,
        )


async def _run_one(engine: Any, prompt: dict, params: Any, request_id: str) -> Any:
    """Runs on the engine's loop: drive one request to its final output."""
    final = None
    async for output in engine.generate(prompt, params, request_id):
        final = output
    return final


async def _run_streaming(engine: Any, prompt: dict, params: Any, request_id: str, push: Callable) -> Any:
    """Runs on the engine's loop: push every cumulative output, then ``None``; return the final one."""
    final = None
    try:
        async for output in engine.generate(prompt, params, request_id):
            final = output
            push(output)
    finally:
        push(None)
    return final


def _sample(output: Any) -> Sample:
    logprobs = None
    if output.logprobs is not None:
        logprobs = tuple(
            _token_logprob(token_id, position) for token_id, position in zip(output.token_ids, output.logprobs)
        )
    return Sample(
        text=output.text,
        finish_reason=_FINISH.get(output.finish_reason, "stop"),
        completion_tokens=len(output.token_ids),
        cumulative_logprob=output.cumulative_logprob,
        logprobs=logprobs,
    )


def _token_logprob(token_id: int, position: Mapping[int, Any]) -> TokenLogprob:
    chosen = position[token_id]
    top = {entry.decoded_token or "": entry.logprob for entry in position.values()}
    return TokenLogprob(token=chosen.decoded_token or "", logprob=chosen.logprob, top=top)


def _structured_backend(options: Mapping[str, Any]) -> str | None:
    config = options.get("structured_outputs_config")
    return config.get("backend") if isinstance(config, Mapping) else getattr(config, "backend", None)


def _tag(request: Request) -> str:
    return f" ({request.tag})" if request.tag else ""
