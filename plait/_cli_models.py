"""``plait run --model``: one default model and any number of named ones (``--model small=NAME --model large=URL``).

A value ``NAME=MODEL`` (``NAME`` an identifier) names a backend for the nodes
that ask for ``model="NAME"``; a value without a name is the run's default
backend (at most one; without it, the target module's ``make_backend()``).
``MODEL`` is whatever one ``--model`` takes: a registry name, a local model
folder, a server URL or comma-separated server URLs (``backend_for``). Every
backend is built before the run starts, and started and closed around it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from plait._cli_inputs import UsageError
from plait.errors import PlaitError

__all__ = ["split_models", "named_backends", "started"]

_NAMED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.DOTALL)


def split_models(values: list[str] | None) -> tuple[str | None, dict[str, str]]:
    """The ``--model`` values as (the default model or None, {name: model}); a one-line UsageError if malformed."""
    default: str | None = None
    named: dict[str, str] = {}
    for value in values or ():
        match = _NAMED.fullmatch(value)
        if match is None:
            if default is not None:
                raise UsageError(f"--model without a name is given twice ({default!r} and {value!r}); one is the "
                                 "default, name the others: --model small=MODEL")
            default = value
            continue
        name, model = match.groups()
        if name == "default":
            raise UsageError(f"--model default={model}: the default model takes no name; give it as --model {model}")
        if name in named:
            raise UsageError(f"--model {name}= is given twice ({named[name]!r} and {model!r}); give each name once")
        if not model:
            raise UsageError(f"--model {name}= names no model; give --model {name}=MODEL (a registry name, a local "
                             "model folder or a server URL)")
        named[name] = model
    return default, named


def named_backends(models: dict[str, str]) -> dict[str, Any] | None:
    """A backend per name (``backend_for``), or None when there are none."""
    if not models:
        return None
    from plait import executors

    factory = getattr(executors, "backend_for", None)
    if factory is None:
        raise UsageError("--model needs the vLLM backend, which this install of plait lacks")
    backends = {}
    for name, model in models.items():
        try:
            backends[name] = factory(model)
        except (PlaitError, ValueError) as exc:  # a ModelError, a malformed URL list
            raise UsageError(f"--model {name}={model}: {str(exc).splitlines()[0]}") from None
    return backends


@asynccontextmanager
async def started(backend: Any, backends: dict[str, Any] | None) -> AsyncIterator[None]:
    """Start every backend (the default and the named ones) for the run, and close them all after it."""
    async with AsyncExitStack() as stack:
        for each in [backend, *(backends or {}).values()]:
            if each is not None:
                await stack.enter_async_context(each)
        yield
