"""What a plan reference may reach: declared fields of data, never Python attributes.

A reference ``#E2.a.0.b`` names a step and then at most :data:`MAX_REF_FIELDS`
fields. Each field is read by data access only: a pydantic model's declared
field, a dataclass field, a mapping's key or a list/tuple index. Nothing here
calls ``getattr`` with a name that is not a declared field, so a model cannot
walk from a result to ``__class__``, a module's globals or the environment
(``#E1.__class__.__init__.__globals__`` is just a field that is not there).

The same rule is applied twice: at check time to the producing tool's
declared return type (:func:`path_problem`: a path the type cannot have is a
plan problem, reported to the planner before anything runs), and at run time
to the value itself (:func:`read_field`: a path the value does not have is an
error naming it).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, TypeVar, Union

from pydantic import BaseModel

from plait._json import clip

__all__ = ["MAX_REF_FIELDS", "MAX_FIELD_CHARS", "read_field", "shape_problem", "path_problem", "type_name"]

MAX_REF_FIELDS = 8
"""Most fields a reference may name after its step (``#E1.a.b.c`` names 3): deeper paths are plan problems."""
MAX_FIELD_CHARS = 64
"""Longest field name (or index) a reference may use."""

_PLAIN = (str, bytes, int, float, bool, complex, type(None))


class _NoField(LookupError):
    """Internal: the part is not a field of the value."""


def read_field(value: Any, part: str) -> Any:
    """The field ``part`` of ``value``, by data access only; raise LookupError saying what is readable."""
    if isinstance(value, Mapping):
        if part in value:
            return value[part]
        raise LookupError(f"{_kind(value)} has no field {part!r}")
    if isinstance(value, (list, tuple)):
        index = _index(part)
        if index is None:
            raise LookupError(f"{_kind(value)} is indexed by position (0, 1, ..., -1), not by {part!r}")
        if -len(value) <= index < len(value):
            return value[index]
        raise LookupError(f"{_kind(value)} of {len(value)} items has no index {index}")
    names = _declared_fields(type(value))
    if names is None:
        raise LookupError(f"{_kind(value)} has no fields a reference can read; reference the whole result")
    if part in names:
        return getattr(value, part)
    raise LookupError(f"{_kind(value)} has no field {part!r}; its fields are {list(names)}")


def shape_problem(path: Sequence[str]) -> str | None:
    """Why ``path`` is too deep or too long to be a reference path; None when it is not."""
    if len(path) > MAX_REF_FIELDS:
        return f"it names {len(path)} fields; a reference may name at most {MAX_REF_FIELDS}"
    long = next((p for p in path if len(p) > MAX_FIELD_CHARS), None)
    if long is not None:
        return f"its field {clip(long, 20)!r} is {len(long)} characters long; at most {MAX_FIELD_CHARS} are allowed"
    return None


def path_problem(returns: Any, path: Sequence[str]) -> tuple[int, str] | None:
    """Why a value of declared type ``returns`` cannot have ``path``: (index of the bad part, reason).

    None when it can, or when the type does not say (``Any``, a plain ``dict``):
    the run-time check then decides. Call :func:`shape_problem` first.
    """
    tp = returns
    for i, part in enumerate(path):
        try:
            tp = _member_type(tp, part)
        except _NoField as exc:
            return i, str(exc)
    return None


def _member_type(tp: Any, part: str) -> Any:
    """The declared type of field ``part`` of a ``tp`` value (Any when unknown); _NoField when it has none."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _member_type(typing.get_args(tp)[0], part)
    if tp is Any or tp is object or isinstance(tp, TypeVar):
        return Any
    if origin in (Union, types.UnionType):
        found, reasons = [], []
        for member in typing.get_args(tp):
            if member is type(None):
                continue
            try:
                found.append(_member_type(member, part))
            except _NoField as exc:
                reasons.append(str(exc))
        if not found:
            raise _NoField(reasons[0] if len(reasons) == 1 else f"{type_name(tp)} has no field {part!r}")
        return found[0] if len(found) == 1 else Any
    container = origin or tp
    if not isinstance(container, type):
        return Any  # a type form this check does not know: the run-time check decides
    args = typing.get_args(tp)
    if typing.is_typeddict(container):
        hints = _hints(container)
        if part not in hints:
            raise _NoField(f"{type_name(tp)} whose keys are {list(hints)}")
        return hints[part]
    if issubclass(container, _PLAIN):
        raise _NoField(f"a plain {type_name(tp)} with no fields")
    if issubclass(container, Mapping):
        return args[1] if len(args) == 2 else Any
    if issubclass(container, (list, tuple)) or (issubclass(container, Sequence) and origin is not None):
        index = _index(part)
        if index is None:
            raise _NoField(f"{type_name(tp)}, indexed by position (0, 1, ..., -1), not by {part!r}")
        if container is tuple and args and args[-1] is not Ellipsis:
            if not -len(args) <= index < len(args):
                raise _NoField(f"{type_name(tp)} of {len(args)} items, which has no index {index}")
            return args[index]
        return args[0] if args else Any
    names = _declared_fields(container)
    if names is None:
        raise _NoField(f"{type_name(tp)}, whose attributes a reference cannot read; reference the whole result")
    if part not in names:
        raise _NoField(f"{type_name(tp)} whose fields are {list(names)}")
    return _hints(container).get(part, Any)


def _declared_fields(cls: type) -> tuple[str, ...] | None:
    """Field names of a pydantic model or dataclass; None for any other class."""
    if issubclass(cls, BaseModel):
        return tuple(cls.model_fields)
    if dataclasses.is_dataclass(cls):
        return tuple(f.name for f in dataclasses.fields(cls))
    return None


def _hints(cls: type) -> dict[str, Any]:
    if issubclass(cls, BaseModel):
        return {n: f.annotation for n, f in cls.model_fields.items()}
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except Exception:  # unresolvable forward references: the run-time check decides
        return {}


def _index(part: str) -> int | None:
    digits = part[1:] if part.startswith("-") else part
    return int(part) if digits.isascii() and digits.isdigit() and len(digits) <= 18 else None


def _kind(value: Any) -> str:
    shown = clip(repr(value)) if isinstance(value, (Mapping, list, tuple)) else ""
    return f"{type(value).__name__} value {shown}".rstrip()


def type_name(tp: Any) -> str:
    """A type as a prompt shows it: ``Quote``, ``list[Quote]``, ``dict[str, int]``, ``Quote | None``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        return type_name(args[0])
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is not None and args:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(type_name(a) for a in args)}]"
    if tp is type(None):
        return "None"
    if tp is Ellipsis:
        return "..."
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")
