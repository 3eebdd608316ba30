"""Markup helpers shared by the reasoning panels: escaping, clipping, and reading untrusted event fields.

A trace's values come from the model (answers, tool arguments, questions) or
from a file anyone can edit, so every value is clipped, then escaped with
``html.escape`` (quotes too: values also land in attributes), and every field
is read with a type check: a field of the wrong type renders as empty instead
of failing the page.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

__all__ = ["esc", "clip", "compact", "as_dict", "as_list", "as_int", "as_float", "as_str", "fmt", "more",
           "MAX_ITEMS", "CLIP"]

CLIP = 160
"""Longest value shown in full; longer ones are cut with an ellipsis (the full trace keeps them)."""
MAX_ITEMS = 200
"""Most panels of one kind, bars of one vote, steps of one plan, rows of one table: the page stays small."""


def clip(text: str, limit: int = CLIP) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def esc(value: Any, limit: int = CLIP) -> str:
    """``value`` as clipped, escaped text, safe in element content and in quoted attributes."""
    text = value if isinstance(value, str) else compact(value, limit)
    return html.escape(clip(text, limit), quote=True)


def compact(value: Any, limit: int = CLIP) -> str:
    """Compact one-line JSON for containers, plain text otherwise (clipped to ``limit``)."""
    if isinstance(value, str):
        return clip(value, limit)
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    except (TypeError, ValueError, RecursionError):  # circular, too deep, or unserialisable: a placeholder
        text = f"<{type(value).__name__}>"
    return clip(text, limit)


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    number = float(value)
    return number if math.isfinite(number) else 0.0


def fmt(number: float) -> str:
    """A weight or count as a person reads it: 3 rather than 3.0, 0.667 rather than 0.6666666."""
    return f"{number:.3g}" if number != int(number) else str(int(number))


def more(total: int, shown: int, what: str) -> str:
    """The note under a capped list: how many were left out (nothing when none were)."""
    return f"<p class='plait-more'>{total - shown} more {what} not shown.</p>" if total > shown else ""
