"""When a loop has reached a fixed point: the rules behind ``graph.loop(until="fixed_point")`` and ``halt=``.

A rule is a callable ``rule(previous, current) -> bool``: ``previous`` is the
value the loop's pass started from (what ``back_to`` received on the loop's
``param``), ``current`` what the loop's source produced at the end of the pass.
True stops the loop: the pass changed nothing that matters.

Text similarity is token Jaccard (shared distinct tokens over all distinct
tokens), not difflib's ratio: difflib is quadratic in the text's length, and the
text is model output, so a reply of a few hundred kilobytes would stall the
loop's decision; the token sets cost one linear scan.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from plait.errors import ConfigError

__all__ = ["HaltRule", "halting_rule", "token_jaccard"]

HaltRule = Callable[[Any, Any], bool]

_TOKEN = re.compile(r"\w+|[^\w\s]")  # words and single punctuation marks; no backtracking


def token_jaccard(a: str, b: str) -> float:
    """|A ∩ B| / |A ∪ B| over the distinct lower-cased tokens (words, punctuation marks) of two texts; 1.0 for two
    texts without tokens. Order and repetition do not count: "a b" and "b a a" score 1.0."""
    x, y = set(_TOKEN.findall(a.lower())), set(_TOKEN.findall(b.lower()))
    if not x and not y:
        return 1.0
    return len(x & y) / len(x | y)


class _Unchanged:
    """Fixed point by equality: ``normalize(previous) == normalize(current)``."""

    def __init__(self, normalize: Callable[[Any], Any] | None):
        self.normalize = normalize

    def __call__(self, previous: Any, current: Any) -> bool:
        if self.normalize is not None:
            previous, current = self.normalize(previous), self.normalize(current)
        return bool(previous == current)

    def __repr__(self) -> str:
        return "fixed point" if self.normalize is None else "fixed point (normalized)"


class _Similar(_Unchanged):
    """Fixed point by text similarity: token Jaccard of the (normalized) values as text >= ``threshold``."""

    def __init__(self, normalize: Callable[[Any], Any] | None, threshold: float):
        super().__init__(normalize)
        self.threshold = threshold

    def __call__(self, previous: Any, current: Any) -> bool:
        if self.normalize is not None:
            previous, current = self.normalize(previous), self.normalize(current)
        return token_jaccard(_text(previous), _text(current)) >= self.threshold

    def __repr__(self) -> str:
        return f"fixed point (similarity >= {self.threshold})"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def halting_rule(where: str, until: str | None, halt: HaltRule | None, normalize: Callable[[Any], Any] | None,
                 similarity: float | None) -> HaltRule | None:
    """The rule for these ``graph.loop`` options (None: the loop halts only by its exit route or its limit).

    ``where`` names the loop in the ConfigError a bad combination raises.
    """
    if halt is not None:
        if until is not None or normalize is not None or similarity is not None:
            raise ConfigError(f"{where}: halt= is a whole rule (it compares previous and current itself); "
                              "drop until=, normalize= and similarity=, or drop halt=")
        if not callable(halt):
            raise ConfigError(f"{where}: halt= must be a callable (previous, current) -> bool, "
                              f"got {type(halt).__name__}")
        return halt
    if until is None:
        if normalize is not None or similarity is not None:
            raise ConfigError(f"{where}: normalize= and similarity= only apply with until='fixed_point'; add it")
        return None
    if until != "fixed_point":
        raise ConfigError(f"{where}: until must be 'fixed_point' (or None), got {until!r}")
    if normalize is not None and not callable(normalize):
        raise ConfigError(f"{where}: normalize= must be a callable value -> comparable value, "
                          f"got {type(normalize).__name__}")
    if similarity is None:
        return _Unchanged(normalize)
    if isinstance(similarity, bool) or not isinstance(similarity, (int, float)) or not 0 < similarity <= 1:
        raise ConfigError(f"{where}: similarity= is a token-Jaccard threshold in (0, 1], got {similarity!r}")
    return _Similar(normalize, float(similarity))
