"""Token spans for the scripted backends: how a test double counts, cuts and streams text.

A tokenizer here is any ``text -> [(start, end), ...]`` function giving the
character span of each token. The default, :func:`word_spans`, treats words
and punctuation marks as tokens: no download, but JSON (many punctuation
marks) counts high and prose counts low. :func:`hf_tokenizer` gives a real
model's spans, so a scripted run's token counts, token-paced latency and
``max_tokens`` cuts match what that model would see.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from plait.errors import ConfigError, ModelError

__all__ = ["Tokenizer", "word_spans", "hf_tokenizer", "as_tokenizer"]

Tokenizer = Callable[[str], Sequence[tuple[int, int]]]

_WORD = re.compile(r"\w+|[^\w\s]")


def word_spans(text: str) -> list[tuple[int, int]]:
    """Words and punctuation marks as tokens (plait's approximate count)."""
    return [m.span() for m in _WORD.finditer(text)]


def hf_tokenizer(source: str | Path) -> Tokenizer:
    """Spans from a Hugging Face fast tokenizer: a ``tokenizer.json`` file, a model folder, or a registry name.

    Needs the ``tokenizers`` package (installed with vLLM or transformers).
    A registry name (``smollm2-135m``) must be pulled first.
    """
    path = Path(source).expanduser()
    if not path.exists():
        from plait.executors._models import MODELS, model_path

        if str(source) not in MODELS:
            raise ModelError(f"tokenizer source {str(source)!r} is neither a file, a folder nor a registry model "
                             f"({', '.join(MODELS)})")
        path = model_path(str(source))
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise ModelError(f"no tokenizer.json at {path}; pass a fast tokenizer's tokenizer.json or its model folder")
    try:
        from tokenizers import Tokenizer as _HFTokenizer
    except ImportError:
        raise ModelError("hf_tokenizer needs the 'tokenizers' package: pip install tokenizers") from None
    hf = _HFTokenizer.from_file(str(path))

    def spans(text: str) -> list[tuple[int, int]]:
        return list(hf.encode(text, add_special_tokens=False).offsets)

    return spans


def as_tokenizer(tokenizer: Tokenizer | str | Path | None) -> Tokenizer:
    """``None`` -> :func:`word_spans`; a path or registry name -> :func:`hf_tokenizer`; a function as is."""
    if tokenizer is None:
        return word_spans
    if isinstance(tokenizer, (str, Path)):
        return hf_tokenizer(tokenizer)
    if not callable(tokenizer):
        raise ConfigError(f"tokenizer must be a function text -> spans, a path or a model name, "
                          f"got {type(tokenizer).__name__}")
    return tokenizer
