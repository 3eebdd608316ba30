"""Small helpers that keep error messages grammatical."""

from __future__ import annotations

from typing import Any

__all__ = ["a_type", "with_article"]


def with_article(noun: str) -> str:
    """``noun`` after "a" or "an", by its first letter: "a str", "an int", "an OrderedDict"."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def a_type(value: Any) -> str:
    """The type of ``value`` with its article, for messages: "an int", "a list"."""
    return with_article(type(value).__name__)
