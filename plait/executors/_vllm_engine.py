"""One vLLM engine per process, shared by every :class:`VLLMBackend` that asks for the same model.

vLLM's ``AsyncLLM`` binds its output loop and IPC sockets to the asyncio event
loop it first runs in, while plait code may call ``anyio.run`` many times in
one process (each test, each CLI call). So the engine lives on an event loop
of its own, hosted by an anyio :class:`~anyio.from_thread.BlockingPortal`;
callers on any loop submit requests through the portal. Starting an engine
takes tens of seconds on a CPU, so engines are shared by model and settings
and reference-counted; the last backend to close shuts its engine down.

An :class:`~plait.executors._engine_guard.EngineGuard` watchdog stops the
engine's processes if this process is killed before it can shut them down.

On vLLM's CPU build two kinds of defaults apply, each only where the user has
not set the value: environment variables (:data:`CPU_ENV`) and engine options
(:func:`cpu_engine_defaults`, measured on a 2-core AVX2 machine).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any

from plait.errors import BackendError
from plait.executors._engine_guard import EngineGuard, child_pids

__all__ = ["SharedEngine", "acquire_engine", "release_engine", "CPU_ENV", "cpu_engine_defaults"]

log = logging.getLogger("plait.vllm")

CPU_ENV = {
    # Use both cores: by default vLLM keeps one core idle for itself (106 vs 175 tok/s here).
    "VLLM_CPU_OMP_THREADS_BIND": "0-1",
    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
    "VLLM_CPU_KVCACHE_SPACE": "2",
    "HF_HUB_OFFLINE": "1",
}
"""Environment defaults for vLLM's CPU build; a value already set in the environment wins."""

CPU_BLOCK_SIZE = 32
"""KV-cache block size on CPU (vLLM's default there is 128; its CPU attention needs a multiple of 32).

Prefix caching shares whole blocks only, so every prompt recomputes its last
partial block, and so does each of the ``n`` samples of one request. With 128,
an ``n=8`` request re-prefilled up to 127 tail tokens 8 times; with 32 it is at
most 31. Measured on smollm2-135m, fanout benchmark, width 8 over width 1:
3.3x with 128, 1.5x with 32.
"""


@dataclass
class SharedEngine:
    """An engine, the loop it runs on, its tokenizer and how many backends use it."""

    key: tuple
    portal: Any
    portal_cm: Any
    engine: Any
    tokenizer: Any
    max_model_len: int
    refs: int = 0
    closed: bool = field(default=False)
    guard: EngineGuard | None = None


_ENGINES: dict[tuple, SharedEngine] = {}
_LOCK = threading.Lock()


def _cpu_build() -> bool:
    try:
        from importlib.metadata import distribution

        distribution("vllm-cpu")
        return True
    except Exception:
        return False


def cpu_engine_defaults() -> dict[str, Any]:
    """Engine options for vLLM's CPU build on this CPU; empty for other builds.

    Without AVX-512, oneDNN cannot build bf16 matmuls (vLLM logs "Failed to
    create oneDNN linear, fallback to torch linear") and bf16 runs on slow
    emulated kernels; float32 was 3x faster batched and 5x faster at prefill
    on a 2-core AVX2 EPYC (smollm2-135m: 16 concurrent 47 -> 153 tok/s,
    1,247-token prefill 17 s -> 3.6 s).

    Chunked prefill is off: when a prompt's prefill is split over engine
    steps, vLLM 0.32 rewinds the random generator of a seeded request with
    ``Generator.set_offset``, which CPU generators lack ("CPU Generator does
    not use offset"), and the engine dies. Any seeded request arriving with
    more prompt tokens in flight than one step takes (4,096) triggered it,
    e.g. 12 distinct 750-token prompts; unchunked, they run. Callers merge
    their own options over these.
    """
    if not _cpu_build():
        return {}
    defaults: dict[str, Any] = {"block_size": CPU_BLOCK_SIZE, "enable_chunked_prefill": False}
    if not _has_avx512():
        defaults["dtype"] = "float32"
    return defaults


def _has_avx512() -> bool:
    try:
        import torch

        return "AVX512" in torch.backends.cpu.get_cpu_capability()
    except Exception:
        return False


def acquire_engine(model: str, engine_kwargs: dict[str, Any]) -> SharedEngine:
    """Return the shared engine for ``model`` and settings, starting it if needed (blocking)."""
    key = (model, json.dumps(engine_kwargs, sort_keys=True, default=repr))  # options may hold dicts
    with _LOCK:
        shared = _ENGINES.get(key)
        if shared is None:
            shared = _start(model, engine_kwargs, key)
            _ENGINES[key] = shared
        shared.refs += 1
        return shared


def release_engine(shared: SharedEngine) -> None:
    """Drop one reference; shut the engine down when none is left (blocking)."""
    with _LOCK:
        shared.refs -= 1
        if shared.refs > 0 or shared.closed:
            return
        _ENGINES.pop(shared.key, None)
        _shutdown(shared)


def _start(model: str, engine_kwargs: dict[str, Any], key: tuple) -> SharedEngine:
    if _cpu_build():
        for name, value in CPU_ENV.items():
            os.environ.setdefault(name, value)
    try:
        from anyio.from_thread import start_blocking_portal
        from transformers import AutoTokenizer
        from vllm import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM
    except ImportError as exc:
        raise BackendError(
            f"the in-process vLLM backend needs vLLM ({exc}); install it with `pip install 'plait[vllm]'` "
            "(GPU) or `make venv` (CPU build for this project)"
        ) from exc

    args = AsyncEngineArgs(model=model, **_engine_configs(engine_kwargs))
    portal_cm = start_blocking_portal("asyncio")
    portal = portal_cm.__enter__()

    async def create() -> Any:
        return AsyncLLM.from_engine_args(args)

    before = child_pids()
    try:
        log.info("starting vLLM engine for %s", model)
        engine = portal.call(create)
        tokenizer = AutoTokenizer.from_pretrained(model)
    except Exception as exc:
        portal_cm.__exit__(None, None, None)
        raise BackendError(f"vLLM could not start model {model!r}: {type(exc).__name__}: {exc}") from exc
    max_len = engine.model_config.max_model_len
    guard = EngineGuard(child_pids() - before)  # stops the engine core if this process is killed
    return SharedEngine(key, portal, portal_cm, engine, tokenizer, max_len, guard=guard)


def _engine_configs(engine_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Options with ``structured_outputs_config`` given as a dict built into vLLM's config object.

    ``AsyncEngineArgs`` converts some config dicts itself, but not this one.
    """
    config = engine_kwargs.get("structured_outputs_config")
    if not isinstance(config, dict):
        return engine_kwargs
    from vllm.config import StructuredOutputsConfig

    return {**engine_kwargs, "structured_outputs_config": StructuredOutputsConfig(**config)}


def _shutdown(shared: SharedEngine) -> None:
    shared.closed = True
    log.info("shutting down vLLM engine %s", shared.key[0])
    engine, shared.engine = shared.engine, None

    async def stop() -> None:
        engine.shutdown()  # on the engine's own loop, so its output task ends quietly
        # AsyncLLM.__del__ calls shutdown again, possibly at interpreter teardown when its
        # module globals are gone; the engine is already down, so make that call a no-op.
        engine.shutdown = lambda *args, **kwargs: None

    with contextlib.suppress(Exception):
        shared.portal.call(stop)
    with contextlib.suppress(Exception):
        shared.portal_cm.__exit__(None, None, None)
    if shared.guard is not None:
        shared.guard.release()


@atexit.register
def _shutdown_all() -> None:
    with _LOCK:
        for shared in list(_ENGINES.values()):
            _shutdown(shared)
        _ENGINES.clear()
