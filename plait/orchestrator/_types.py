"""Build-time type compatibility between a producer's output and a consumer's input."""

from __future__ import annotations

import collections.abc as cabc
import inspect
import types
import typing
from typing import Any, Literal, Union

__all__ = ["compatible", "element_type", "type_name"]

_UNIONS = (Union, types.UnionType)
_ABSTRACT: dict[type, type] = {list: cabc.Sequence, tuple: cabc.Sequence, set: cabc.Set, frozenset: cabc.Set, dict: cabc.Mapping}


def _unknown(tp: Any) -> bool:
    return tp is Any or tp is object or tp is inspect.Parameter.empty or isinstance(tp, typing.TypeVar)


def compatible(out: Any, inp: Any) -> bool:
    """True when a value of type ``out`` can be given to a parameter of type ``inp``.

    Deliberately lenient where static knowledge ends (``Any``, type variables,
    unfamiliar constructs); strict on plain classes and common generics.
    """
    if _unknown(out) or _unknown(inp) or out == inp:
        return True
    out_origin, inp_origin = typing.get_origin(out), typing.get_origin(inp)
    if out_origin is typing.Annotated:
        return compatible(typing.get_args(out)[0], inp)
    if inp_origin is typing.Annotated:
        return compatible(out, typing.get_args(inp)[0])
    if out_origin in _UNIONS:
        return all(compatible(arg, inp) for arg in typing.get_args(out))
    if inp_origin in _UNIONS:
        return any(compatible(out, arg) for arg in typing.get_args(inp))
    if out_origin is Literal:
        return all(compatible(type(v), inp) or (typing.get_origin(inp) is Literal and v in typing.get_args(inp))
                   for v in typing.get_args(out))
    if inp_origin is Literal:
        return False
    if out is type(None) or inp is type(None):
        return out is inp
    if inp_origin is None and isinstance(inp, type):
        base = out_origin or out
        if isinstance(base, type) and _subclass(base, cabc.Mapping) and _is_model(inp):
            return True  # pydantic builds models from mappings
        return isinstance(base, type) and _subclass(base, inp)
    if out_origin is None and isinstance(out, type) and inp_origin is not None:
        return _subclass(out, inp_origin)  # bare list given to list[int]: unknown items, accept
    if out_origin is not None and inp_origin is not None:
        if not _subclass(out_origin, inp_origin):
            return False
        out_args, inp_args = typing.get_args(out), typing.get_args(inp)
        if not out_args or not inp_args:
            return True
        if out_origin is tuple and out_args[-1] is not Ellipsis and inp_args[-1] is Ellipsis:
            return all(compatible(a, inp_args[0]) for a in out_args)
        if len(out_args) != len(inp_args):
            return True
        return all(compatible(a, b) for a, b in zip(out_args, inp_args) if a is not Ellipsis)
    return True


def _subclass(a: type, b: type) -> bool:
    if a is int and b is float:
        return True  # pydantic and Python both accept ints where floats are expected
    if a is bool and b is not bool and b is not int and b is not object:
        return False
    try:
        return issubclass(a, b) or issubclass(a, _ABSTRACT.get(b, b))
    except TypeError:
        return True


def _is_model(tp: type) -> bool:
    from pydantic import BaseModel

    return issubclass(tp, BaseModel)


def element_type(tp: Any) -> Any | None:
    """The item type of a list-like annotation (Any for unknown), or None if it is not list-like."""
    if _unknown(tp):
        return Any
    origin = typing.get_origin(tp) or tp
    if origin in (list, tuple, set, frozenset, cabc.Sequence, cabc.Iterable, cabc.Collection):
        args = typing.get_args(tp)
        return args[0] if args else Any
    return None


def type_name(tp: Any) -> str:
    if tp is inspect.Parameter.empty:
        return "Any"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "")
