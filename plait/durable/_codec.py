"""What a checkpoint holds is JSON, written and read through pydantic with the declared types.

Node outcomes are loaded back with the node's output type, run inputs with the
graph's input types, tool results with the tool's return type; what is typed
``Any`` comes back as plain JSON (lists, dicts). A value is stored only if its
declared type loads its JSON back to the same JSON (so a restored value is what
was committed, as far as the type says): otherwise, or when it has no JSON form
at all, :class:`CheckpointError` names it and its type and says how to fix it. Reading never runs code: the
worst a crafted, truncated or foreign record can do is fail validation, which
is a one-line :class:`CheckpointError` saying which record and what is wrong.

Digests (of node inputs, of requests) are over canonical JSON: sorted keys, no
whitespace, and sets sorted, since their iteration order differs between
processes (``PYTHONHASHSEED``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter
from pydantic_core import from_json, to_json, to_jsonable_python

from plait._words import a_type
from plait.errors import CheckpointError
from plait.orchestrator._node import Param, Route

__all__ = ["canonical", "digest", "dump_outcome", "load_outcome", "dump_value", "load_value", "dump_inputs",
           "load_inputs", "load_json", "load_record"]

_NODE_FIX = "give the node durable=False"
_FOREIGN = " (altered, or written by another program or an older plait); start a new run id or checkpoint"

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def canonical(value: Any) -> bytes:
    """Canonical JSON of ``value`` (TypeError when it has no JSON form)."""
    return to_json(_plain(value))


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def digest(value: Any) -> bytes:
    """A fingerprint of ``value`` that is the same in every process: its canonical JSON, hashed when long."""
    if type(value) is dict and all(type(k) is str and type(v) in _JSON_SCALARS for k, v in value.items()):
        data = to_json(value if len(value) < 2 else dict(sorted(value.items())))  # what canonical() gives, faster
    else:
        data = canonical(value)
    return data if len(data) <= 32 else hashlib.blake2b(data, digest_size=16).digest()


def _first(pair: tuple) -> Any:
    return pair[0]


def _plain(value: Any) -> Any:
    """``value`` as JSON data with sorted keys and sets sorted (``to_json`` keeps that order, adds no spaces)."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, dict):
        if all(type(k) is str for k in value):  # the common case: no key needs encoding
            return {k: _plain(v) for k, v in sorted(value.items(), key=_first)}
        items = [(k if isinstance(k, str) else "\x00" + canonical(k).decode(), _plain(v)) for k, v in value.items()]
        items.sort(key=_first)
        return dict(items)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(v) for v in value), key=to_json)
    if isinstance(value, BaseModel):
        return _plain(value.model_dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    try:
        return _plain(to_jsonable_python(value))  # enums, dates, paths...: their JSON form
    except Exception as exc:
        raise TypeError(f"{type(value).__name__} has no JSON form ({_first_line(exc)})") from None


# -- values with their declared types ------------------------------------------------------------------------
class _Outcome(BaseModel, Generic[T]):
    """A node outcome as stored: its value, and the route it took (a Route's target, by name or key)."""

    model_config = ConfigDict(extra="forbid")
    value: T
    routed: bool = False
    to: str | int | float | bool | None = None


_OUTCOMES: dict[Any, type[_Outcome]] = {}
_ADAPTERS: dict[Any, TypeAdapter] = {}


def _outcome_model(annotation: Any, what: str) -> type[_Outcome]:
    try:
        model = _OUTCOMES.get(annotation)
        if model is None:
            model = _OUTCOMES[annotation] = _Outcome[annotation]
        return model
    except TypeError:  # an unhashable annotation
        return _Outcome[annotation]
    except Exception as exc:
        raise CheckpointError(f"{what} is declared as {_type_name(annotation)}, which pydantic cannot load "
                              f"({_first_line(exc)}); declare a pydantic-compatible type") from None


_EXACT_SCALARS = (int, str, bool)


def dump_outcome(outcome: Any, annotation: Any, what: str) -> bytes:
    """A node's outcome (a value or a :class:`Route`) as JSON, checked to load back equal with ``annotation``."""
    if type(outcome) in _EXACT_SCALARS and (annotation is type(outcome) or annotation is Any):
        try:  # loads back equal by construction: skip the round-trip check (it is most of a cheap node's cost)
            return to_json({"value": outcome})
        except Exception:
            pass  # e.g. a lone surrogate: the general path reports it
    model = _outcome_model(annotation, what)
    if isinstance(outcome, Route):
        to = outcome.to if isinstance(outcome.to, (str, int, float, bool)) or outcome.to is None else getattr(
            outcome.to, "name", outcome.to)
        value, fields = outcome.value, {"value": outcome.value, "routed": True, "to": to}
    else:
        value, fields = outcome, {"value": outcome}
    data = _to_json(fields, value, annotation, what)
    try:
        back = model.model_validate_json(data)
        same = _same(back.value, value) and back.to == fields.get("to")
    except Exception:
        same = False
    if not same:
        raise CheckpointError(_unfaithful(what, value, annotation))
    return data


def load_outcome(data: bytes | str, annotation: Any, what: str) -> Any:
    """The outcome stored by :func:`dump_outcome` (a Route names its target by string or key)."""
    try:
        back = _outcome_model(annotation, what).model_validate_json(data)
    except ValueError as exc:
        raise CheckpointError(f"{what} in the checkpoint is not valid: {_first_line(exc)}{_FOREIGN}") from None
    return Route(back.to, back.value) if back.routed else back.value


def dump_value(value: Any, annotation: Any, what: str, fix: str = _NODE_FIX) -> bytes:
    """``value`` as JSON, checked to load back equal with ``annotation`` (``fix``: the way out the error offers)."""
    data = _to_json(value, value, annotation, what, fix)
    try:
        same = _same(load_value(data, annotation, what), value)
    except CheckpointError:
        same = False
    if not same:
        raise CheckpointError(_unfaithful(what, value, annotation, fix))
    return data


def load_value(data: bytes | str, annotation: Any, what: str) -> Any:
    """A value stored by :func:`dump_value`, validated as ``annotation``."""
    try:
        adapter = _ADAPTERS.get(annotation)
        if adapter is None:
            adapter = _ADAPTERS[annotation] = TypeAdapter(annotation)
    except TypeError:
        adapter = TypeAdapter(annotation)
    except Exception as exc:
        raise CheckpointError(f"{what} is declared as {_type_name(annotation)}, which pydantic cannot load "
                              f"({_first_line(exc)}); declare a pydantic-compatible type") from None
    try:
        return adapter.validate_json(data)
    except ValueError as exc:
        raise CheckpointError(f"{what} in the checkpoint is not valid: {_first_line(exc)}{_FOREIGN}") from None


def dump_inputs(params: dict[str, Param], inputs: dict[str, Any], what: str) -> bytes:
    """A run's inputs as one JSON object, each checked against its parameter's type."""
    parts = [json.dumps(name).encode() + b":" + dump_value(value, params[name].annotation, f"{what} {name!r}",
                                                           "run it without a checkpoint")
             for name, value in sorted(inputs.items())]
    return b"{" + b",".join(parts) + b"}"


def load_inputs(params: dict[str, Param], data: bytes | str, what: str) -> dict[str, Any]:
    """Inputs stored by :func:`dump_inputs`, each validated with its parameter's type."""
    raw = load_json(data, what)
    if not isinstance(raw, dict) or not set(raw) <= set(params):
        raise CheckpointError(f"{what} in the checkpoint is not valid: expected an object of the inputs "
                              f"{sorted(params)}, got {_describe(raw)}{_FOREIGN}")
    return {name: load_value(to_json(v), params[name].annotation, f"{what} {name!r}") for name, v in raw.items()}


def load_json(data: bytes | str | None, what: str) -> Any:
    """Plain JSON (None stays None)."""
    if data is None:
        return None
    try:
        return from_json(data)
    except ValueError as exc:
        raise CheckpointError(f"{what} in the checkpoint is not JSON: {_first_line(exc)}{_FOREIGN}") from None


def load_record(data: bytes | str, model: type[M], what: str) -> M:
    """A record of a known shape, validated by ``model``."""
    try:
        return model.model_validate_json(data)
    except ValueError as exc:
        raise CheckpointError(f"{what} in the checkpoint is not valid: {_first_line(exc)}{_FOREIGN}") from None


# -- helpers ---------------------------------------------------------------------------------------------------
def _to_json(fields: Any, value: Any, annotation: Any, what: str, fix: str = _NODE_FIX) -> bytes:
    try:
        return to_json(fields)
    except Exception as exc:
        raise CheckpointError(f"{what} is {a_type(value)}, which cannot be stored as JSON "
                              f"({_first_line(exc)}); use JSON data or a pydantic type, or {fix}") from None


def _same(back: Any, value: Any) -> bool:
    """Whether the value loaded back has the canonical JSON of the original (not ==: NaN, sets, models under Any)."""
    try:
        return (type(back) is type(value) and back == value) or canonical(back) == canonical(value)
    except Exception:
        return False


def _unfaithful(what: str, value: Any, annotation: Any, fix: str = _NODE_FIX) -> str:
    return (f"{what} is {a_type(value)}, which does not load back from its JSON as the declared "
            f"{_type_name(annotation)}; give a value of the declared type (or declare the type given), or {fix}")


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or repr(annotation).replace("typing.", "")


def _describe(raw: Any) -> str:
    return f"{type(raw).__name__} {to_json(raw)[:60].decode(errors='replace')}"


def _first_line(exc: BaseException) -> str:
    if hasattr(exc, "errors"):
        try:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            return f"{first.get('msg')}{' at ' + where if where else ''}"
        except Exception:
            pass
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
