"""The typed plan: steps that call tools, linked by evidence references.

A step's arguments may reference the result of an earlier step as ``#E2``, or
a field of it as ``#E2.price`` (a declared model or dataclass field, dict key
or list index, chained: ``#E2.items.0``; never a Python attribute, see
:mod:`plait.planners._refs`). An argument that is *only* a reference receives the
referenced value itself, typed (a float stays a float, a model stays a
model); a reference inside a longer string (``"capital of #E1"``) is pasted
as text, the only sensible reading of it. Dependencies are the references.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_json

from plait._json import clip
from plait.planners._refs import read_field, shape_problem

__all__ = ["Plan", "PlanStep", "Ref", "LLM_TOOL", "find_refs", "resolve_args", "UnresolvedReference", "as_text"]

LLM_TOOL = "llm"
"""The reserved tool name of a reasoning step: its ``prompt`` argument goes to the model."""

_REF = re.compile(r"#(E[0-9]{1,9})(?![0-9])((?:\.-?\w+)*)")  # longer numbers are no step's: left as text
_WHOLE_REF = re.compile(r"\s*#(E[0-9]{1,9})((?:\.-?\w+)*)\s*")


class Ref(NamedTuple):
    """A reference to step ``step``'s result, optionally to a field path inside it."""

    step: str
    path: tuple[str, ...] = ()

    def __str__(self) -> str:
        return "#" + ".".join((self.step, *self.path))


class PlanStep(BaseModel):
    """One step: call ``tool`` with ``args``; its result becomes evidence ``#<id>``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^E[0-9]{1,9}$", description="evidence id, E1, E2, ...")
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    thought: str = Field(default="", description="why this step (the 'Plan:' line)")

    def refs(self) -> list[Ref]:
        """Every reference in the arguments, in order of appearance."""
        return list(find_refs(self.args))

    @property
    def depends_on(self) -> set[str]:
        return {r.step for r in self.refs()}


class Plan(BaseModel):
    """An ordered list of steps; runs as a DAG given by the steps' references."""

    model_config = ConfigDict(extra="forbid")

    steps: list[PlanStep]

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.steps]

    def step(self, id: str) -> PlanStep:
        for s in self.steps:
            if s.id == id:
                return s
        raise KeyError(f"no step {id!r} in the plan; steps are {self.ids}")

    def dependencies(self) -> dict[str, set[str]]:
        """For each step, the ids of the steps (of this plan) it references."""
        ids = set(self.ids)
        return {s.id: s.depends_on & ids for s in self.steps}

    def to_text(self) -> str:
        """The plan in the classic ReWOO text format."""
        lines = []
        for s in self.steps:
            if s.thought:
                lines.append(f"Plan: {s.thought}")
            lines.append(f"#{s.id} = {s.tool}[{_render_args(s.args)}]")
        return "\n".join(lines)


def _render_args(args: dict[str, Any]) -> str:
    import json

    if len(args) == 1 and isinstance(next(iter(args.values())), str):
        return next(iter(args.values()))
    return json.dumps(args, default=str)


def find_refs(value: Any) -> Iterator[Ref]:
    """References inside an argument value (strings, nested in lists and dicts)."""
    if isinstance(value, str):
        for m in _REF.finditer(value):
            yield Ref(m.group(1), tuple(p for p in m.group(2).split(".") if p))
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from find_refs(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from find_refs(v)


def whole_ref(value: Any) -> Ref | None:
    """The reference when ``value`` is exactly one reference (``"#E2.price"``), else None."""
    if isinstance(value, str):
        m = _WHOLE_REF.fullmatch(value)
        if m:
            return Ref(m.group(1), tuple(p for p in m.group(2).split(".") if p))
    return None


class UnresolvedReference(LookupError):
    """A reference could not be resolved (a failed step, or a field that is not there)."""


def resolve_args(value: Any, evidence: Mapping[str, Any]) -> Any:
    """Substitute references by evidence values: typed for whole references, as text inside strings."""
    ref = whole_ref(value)
    if ref is not None:
        return resolve_ref(ref, evidence)
    if isinstance(value, str):
        return _REF.sub(lambda m: as_text(resolve_ref(Ref(m.group(1), tuple(
            p for p in m.group(2).split(".") if p)), evidence)), value)
    if isinstance(value, Mapping):
        return {k: resolve_args(v, evidence) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [resolve_args(v, evidence) for v in value]
    return value


def resolve_ref(ref: Ref, evidence: Mapping[str, Any]) -> Any:
    """The value ``ref`` points to, by data access only; raise :class:`UnresolvedReference` when it cannot be had."""
    from plait.executors._tool_runner import ToolFailure

    if ref.step not in evidence:
        raise UnresolvedReference(f"{clip(str(ref))} refers to {ref.step}, which has no result")
    value = evidence[ref.step]
    if isinstance(value, ToolFailure):
        raise UnresolvedReference(f"{clip(str(ref))} cannot be used: step {ref.step} failed ({value.error})")
    shape = shape_problem(ref.path)
    if shape is not None:
        raise UnresolvedReference(f"{clip(str(ref))} cannot be used: {shape}")
    for i, part in enumerate(ref.path):
        try:
            value = read_field(value, part)
        except LookupError as exc:
            raise UnresolvedReference(f"{clip(str(Ref(ref.step, ref.path[: i + 1])))}: {exc.args[0]}") from None
    return value


def as_text(value: Any) -> str:
    """How a result reads in a prompt or pasted into text: JSON for models and containers."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return str(value)
    if isinstance(value, (BaseModel, Mapping, list, tuple)):
        return to_json(value, fallback=str).decode()
    return str(value)
