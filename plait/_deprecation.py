"""Old names that still work for one release, each with a DeprecationWarning naming the new one.

Two kinds of rename, one helper each: a keyword argument renamed in a
constructor (:func:`renamed_keyword`), and a name moved out of a module's
namespace (:func:`moved_names`, a module ``__getattr__``). Every message reads
"X is deprecated, use Y", so a test run can turn exactly these warnings into
errors (pyproject's ``filterwarnings``) and catch code still on an old name.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from plait.errors import ConfigError

T = TypeVar("T")


def renamed_keyword(owner: str, kwargs: dict[str, Any], old: str, new: str, value: T) -> T:
    """``value`` (given as ``new=``), or the value passed under ``old`` in ``kwargs`` (removed from it, warning).

    ``kwargs`` is the constructor's ``**`` catch-all, where a caller's old keyword lands; passing both
    names is an error. ``value`` is None when the caller did not give ``new=``.
    """
    if old not in kwargs:
        return value
    old_value = kwargs.pop(old)
    if value is not None:
        raise ConfigError(f"{owner}() got both {new}= and {old}=, its old name; pass only {new}=")
    warnings.warn(f"{owner}({old}=...) is deprecated, use {owner}({new}=...); {old}= goes in the next release",
                  DeprecationWarning, stacklevel=3)
    return old_value


def moved_names(module: str, moved: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving ``moved`` names (``{"Old": "plait.pkg.New"}``) from their new home.

    Each access warns with the new import path; a name not in ``moved`` is the usual AttributeError.
    """

    def __getattr__(name: str) -> Any:
        target = moved.get(name)
        if target is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        home, _, attr = target.rpartition(".")
        warnings.warn(f"{module}.{name} is deprecated, use {target} (from {home} import {attr}); "
                      f"{module}.{name} goes in the next release", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(home), attr)

    return __getattr__


def refuse_unknown(owner: str, kwargs: Mapping[str, Any]) -> None:
    """TypeError for keywords left in a ``**`` catch-all that only exists to take old names."""
    if kwargs:
        raise ConfigError(f"{owner}() got unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
