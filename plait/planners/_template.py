"""Prompt templates: text or chat messages with ``{name}`` placeholders."""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any, Union

from plait.errors import ConfigError
from plait.executors._base import Message

__all__ = ["Template", "TemplateSource"]

TemplateSource = Union[str, Sequence[Union[Message, tuple[str, str], Mapping[str, str]]]]


class Template:
    """A prompt with ``{name}`` placeholders (``str.format`` syntax; write ``{{`` for a literal brace).

    ``source`` is a string (a text prompt) or a list of chat messages given as
    :class:`~plait.Message`, ``(role, content)`` pairs or ``{"role", "content"}``
    dicts. :attr:`variables` lists the placeholders in order of appearance.
    """

    def __init__(self, source: TemplateSource):
        if isinstance(source, str):
            self.messages: tuple[Message, ...] | None = None
            self.text: str | None = source
            parts = [source]
        else:
            self.text = None
            self.messages = tuple(_message(m) for m in source)
            if not self.messages:
                raise ConfigError("a chat template needs at least one message")
            parts = [m.content for m in self.messages]
        self.variables: list[str] = []
        for part in parts:
            for _, field, _, _ in string.Formatter().parse(part):
                if field is None:
                    continue
                name = field.split(".", 1)[0].split("[", 1)[0]
                if not name.isidentifier():
                    raise ConfigError(f"template placeholder {{{field}}} must be a name like {{question}}")
                if name not in self.variables:
                    self.variables.append(name)

    def render(self, values: Mapping[str, Any]) -> str | tuple[Message, ...]:
        """The prompt with every placeholder filled (a string, or a tuple of messages)."""
        missing = [v for v in self.variables if v not in values]
        if missing:
            raise ValueError(f"template needs value(s) for {', '.join(missing)}")
        if self.text is not None:
            return self.text.format_map(values)
        assert self.messages is not None
        return tuple(m.model_copy(update={"content": m.content.format_map(values)}) for m in self.messages)


def _message(item: Any) -> Message:
    if isinstance(item, Message):
        return item
    if isinstance(item, tuple) and len(item) == 2:
        return Message(role=item[0], content=item[1])
    if isinstance(item, Mapping):
        return Message(**item)
    raise ConfigError(f"a chat template message must be a Message, (role, content) or dict, got {item!r}")
