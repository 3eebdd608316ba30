"""Checking a plan against the tool registry before anything runs, and the plan's JSON schema.

:func:`plan_problems` lists *every* problem (each naming its step) so that a
repair round can fix them all at once: no steps, duplicate ids, unknown
tools, unknown/missing/ill-typed arguments, references to missing or later
steps, fields that the referenced result type does not have, and cycles.
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Iterable
from typing import Any

import networkx as nx
from pydantic import BaseModel, TypeAdapter, ValidationError

from plait.executors._base import bound_schema
from plait.executors._tools import Tool, ToolRegistry, tool
from plait.planners._plan import LLM_TOOL, Plan, PlanStep, find_refs, whole_ref

__all__ = ["plan_problems", "plan_json_schema", "llm_tool"]


def _llm(prompt: str) -> str:
    """Ask the language model: reason over earlier results (reference them in the prompt) and answer briefly."""
    raise NotImplementedError("llm steps are run by the executor through the run's backend")


# The pseudo-tool of reasoning steps: it gives `llm` an argument model, a schema and a description like any
# tool. Users may not register a tool named "llm", so it is built under another name and renamed.
llm_tool: Tool = tool(_llm, name="llm_step")
llm_tool.name = LLM_TOOL


def _tool_for(name: str, tools: ToolRegistry) -> Tool | None:
    return llm_tool if name.lower() == LLM_TOOL else tools.get(name)


def plan_problems(plan: Plan, tools: ToolRegistry, known: Iterable[str] = ()) -> list[str]:
    """Everything wrong with ``plan``; empty when it may run. ``known``: evidence ids from earlier rounds."""
    known = set(known)
    if not plan.steps:
        return ["the plan has no steps; give at least one step"]
    problems: list[str] = []
    position: dict[str, int] = {}
    for i, step in enumerate(plan.steps):
        if step.id in position:
            problems.append(f"step {step.id}: the id {step.id} is used twice; number the steps E1, E2, ...")
        elif step.id in known:
            problems.append(f"step {step.id}: {step.id} is already taken by earlier evidence; "
                            f"continue numbering after {max(known, key=_num)}")
        position.setdefault(step.id, i)
    problems += _cycles(plan)
    for i, step in enumerate(plan.steps):
        problems += _reference_problems(step, i, position, known)
        t = _tool_for(step.tool, tools)
        if t is None:
            problems.append(f"step {step.id}: unknown tool {step.tool!r}; use one of {[*tools.names, LLM_TOOL]}")
        else:
            problems += _argument_problems(step, t, plan, tools)
    return problems


def _num(id: str) -> int:
    return int(id[1:]) if id[1:].isdigit() else 0


def next_step_number(known: Iterable[str]) -> int:
    """The number a new plan's first step gets: one past the evidence of earlier rounds (1 when none)."""
    return max((_num(k) for k in known), default=0) + 1


def _cycles(plan: Plan) -> list[str]:
    g = nx.DiGraph()
    g.add_nodes_from(plan.ids)
    for sid, deps in plan.dependencies().items():
        g.add_edges_from((d, sid) for d in deps)
    order = {sid: i for i, sid in reversed(list(enumerate(plan.ids)))}
    out = []
    for cycle in nx.simple_cycles(g):
        if len(cycle) == 1:
            continue  # a step using its own result: reported by _reference_problems
        first = min(range(len(cycle)), key=lambda i: order[cycle[i]])
        cycle = cycle[first:] + cycle[:first]
        out.append("steps " + " -> ".join([*cycle, cycle[0]]) + " form a cycle; a step can only use results "
                   "of steps before it")
    return sorted(out)


def _reference_problems(step: PlanStep, index: int, position: dict[str, int], known: set[str]) -> list[str]:
    out = []
    for ref in dict.fromkeys(step.refs()):
        if ref.step in known and ref.step not in position:
            continue
        if ref.step not in position:
            out.append(f"step {step.id}: refers to #{ref.step}, which no step defines")
        elif ref.step == step.id:
            out.append(f"step {step.id}: refers to its own result #{step.id}; use an earlier step's result")
        elif position[ref.step] > index:
            out.append(f"step {step.id}: refers to #{ref.step}, a later step; reorder so that "
                       f"{ref.step} comes before {step.id}")
    return out


def _argument_problems(step: PlanStep, t: Tool, plan: Plan, tools: ToolRegistry) -> list[str]:
    fields = t.args_model.model_fields
    out = [f"step {step.id}: {t.name} has no argument {name!r}; its arguments are {list(fields)}"
           for name in step.args if name not in fields]
    for name, field in fields.items():
        if name not in step.args:
            if field.is_required():
                out.append(f"step {step.id}: {t.name} needs argument {name!r}")
            continue
        value = step.args[name]
        ref = whole_ref(value)
        if ref is not None:
            out += _field_access_problems(step, name, ref, plan, tools)
            continue
        if any(True for _ in find_refs(value)) and not isinstance(value, str):
            continue  # references nested in lists/dicts are checked once resolved, at run time
        try:
            TypeAdapter(field.annotation).validate_python(value)
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"]
            hint = " (a reference inside text is pasted as text)" if any(True for _ in find_refs(value)) else ""
            out.append(f"step {step.id}: argument {name!r} of {t.name} must be {_type(field.annotation)}: "
                       f"{msg} (got {value!r}){hint}")
    return out


def _field_access_problems(step: PlanStep, arg: str, ref: Any, plan: Plan, tools: ToolRegistry) -> list[str]:
    """A ``#E2.field`` whose producing tool returns a model without that field is caught here."""
    if not ref.path or ref.step not in plan.ids:
        return []
    producer = _tool_for(plan.step(ref.step).tool, tools)
    returns = producer.returns if producer else Any
    part = ref.path[0]
    if isinstance(returns, type) and issubclass(returns, BaseModel) and part not in returns.model_fields:
        return [f"step {step.id}: argument {arg!r} uses {ref}, but {producer.name} returns "
                f"{returns.__name__} whose fields are {list(returns.model_fields)}"]
    if isinstance(returns, type) and returns in (int, float, str, bool):
        return [f"step {step.id}: argument {arg!r} uses {ref}, but {producer.name} returns a plain "
                f"{returns.__name__} with no fields"]
    return []


def _type(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) and not typing.get_args(annotation) else str(annotation)


_REF_SCHEMA = {"type": "string", "pattern": r"^#E[0-9]{1,3}(\.-?[A-Za-z0-9_]{1,64}){0,8}$",  # bounded: no loop
               "description": "the result of an earlier step, or a field of it: #E1, #E2.price"}


def plan_json_schema(tools: ToolRegistry, *, include_llm: bool = True, max_tokens: int = 1024) -> dict[str, Any]:
    """JSON schema of a plan whose arguments are typed per tool (each argument may also be a reference).

    Free strings get a ``maxLength`` (:data:`MAX_STRING`, at most a quarter of
    ``max_tokens`` characters), arrays and numbers the bounds of
    :func:`~plait.executors._base.bound_schema`, and plans at most 24 steps (one
    per 40 tokens of ``max_tokens``), so constrained decoding cannot run away
    inside a plan: smollm2-135m repeated one step until a 320-token limit cut the
    plan off. Steps carry no
    id: they are numbered by position (a small model cannot then repeat one), and
    the ``thought`` is optional (a plan of calls alone costs fewer tokens).
    """
    max_string = min(MAX_STRING, max(16, max_tokens // 4))
    max_steps = min(24, max(1, max_tokens // 40))
    defs: dict[str, Any] = {"Ref": _REF_SCHEMA}
    variants = []
    for t in [*tools, *([llm_tool] if include_llm else [])]:
        args = bound_schema(_lift_defs(copy.deepcopy(t.args_schema()), t.name, defs), max_string=max_string)
        for name, prop in args.get("properties", {}).items():
            args["properties"][name] = {"anyOf": [prop, {"$ref": "#/$defs/Ref"}]}
        args.pop("title", None)
        variants.append({
            "type": "object",
            "properties": {
                "thought": {"type": "string", "maxLength": max_string},
                "tool": {"const": t.name},
                "args": args,
            },
            "required": ["tool", "args"],
            "additionalProperties": False,
        })
    return {
        "type": "object",
        "properties": {"steps": {"type": "array", "minItems": 1, "maxItems": max_steps, "items": {"anyOf": variants}}},
        "required": ["steps"],
        "additionalProperties": False,
        "$defs": {name: bound_schema(body, max_string=max_string) for name, body in defs.items()},
    }


MAX_STRING = 240
"""Longest free string a constrained planner may write: small models can loop inside a string forever."""



def _lift_defs(schema: dict[str, Any], prefix: str, defs: dict[str, Any]) -> dict[str, Any]:
    """Move a tool schema's ``$defs`` to the plan schema's root, renaming them per tool."""
    local = schema.pop("$defs", {})
    renamed = {name: f"{prefix}__{name}" for name in local}

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/") and ref[8:] in renamed:
                node = {**node, "$ref": "#/$defs/" + renamed[ref[8:]]}
            return {k: fix(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    for name, body in local.items():
        defs[renamed[name]] = fix(body)
    return fix(schema)
