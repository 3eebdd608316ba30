"""Output parsers: turn a model's text into a typed value.

Each parser knows the structured-output constraint that makes a model emit
text it can parse (a JSON schema for a pydantic model, a regex, a choice).
Nodes send that constraint when the backend supports structured outputs
(``backend.supports_structured_output``) and the parser's ``constrain`` flag
is on; otherwise they rely on the instructions and on re-asking.

Parsers raise :class:`~plait.ParseError` (with the raw text) when the text
does not fit; the message is written to be shown back to the model.
"""

from __future__ import annotations

import json
import re
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from plait._json import clip, find_json, problem_lines
from plait.errors import ConfigError, ParseError
from plait.executors._base import Choice, Constraint, JsonSchema, Regex

__all__ = ["Parser", "TextParser", "RegexParser", "NumberParser", "ChoiceParser", "ModelParser"]

T = TypeVar("T")


class Parser(Generic[T]):
    """Base class: ``parse(text) -> T``, plus the constraint and format hint to send.

    ``constrain``: send :meth:`constraint` with the request when the backend
    supports structured outputs. Turn it off when the model should reason in
    free text and the parser only extracts the answer from the end of it.
    """

    output_type: Any = str

    def __init__(self, *, constrain: bool = True):
        self.constrain = constrain

    def parse(self, text: str) -> T:
        raise NotImplementedError

    def constraint(self) -> Constraint | None:
        """The structured-output constraint matching this parser (None: free text)."""
        return None

    def instructions(self) -> str:
        """A one-line description of the expected format, shown to the model on re-ask."""
        return ""

    def _fail(self, message: str, text: str) -> ParseError:
        return ParseError(f"{message}; got {clip(text, 160)!r}", raw=text)


class TextParser(Parser[str]):
    """The text itself, stripped. Fails only on empty output (unless ``allow_empty``)."""

    def __init__(self, *, strip: bool = True, allow_empty: bool = False):
        super().__init__(constrain=False)
        self.strip, self.allow_empty = strip, allow_empty

    def parse(self, text: str) -> str:
        value = text.strip() if self.strip else text
        if not value and not self.allow_empty:
            raise self._fail("the reply is empty; write an answer", text)
        return value


class RegexParser(Parser[str]):
    """The first match of ``pattern`` (its ``group``, default: group 1 if any, else the whole match).

    As a constraint the pattern must match the *whole* output, so with
    ``constrain=True`` write a pattern describing the full reply.
    """

    def __init__(self, pattern: str, *, group: int | str | None = None, flags: int = 0, constrain: bool = True,
                 last: bool = False):
        super().__init__(constrain=constrain)
        try:
            self.regex = re.compile(pattern, flags)
        except re.error as exc:
            raise ConfigError(f"RegexParser: invalid pattern {pattern!r}: {exc}") from None
        self.pattern = pattern
        self.group = group if group is not None else (1 if self.regex.groups else 0)
        self.last = last

    def parse(self, text: str) -> str:
        matches = list(self.regex.finditer(text))
        if not matches:
            raise self._fail(f"the reply does not match the pattern {self.pattern!r}", text)
        return (matches[-1] if self.last else matches[0]).group(self.group)

    def constraint(self) -> Constraint:
        return Regex(pattern=self.pattern)

    def instructions(self) -> str:
        return f"Reply with text matching the regular expression {self.pattern!r}."


_NUMBER = r"-?\d+(?:\.\d+)?"


class NumberParser(Parser[float]):
    """A number (``int`` or ``float`` per ``kind``). Takes the last number in the text by default.

    Taking the last number suits chain-of-thought replies that end with the
    answer ("... so the total is 42"); commas in ``1,234`` are accepted.
    With ``constrain=True`` the model is made to emit just the number.
    """

    def __init__(self, kind: type[int] | type[float] = float, *, last: bool = True, constrain: bool = True):
        if kind not in (int, float):
            raise ConfigError(f"NumberParser kind must be int or float, got {kind!r}")
        super().__init__(constrain=constrain)
        self.kind, self.last = kind, last
        self.output_type = kind

    def parse(self, text: str) -> float:
        found = re.findall(r"-?\d[\d,]*(?:\.\d+)?", text)
        if not found:
            raise self._fail("no number found in the reply; end it with the number", text)
        raw = (found[-1] if self.last else found[0]).replace(",", "")
        value = float(raw)
        if self.kind is int:
            if not value.is_integer():
                raise self._fail(f"expected a whole number, found {raw}", text)
            return int(value)
        return value

    def constraint(self) -> Constraint:
        return Regex(pattern=r"-?\d+" if self.kind is int else _NUMBER)

    def instructions(self) -> str:
        return "Reply with a whole number." if self.kind is int else "Reply with a number."


class ChoiceParser(Parser[str]):
    """One of ``options``. Matching ignores case and surrounding whitespace/punctuation."""

    def __init__(self, options: list[str] | tuple[str, ...], *, constrain: bool = True):
        if not options:
            raise ConfigError("ChoiceParser needs at least one option")
        super().__init__(constrain=constrain)
        self.options = list(options)

    def parse(self, text: str) -> str:
        cleaned = text.strip().strip(".!\"'`").strip().lower()
        for option in self.options:
            if cleaned == option.lower():
                return option
        found = [o for o in self.options if re.search(rf"\b{re.escape(o.lower())}\b", cleaned)]
        if len(found) == 1:
            return found[0]
        raise self._fail(f"the reply must be exactly one of {self.options}", text)

    def constraint(self) -> Constraint:
        return Choice(options=self.options)

    def instructions(self) -> str:
        return f"Reply with exactly one of: {', '.join(self.options)}."


M = TypeVar("M", bound=BaseModel)


class ModelParser(Parser[M]):
    """A pydantic model from JSON. Tolerates text around the JSON object (code fences, prose)."""

    def __init__(self, model: type[M], *, constrain: bool = True):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise ConfigError(f"ModelParser needs a pydantic BaseModel subclass, got {model!r}")
        super().__init__(constrain=constrain)
        self.model = model
        self.output_type = model

    def parse(self, text: str) -> M:
        blob = find_json(text, "{")
        if blob is None:
            raise self._fail("the reply contains no JSON object", text)
        try:
            return self.model.model_validate_json(blob)
        except ValidationError as exc:
            problems = "; ".join(problem_lines(exc))
            raise self._fail(f"the JSON does not fit {self.model.__name__} ({problems})", text) from None

    def constraint(self) -> Constraint:
        return JsonSchema.of(self.model)

    def instructions(self) -> str:
        return f"Reply with one JSON object matching this schema: {json.dumps(self.model.model_json_schema())}"
