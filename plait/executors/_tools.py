"""Tools: plain Python functions that a plan or an agent may call.

``@tool`` (or :meth:`Tool.from_function`) reads a function's type hints and
docstring and derives what a planner needs: a pydantic model of the
arguments (for validation and for the JSON schema of structured plans) and a
one-paragraph description. A :class:`ToolRegistry` holds the tools a node may
use. Running them (timeouts, retries, limits, cache) is
:class:`~plait.executors.ToolRunner`'s job.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from plait.errors import ToolError
from plait.orchestrator._node import RetryPolicy

__all__ = ["Tool", "tool", "ToolRegistry"]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Tool:
    """A callable the planner can name, with typed arguments and a description.

    * ``timeout``: seconds per attempt (None: no limit);
    * ``retry``: a :class:`~plait.RetryPolicy` for failed attempts (None: one attempt);
    * ``max_concurrency``: how many calls of this tool may run at once within a run;
    * ``cache``: reuse the result of an identical call (same arguments) within a run;
    * ``blocking``: run a sync function in a worker thread (default True: tools
      usually wait on I/O), so calls overlap and ``timeout`` holds;
      ``blocking=False`` calls it on the event loop (cheap functions only: no
      timeout is possible there).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        max_concurrency: int | None = None,
        cache: bool = False,
        blocking: bool = True,
    ):
        if not callable(fn):
            raise ToolError(f"a tool must wrap a function, got {fn!r}")
        self.fn = fn
        self.name: str = name if name else str(getattr(fn, "__name__", ""))
        if not self.name.isidentifier() or self.name.lower() == "llm":
            raise ToolError(f"tool name {self.name!r} must be an identifier other than 'llm' (reserved); pass name=...")
        if timeout is not None and timeout <= 0:
            raise ToolError(f"tool {self.name!r}: timeout must be > 0 seconds, got {timeout}")
        if max_concurrency is not None and max_concurrency < 1:
            raise ToolError(f"tool {self.name!r}: max_concurrency must be >= 1, got {max_concurrency}")
        self.is_async = inspect.iscoroutinefunction(fn)
        if timeout is not None and not blocking and not self.is_async:
            raise ToolError(f"tool {self.name!r}: blocking=False runs this sync function on the event loop, "
                            "where its timeout cannot stop it; drop blocking=False or the timeout")
        self.description = (description or inspect.getdoc(fn) or "").strip()
        self.timeout, self.retry, self.max_concurrency = timeout, retry, max_concurrency
        self.cache, self.blocking = cache, blocking
        self.args_model, self.returns = _read_signature(fn, self.name)

    @classmethod
    def from_function(cls, fn: Callable[..., Any], **options: Any) -> Tool:
        """Build a tool from a typed function; options as in the constructor."""
        return cls(fn, **options)

    @property
    def params(self) -> dict[str, Any]:
        """Argument annotations by name, in declaration order."""
        return {n: f.annotation for n, f in self.args_model.model_fields.items()}

    @property
    def primary_param(self) -> str | None:
        """The argument a bare text input (``Tool[some text]``) goes to: the first required one."""
        fields = self.args_model.model_fields
        required = [n for n, f in fields.items() if f.is_required()]
        return next(iter(required or fields), None)

    def validate_args(self, args: dict[str, Any]) -> dict[str, Any]:
        """Validated and coerced arguments; raise pydantic's ValidationError when they do not fit."""
        model = self.args_model.model_validate(args)
        return {n: getattr(model, n) for n in self.args_model.model_fields}

    def args_schema(self) -> dict[str, Any]:
        """JSON schema of the arguments."""
        return self.args_model.model_json_schema()

    def describe(self) -> str:
        """One line for a prompt: ``name(arg: type, ...) -> type: description``."""
        params = ", ".join(
            f"{n}: {_type_name(f.annotation)}" + ("" if f.is_required() else f" = {f.default!r}")
            for n, f in self.args_model.model_fields.items()
        )
        first = self.description.split("\n\n", 1)[0].replace("\n", " ")
        return f"{self.name}({params}) -> {_type_name(self.returns)}: {first}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Tool {self.name}>"


def tool(fn: Callable[..., Any] | None = None, /, **options: Any):
    """Decorator: ``@tool`` or ``@tool(timeout=2, cache=True)`` turns a function into a :class:`Tool`."""
    if fn is not None:
        return Tool(fn, **options)
    return lambda f: Tool(f, **options)


def _read_signature(fn: Callable[..., Any], name: str) -> tuple[type[BaseModel], Any]:
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:
        raise ToolError(f"tool {name!r}: cannot resolve type hints: {exc}") from exc
    fields: dict[str, Any] = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ToolError(f"tool {name!r}: *args/**kwargs are not supported; name and type each argument")
        if p.name not in hints:
            raise ToolError(f"tool {name!r}: argument {p.name!r} has no type hint; the planner needs one")
        fields[p.name] = (hints[p.name], ... if p.default is p.empty else p.default)
    model = create_model(f"{name}_args", __base__=_Args, **fields)
    return model, hints.get("return", Any)


def _type_name(annotation: Any) -> str:
    if annotation is Any:
        return "any"
    if isinstance(annotation, type) and typing.get_origin(annotation) is None:
        return annotation.__name__
    return str(annotation).replace("typing.", "")


class ToolRegistry:
    """The tools a planner or agent may use, by name (matched case-insensitively)."""

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = ()):
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.add(t)

    def add(self, item: Tool | Callable[..., Any], **options: Any) -> Tool:
        """Register a Tool, or a plain typed function (wrapped with ``options``)."""
        t = item if isinstance(item, Tool) else Tool(item, **options)
        key = t.name.lower()
        if key in self._tools and self._tools[key] is not t:
            raise ToolError(f"a tool named {t.name!r} is already registered; pass name=... to tell them apart")
        self._tools[key] = t
        return t

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name.lower())

    def __getitem__(self, name: str) -> Tool:
        found = self.get(name)
        if found is None:
            raise ToolError(f"unknown tool {name!r}; known tools: {self.names}")
        return found

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self._tools.values()]

    def describe(self) -> str:
        """The tool list for a prompt, one per line."""
        return "\n".join(f"- {t.describe()}" for t in self)

    @classmethod
    def of(cls, tools: ToolRegistry | Iterable[Tool | Callable[..., Any]]) -> ToolRegistry:
        return tools if isinstance(tools, ToolRegistry) else cls(tools)


def validation_problems(error: ValidationError) -> list[str]:
    """pydantic errors as short lines: ``arg: message (got value)``."""
    out = []
    for e in error.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "args"
        got = f" (got {e['input']!r})" if e["type"] != "missing" else ""
        out.append(f"{loc}: {e['msg']}{got}")
    return out
