"""Building a backend from one string, as ``plait run --model`` takes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plait.executors._base import Backend
from plait.executors._models import MODELS, resolve_model

__all__ = ["backend_for"]


def backend_for(model: str, **options: Any) -> Backend:
    """A backend for ``model``: an ``http(s)://`` URL gives an :class:`OpenAIBackend`, a comma-separated
    list of URLs an :class:`EndpointPool` over those servers; a registry name, local Hugging Face folder
    or hub id gives an in-process :class:`VLLMBackend`.

    Unknown names and bad URL lists fail here, before anything starts; ``options`` go to the backend's constructor.
    """
    if "," in model:
        from plait.executors._pool import EndpointPool

        return EndpointPool(model, **options)
    if model.startswith(("http://", "https://")):
        from plait.executors._openai import OpenAIBackend

        return OpenAIBackend(model, **options)
    if model not in MODELS and not Path(model).expanduser().is_dir():
        resolve_model(model, pull=False)  # raises ModelError for a name that is neither folder nor hub id
    from plait.executors._vllm import VLLMBackend

    return VLLMBackend(model, **options)
