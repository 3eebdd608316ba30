"""A scripted model that loops inside JSON wherever the request's schema lets it (``benchmarks/guards.py``).

A small model under a JSON-schema grammar can repeat one thing until ``max_tokens``: digits of an integer
(``"value": 27000…0``), characters of a string, items of a list. The grammar ends such a loop only where the
schema bounds it. :class:`LoopingModel` writes, for each JSON-schema request, the reply of a model looping at
the one place of the schema where a loop runs longest: an unbounded integer, string, list or map if there is
one (cut at ``max_tokens``), else the bounded place whose maximum is longest. Everything else is minimal.
Tokens are counted as one per two characters (digit runs and repeated short pieces tokenize about that
finely). Replies cut at ``max_tokens`` are listed in :attr:`LoopingModel.cut`.
"""

from __future__ import annotations

import json
from typing import Any

from plait import JsonSchema, Request
from plait.executors import Sample

FILLER = "12*2 = "
"""What the looping model repeats inside a string (seen from smollm2-135m on a subtask tree)."""


class _Endless(Exception):
    """The loop site has no bound: the reply runs to ``max_tokens`` from here."""

    def __init__(self, prefix: str, unit: str):
        self.prefix, self.unit = prefix, unit


def _tokens(text: str) -> int:
    return (len(text) + 1) // 2


class _Writer:
    """Writes a minimal instance of a schema, except at ``loop`` (a schema node), where it writes the longest."""

    def __init__(self, root: dict[str, Any], loop: int | None):
        self.root, self.loop, self.looped = root, loop, False
        self.sites: list[int] = []  # ids of the schema nodes where a loop could happen, in visiting order
        self.out: list[str] = []

    def _at_loop(self, node: dict[str, Any]) -> bool:
        if id(node) not in self.sites:
            self.sites.append(id(node))
        if self.loop == id(node) and not self.looped:
            self.looped = True
            return True
        return False

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.root
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        for key in ("anyOf", "oneOf", "allOf"):
            if key in node:
                return self._resolve(node[key][0])
        return node

    def write(self, node: dict[str, Any]) -> None:
        node = self._resolve(node)
        if "const" in node:
            return self.out.append(json.dumps(node["const"]))
        if "enum" in node:
            return self.out.append(json.dumps(node["enum"][0]))
        kind = node.get("type", "object")
        kind = kind[0] if isinstance(kind, list) else kind
        getattr(self, f"_{kind}", self._null)(node)

    def _null(self, node: dict[str, Any]) -> None:
        self.out.append("null")

    def _boolean(self, node: dict[str, Any]) -> None:
        self.out.append("false")

    def _integer(self, node: dict[str, Any]) -> None:
        low, high = node.get("minimum", node.get("exclusiveMinimum")), node.get("maximum",
                                                                                  node.get("exclusiveMaximum"))
        if not self._at_loop(node):
            return self.out.append(str(low if low is not None else 0))
        if low is None or high is None:
            raise _Endless("".join(self.out) + "27", "0")
        self.out.append(max(str(low), str(high), key=len))

    _number = _integer

    def _string(self, node: dict[str, Any]) -> None:
        bounded = {"maxLength", "pattern", "format"} & node.keys()
        if not self._at_loop(node):
            return self.out.append(json.dumps("x" * max(node.get("minLength", 1), 1)))
        if not bounded:
            raise _Endless("".join(self.out) + '"', FILLER)
        self.out.append(json.dumps((FILLER * node.get("maxLength", 8))[: node.get("maxLength", 8)]))

    def _array(self, node: dict[str, Any]) -> None:
        items = node.get("items", {})
        if "prefixItems" in node:
            parts = node["prefixItems"]
        elif self._at_loop(node):
            if "maxItems" not in node:
                self.out.append("[")
                self.write(items)
                raise _Endless("".join(self.out), ", " + self.out[-1])
            parts = [items] * node["maxItems"]
        else:
            parts = [items] * node.get("minItems", 0)
        self.out.append("[")
        for i, part in enumerate(parts):
            self.out.append(", " if i else "")
            self.write(part)
        self.out.append("]")

    def _object(self, node: dict[str, Any]) -> None:
        props = node.get("properties", {})
        extra = node.get("additionalProperties")
        self.out.append("{")
        for i, (key, sub) in enumerate(props.items()):
            self.out.append(f'{", " if i else ""}{json.dumps(key)}: ')
            self.write(sub)
        if not props and isinstance(extra, dict) and self._at_loop(node):
            if "maxProperties" not in node:
                raise _Endless("".join(self.out) + '"k0": null', ', "k": null')
            self.out.append(", ".join(f'"k{i}": null' for i in range(node["maxProperties"])))
        self.out.append("}")


def looping_reply(schema: dict[str, Any], max_tokens: int) -> tuple[str, bool]:
    """The reply of a model looping where the schema lets it loop longest; and whether it hit ``max_tokens``."""
    probe = _Writer(schema, None)
    probe.write(schema)
    longest = ("".join(probe.out), False)
    for site in probe.sites:
        writer = _Writer(schema, site)
        try:
            writer.write(schema)
        except _Endless as endless:
            text = endless.prefix
            while _tokens(text) < max_tokens:
                text += endless.unit
            return text[: 2 * max_tokens], True
        text = "".join(writer.out)
        if len(text) > len(longest[0]):
            longest = (text, False)
    text = longest[0]
    return (text[: 2 * max_tokens], True) if _tokens(text) > max_tokens else (text, False)


class LoopingModel:
    """A ``FunctionBackend`` handler: looping JSON for JSON-schema requests, a short answer otherwise."""

    def __init__(self) -> None:
        self.cut: list[str] = []

    def __call__(self, request: Request) -> Sample:
        constraint = request.params.constraint
        if not isinstance(constraint, JsonSchema):
            return Sample(text="Answer: done", finish_reason="stop", completion_tokens=3)
        text, cut = looping_reply(constraint.schema_, request.params.max_tokens)
        if cut:
            self.cut.append(f"{request.tag or 'request'} looped to max_tokens={request.params.max_tokens}")
        return Sample(text=text, finish_reason="length" if cut else "stop",
                      completion_tokens=request.params.max_tokens if cut else _tokens(text))
