"""The one JSON extractor for model output: finding a JSON value in a reply, loading it within bounds,
and saying in a few short lines what in it did not fit.

Every consumer of model-written JSON (structured replies, plans, streamed plan
steps, constraint problems, proposals, tool arguments) goes through here. Model output is
hostile input, so everything is linear in the text: :class:`JsonScanner`
looks at each character once (string-aware, no regex, no restart at every
brace), :func:`find_json` is one scan, and :func:`load_json` refuses nesting
deeper than :data:`MAX_JSON_DEPTH` (Python's decoder would recurse to its stack
limit). A fence-stripping regex such as ``\\s*```$`` was quadratic in a run of
spaces: a 1,000,000-space reply held the event loop for minutes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

__all__ = ["MAX_JSON_DEPTH", "JsonScanner", "find_json", "load_json", "problem_lines", "clip"]

MAX_JSON_DEPTH = 32
"""Deepest nesting of JSON read from a model (a plan is 4 levels deep before its arguments' own)."""

_CLOSERS = {"{": "}", "[": "]"}


class JsonScanner:
    """Reads JSON text as it arrives and hands back the containers it is asked to keep.

    ``keep(depth, opener)`` is asked at each opening bracket in ``brackets``
    outside strings (``depth``: how many containers are open around it); the
    text of a container it accepts is returned by :meth:`feed` once its closing
    bracket arrives. One kept container is read at a time (``keep`` is not
    asked inside it), and only its text is held. Each character is looked at
    once, however the text is split into chunks.
    """

    def __init__(self, keep: Callable[[int, str], bool], brackets: str = "{["):
        self._keep = keep
        self._openers = brackets
        self._closers = "".join(_CLOSERS[b] for b in brackets)
        self.depth = 0  # open containers
        self._kept_depth: int | None = None  # depth of the kept container being read
        self._kept: list[str] = []  # its text from earlier chunks
        self._in_string = self._escape = False

    def feed(self, chunk: str, most: int | None = None) -> list[str]:
        """Read ``chunk``; return the text of every kept container it completes (stop after ``most`` of them)."""
        done: list[str] = []
        start = 0
        for i, ch in enumerate(chunk):
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif ch == "\\":
                    self._escape = True
                elif ch == '"':
                    self._in_string = False
            elif ch == '"':
                self._in_string = True
            elif ch in self._openers:
                if self._kept_depth is None and self._keep(self.depth, ch):
                    self._kept_depth, self._kept, start = self.depth, [], i
                self.depth += 1
            elif ch in self._closers and self.depth:
                self.depth -= 1
                if self.depth == self._kept_depth:
                    done.append("".join([*self._kept, chunk[start: i + 1]]))
                    self._kept_depth = None
                    if most is not None and len(done) >= most:
                        return done
        if self._kept_depth is not None:
            self._kept.append(chunk[start:])
        return done


def find_json(text: str, brackets: str = "{[") -> str | None:
    """The text of the first complete JSON object (``{``) or array (``[``, if in ``brackets``) in ``text``.

    Prose and code fences around it are skipped; inside a fenced block
    (```json ... ```) the block is read first. When no value closes, the text
    from the first opening bracket to the end comes back, so that the decoder
    says what is wrong with it (a reply cut off mid-object); None when ``text``
    has no opening bracket at all.
    """
    body = _fenced(text, brackets)
    found = JsonScanner(lambda depth, ch: depth == 0, brackets).feed(body, most=1)
    if found:
        return found[0]
    starts = [i for i in (body.find(b) for b in brackets) if i >= 0]
    return body[min(starts):] if starts else None


def _fenced(text: str, brackets: str) -> str:
    """The body of the first ```/```json block when it holds an opening bracket; else ``text``."""
    start = text.find("```")
    if start < 0:
        return text
    start += 7 if text.startswith("```json", start) else 3
    end = text.find("```", start)
    body = text[start:] if end < 0 else text[start:end]
    return body if any(b in body for b in brackets) else text


def load_json(text: str) -> Any:
    """JSON from model text.

    Raise ValueError when it is not JSON or nests deeper than :data:`MAX_JSON_DEPTH`
    (the decoder itself would recurse until Python's stack limit).
    """
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError(f"it nests deeper than {MAX_JSON_DEPTH} levels") from None
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"it nests deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, (dict, list)):
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return data


def problem_lines(error: ValidationError, whole: str = "object", most: int = 8, show_input: bool = False) -> list[str]:
    """What did not fit, one short line per problem (``where: message``), at most ``most`` lines.

    The lines go back to the model on a re-ask or into a tool's failure, so
    they are bounded whatever it wrote: locations and messages are clipped,
    ``show_input`` quotes the offending value clipped too, and a last line
    counts the problems left out. ``whole`` names the top level.
    """
    errors = error.errors()
    lines = []
    for e in errors[:most]:
        where = clip(".".join(str(part) for part in e["loc"]), 60) or whole
        got = f" (got {clip(repr(e['input']))})" if show_input and e["type"] != "missing" else ""
        lines.append(f"{where}: {clip(e['msg'], 160)}{got}")
    if len(errors) > most:
        lines.append(f"and {len(errors) - most} more")
    return lines


def clip(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters (model-written names and values can be megabytes long)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
