"""Bounding JSON schemas before they become structured-output constraints.

Constrained decoding follows the schema token by token, so every place where
a schema lets the model go on (a free string, an array, an integer's digits,
an object's keys, a value of any type) is a place where a small model can
loop until ``max_tokens``: smollm2-135m wrote ``12*2 = `` over and over in a
``thought`` string, and ``"value": 27000…0`` until a 2,048-token limit.
:func:`bound_schema` closes each of them, so a looping model is stopped by the
grammar, not by the token limit, and the reply still parses.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_STRING", "MAX_ITEMS", "MAX_INTEGER", "ANY_DEPTH", "bound_schema"]

MAX_STRING = 240
"""Default ``maxLength`` of a free string (about 60 tokens of prose, up to 240 of digits and symbols)."""
MAX_ITEMS = 64
"""Default ``maxItems`` of an array and ``maxProperties`` of a free-form object."""
MAX_INTEGER = 10**9
"""Default bound of integers and numbers: ``-MAX_INTEGER <= value <= MAX_INTEGER`` (at most 10 digits)."""
ANY_DEPTH = 2
"""How deep a value typed ``Any`` may nest arrays and objects."""

_LIMITED_STRING = {"maxLength", "pattern", "enum", "const"}
_BOUNDED_FORMATS = {"date", "uuid", "ipv4"}  # xgrammar's grammars of the others repeat without end
_TYPED = {"type", "anyOf", "oneOf", "allOf", "$ref", "enum", "const", "not", "if", "properties", "items",
          "prefixItems", "additionalProperties", "patternProperties"}


def bound_schema(node: Any, *, max_string: int = MAX_STRING, max_items: int = MAX_ITEMS,
                 max_integer: int = MAX_INTEGER) -> Any:
    """A copy of a JSON schema in which nothing can grow without end.

    * free strings get ``maxLength`` (strings with a pattern, enum or const
      keep their own limit: xgrammar ignores ``maxLength`` next to a pattern,
      so write patterns with bounded repetition); a ``format`` other than
      date, uuid and ipv4 (whose grammars are bounded) gives way to ``maxLength``;
    * arrays get ``maxItems`` (never below their ``minItems``);
    * integers and numbers get ``minimum``/``maximum`` (±``max_integer``)
      where they have none;
    * objects with named properties get ``additionalProperties: false``;
      free-form objects (``dict[str, X]``) get ``maxProperties`` and keys of
      at most ``max_string`` characters;
    * a value of any type (``Any``, ``{}``) becomes a bounded one: a scalar,
      or arrays and objects of them nested at most :data:`ANY_DEPTH` deep.

    Bounds the schema already has are kept, even when larger.
    """
    return _Bounder(max_string, max_items, max_integer).schema(node)


class _Bounder:
    def __init__(self, max_string: int, max_items: int, max_integer: int):
        self.max_string, self.max_items, self.max_integer = max_string, max_items, max_integer

    def schema(self, node: Any) -> Any:
        if node is True:
            return self.any(ANY_DEPTH)
        if not isinstance(node, dict):
            return node
        if not (_TYPED & node.keys()):
            return {**node, **self.any(ANY_DEPTH)}
        out = {key: self.child(key, value) for key, value in node.items()}
        types = out.get("type")
        types = set(types) if isinstance(types, list) else {types}
        if "string" in types and out.get("format") not in _BOUNDED_FORMATS and not (_LIMITED_STRING & out.keys()):
            out.pop("format", None)  # xgrammar cannot combine a format with maxLength; pydantic still checks it
            out["maxLength"] = self.max_string
        if "array" in types:
            self.bound_array(out)
        if types & {"integer", "number"}:
            self.bound_number(out)
        if "object" in types or "properties" in out:
            self.bound_object(out)
        return out

    def child(self, key: str, value: Any) -> Any:
        if key in ("properties", "$defs", "definitions", "patternProperties") and isinstance(value, dict):
            return {name: self.schema(sub) for name, sub in value.items()}
        if key in ("anyOf", "oneOf", "allOf", "prefixItems") and isinstance(value, list):
            return [self.schema(sub) for sub in value]
        if key in ("items", "additionalProperties", "not", "if", "then", "else", "propertyNames", "contains"):
            return value if value is False else self.schema(value)
        return value  # enum, const, default, examples, required, title...: data, not schemas

    def bound_number(self, out: dict[str, Any]) -> None:
        low = out.get("minimum", out.get("exclusiveMinimum"))
        high = out.get("maximum", out.get("exclusiveMaximum"))
        if low is None:
            out["minimum"] = min(-self.max_integer, high if isinstance(high, (int, float)) else 0)
        if high is None:
            out["maximum"] = max(self.max_integer, low if isinstance(low, (int, float)) else 0)

    def bound_array(self, out: dict[str, Any]) -> None:
        if "items" not in out and not out.get("prefixItems"):
            out["items"] = self.any(ANY_DEPTH)
        if "maxItems" not in out and not (out.get("prefixItems") and out.get("items") is False):
            out["maxItems"] = max(self.max_items, out.get("minItems", 0))

    def bound_object(self, out: dict[str, Any]) -> None:
        extra = out.get("additionalProperties")
        if "properties" in out and extra is None:
            out["additionalProperties"] = False
        elif extra is not False:
            if extra is None:
                out["additionalProperties"] = self.any(ANY_DEPTH)
            named = len(out.get("properties", {}))
            out.setdefault("maxProperties", max(self.max_items + named, out.get("minProperties", 0)))
            names = out.get("propertyNames", {})
            if not (_LIMITED_STRING & names.keys()):
                out["propertyNames"] = {**names, "maxLength": self.max_string}

    def any(self, depth: int) -> dict[str, Any]:
        """A bounded stand-in for "any JSON value": scalars, and containers of them ``depth`` levels deep."""
        options: list[dict[str, Any]] = [
            {"type": "string", "maxLength": self.max_string},
            {"type": "number", "minimum": -self.max_integer, "maximum": self.max_integer},
            {"type": "boolean"},
            {"type": "null"},
        ]
        if depth > 0:
            inner = self.any(depth - 1)
            options.append({"type": "array", "items": inner, "maxItems": self.max_items})
            options.append({"type": "object", "additionalProperties": inner, "maxProperties": self.max_items,
                            "propertyNames": {"maxLength": self.max_string}})
        return {"anyOf": options}
